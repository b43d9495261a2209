"""Where stitched chapters go: one file per chapter in a folder, or one WAV stream."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .constants import SAMPLE_RATE
from .errors import OutputError
from .options import StitchOptions
from .plan import Chapter, Segment
from .stitch import ChapterAudio, render_chapter
from .synthesis_events import ChapterWritten

STREAM_DESTINATION = "<stdout>"


def _options_fingerprint(options: StitchOptions) -> str:
    return json.dumps(dataclasses.asdict(options), sort_keys=True)


def _stitch(pieces: Sequence[tuple[np.ndarray, Segment]], options: StitchOptions) -> ChapterAudio:
    chapter_audio, _loudness = render_chapter([(audio, segment.pause_after) for audio, segment in pieces], options)
    return chapter_audio


class FolderSink:
    """Writes `OUTDIR/NN-slug.FORMAT`, each atomically (temporary name, then `os.replace`)."""

    def __init__(self, folder: Path, options: StitchOptions) -> None:
        self.folder = folder
        self.options = options
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from exc
        if not folder.is_dir():
            raise OutputError(f"output {folder} exists and is not a folder")

    def path_for(self, chapter: Chapter) -> Path:
        # The slug is built to stay inside the folder; check anyway, since a file name is a security boundary.
        path = (self.folder / f"{chapter.slug}.{self.options.format}").resolve()
        if path.parent != self.folder.resolve():
            raise OutputError(f"chapter file name {chapter.slug!r} would leave the output folder")
        return path

    def destination(self, chapter: Chapter) -> str:
        return str(self.path_for(chapter))

    def exists(self, chapter: Chapter) -> bool:
        return self.path_for(chapter).is_file()

    def fingerprint(self) -> str:
        return _options_fingerprint(self.options)

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> ChapterWritten:
        from .export import export_audio

        chapter_audio = _stitch(pieces, self.options)
        path = self.path_for(chapter)
        export_audio(chapter_audio.audio, SAMPLE_RATE, path, self.options.format, self.options.sample_rate)
        return ChapterWritten(chapter=chapter, destination=str(path), audio_seconds=chapter_audio.seconds)

    def close(self) -> None:
        pass


class StreamSink:
    """Collects every chapter and writes one WAV to a stream (for `-o -` in pipelines).

    WAV needs its length in the header, so the stream is written when the run ends.
    """

    def __init__(self, stream: BinaryIO, options: StitchOptions) -> None:
        self.stream = stream
        self.options = options
        self.chapters: list[np.ndarray] = []

    def destination(self, chapter: Chapter) -> str:
        return STREAM_DESTINATION

    def exists(self, chapter: Chapter) -> bool:
        return False

    def fingerprint(self) -> str:
        return _options_fingerprint(self.options)

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> ChapterWritten:
        chapter_audio = _stitch(pieces, self.options)
        self.chapters.append(chapter_audio.audio)
        return ChapterWritten(chapter=chapter, destination=STREAM_DESTINATION, audio_seconds=chapter_audio.seconds)

    def close(self) -> None:
        from .audio import resample, write_wav_bytes

        audio = np.concatenate(self.chapters) if self.chapters else np.zeros(0, dtype=np.float32)
        rate = self.options.sample_rate
        if rate != SAMPLE_RATE:
            audio = resample(audio, SAMPLE_RATE, rate)
        try:
            self.stream.write(write_wav_bytes(audio, rate))
            self.stream.flush()
        except BrokenPipeError as exc:
            raise OutputError("standard output was closed before the audio was written") from exc
