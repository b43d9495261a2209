"""Where stitched chapters go: one file per chapter in a folder, one m4b audiobook, or one WAV stream.

Every sink follows `ChapterSink`: the pipeline hands it a finished chapter's segment audio, and
the sink stitches (stitch.py), masters (acx.py) and writes it (export.py, m4b.py, subtitles.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import OutputError
from ..options import StitchOptions
from ..text.metadata import BookMetadata
from ..text.plan import Chapter, Segment
from .stitch import ChapterAudio, render_chapter

STREAM_DESTINATION = "<stdout>"
M4B_CHAPTER_FORMAT = "wav"  # lossless chapter files inside the job folder, from which the m4b is built


@dataclass(frozen=True)
class WrittenChapter:
    """Where a sink put a chapter, how long it is, and where each piece sits in its file (start and
    end seconds, in the order the pieces were given; empty for a stream, which keeps no file)."""

    destination: str
    audio_seconds: float
    spans: tuple[tuple[float, float], ...] = ()


class ChapterSink(Protocol):
    """Where finished chapters go: files in a folder, one audiobook, or one stream."""

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> WrittenChapter: ...

    def destination(self, chapter: Chapter) -> str: ...

    def exists(self, chapter: Chapter) -> bool:
        """Whether the chapter's output is already there (a stream never is)."""
        ...

    def fingerprint(self) -> str:
        """Everything about the sink that changes a chapter's output (format, pauses, loudness...)."""
        ...

    def close(self) -> None: ...


def _options_fingerprint(options: StitchOptions) -> str:
    return json.dumps(dataclasses.asdict(options), sort_keys=True)


def stitch_pieces(pieces: Sequence[tuple[np.ndarray, Segment]], options: StitchOptions) -> ChapterAudio:
    """Assemble and level a chapter; with `acx`, master it and move the piece offsets with it."""
    chapter, _loudness = render_chapter([(audio, segment.pause_after) for audio, segment in pieces], options)
    if not options.acx:
        return chapter
    from .acx import MASTER_LEAD_S, acx_master

    mastered = acx_master(chapter.audio, chapter.sample_rate)
    # Mastering fits the room tone: speech now starts MASTER_LEAD_S in, wherever the lead-in put it.
    shift = round(MASTER_LEAD_S * chapter.sample_rate) - (chapter.starts[0] if chapter.starts else 0)
    return ChapterAudio(
        audio=mastered,
        sample_rate=chapter.sample_rate,
        starts=tuple(max(0, s + shift) for s in chapter.starts),
        ends=tuple(min(len(mastered), e + shift) for e in chapter.ends),
    )


class FolderSink:
    """Writes `OUTDIR/NN-slug.FORMAT`, each atomically (temporary name, then `os.replace`)."""

    def __init__(self, folder: Path, options: StitchOptions, lang: str = "en") -> None:
        self.folder = folder
        self.options = options
        self.lang = lang
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

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> WrittenChapter:
        from .export import export_audio
        from .subtitles import timed_segments, write_timings

        chapter_audio = stitch_pieces(pieces, self.options)
        path = self.path_for(chapter)
        export_audio(chapter_audio.audio, SAMPLE_RATE, path, self.options.format, self.options.sample_rate)
        # One timing of the pieces serves the subtitles and the spans the job records for review.
        segments = [segment for _, segment in pieces]
        timed = timed_segments([s.text for s in segments], chapter_audio, ids=[s.segment_id for s in segments])
        if self.options.subtitles:
            write_timings(self.folder, chapter.slug, timed, path.name, lang=self.lang)
        spans = tuple((t.start, t.end) for t in timed)
        return WrittenChapter(destination=str(path), audio_seconds=chapter_audio.seconds, spans=spans)

    def close(self) -> None:
        pass


class M4bSink:
    """One audiobook: chapters are kept as WAV files in the job folder (so a resumed or edited run
    rewrites only what changed), and the m4b is rebuilt from them when the run completes."""

    def __init__(self, folder: Path, cache: Path, options: StitchOptions, metadata: BookMetadata, stem: str) -> None:
        self.folder = folder
        self.metadata = metadata
        self.stem = stem
        self.chapters: dict[int, tuple[Chapter, Path]] = {}
        self.cache = FolderSink(cache, dataclasses.replace(options, format=M4B_CHAPTER_FORMAT, subtitles=False))
        self.options = options
        FolderSink(folder, options)  # creates and checks the output folder

    @property
    def book_path(self) -> Path:
        return self.folder / f"{self.stem}.m4b"

    def destination(self, chapter: Chapter) -> str:
        return self.cache.destination(chapter)

    def exists(self, chapter: Chapter) -> bool:
        exists = self.cache.exists(chapter)
        if exists:
            self.chapters[chapter.number] = (chapter, self.cache.path_for(chapter))
        return exists

    def fingerprint(self) -> str:
        return self.cache.fingerprint()

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> WrittenChapter:
        written = self.cache.write(chapter, pieces)
        self.chapters[chapter.number] = (chapter, Path(written.destination))
        return written

    def close(self) -> None:
        import soundfile

        from .m4b import write_m4b

        ordered = [self.chapters[n] for n in sorted(self.chapters)]
        audio = [(chapter.title, soundfile.read(path, dtype="float32")[0]) for chapter, path in ordered]
        write_m4b(audio, self.options.sample_rate, self.book_path, self.metadata)


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

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> WrittenChapter:
        chapter_audio = stitch_pieces(pieces, self.options)
        self.chapters.append(chapter_audio.audio)
        return WrittenChapter(destination=STREAM_DESTINATION, audio_seconds=chapter_audio.seconds)

    def close(self) -> None:
        from .audio_io import resample, write_wav_bytes

        audio = np.concatenate(self.chapters) if self.chapters else np.zeros(0, dtype=np.float32)
        rate = self.options.sample_rate
        if rate != SAMPLE_RATE:
            audio = resample(audio, SAMPLE_RATE, rate)
        try:
            self.stream.write(write_wav_bytes(audio, rate))
            self.stream.flush()
        except BrokenPipeError as exc:
            raise OutputError("standard output was closed before the audio was written") from exc
