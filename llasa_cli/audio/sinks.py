"""Where stitched chapters go: one file per chapter in a folder, one m4b audiobook, or one WAV stream.

Every sink follows `ChapterSink`: the pipeline hands it a finished chapter's segment audio, and
the sink stitches (stitch.py), masters (acx.py) and writes it (export.py, m4b.py, subtitles.py).
When the run ends, `close` hands back the audiobook the chapters are gathered into (m4b), for the
pipeline to write when it is out of date.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
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
    files: tuple[Path, ...] = ()  # every file written: the chapter's and its subtitles (none for a stream)
    kind: str = ""  # the format of the chapter's audio file
    book: str | None = None  # the audiobook the chapter is gathered into


@dataclass(frozen=True)
class WrittenBook:
    """An audiobook written from its chapter files."""

    path: Path
    audio_seconds: float
    chapters: int
    files: tuple[Path, ...]  # the book and, with subtitles, its SRT, WebVTT and manifest


@dataclass(frozen=True)
class PendingBook:
    """The audiobook a sink gathers its chapters into, ready to be written when it is out of date."""

    path: Path
    subtitles: tuple[Path, ...]  # its SRT, WebVTT and manifest, when asked for
    chapter_files: tuple[Path, ...]  # in order
    fingerprint: str  # what makes the file besides the chapters' audio: tags, cover, titles, subtitles
    kind: str
    write: Callable[[], WrittenBook]

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.path, *self.subtitles)

    def audio_seconds(self) -> float:
        import soundfile

        return sum(soundfile.info(str(path)).duration for path in self.chapter_files)


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

    def close(self) -> PendingBook | None:
        """The run has written its chapters: finish (a stream is written now) and hand back the
        audiobook they are gathered into, if the sink makes one."""
        ...


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


def _open_folder(folder: Path) -> None:
    """Create and check an output folder, and remove what writers killed mid-file left in it."""
    from .export import remove_dead_temps

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from exc
    if not folder.is_dir():
        raise OutputError(f"output {folder} exists and is not a folder")
    remove_dead_temps(folder)


class FolderSink:
    """Writes `OUTDIR/NN-slug.FORMAT`, each atomically (temporary name, then `os.replace`)."""

    def __init__(self, folder: Path, options: StitchOptions, lang: str = "en") -> None:
        self.folder = folder
        self.options = options
        self.lang = lang
        _open_folder(folder)

    def path_for(self, chapter: Chapter) -> Path:
        # The slug is built to stay inside the folder; check anyway, since a file name is a security boundary.
        path = (self.folder / f"{chapter.slug}.{self.options.format}").resolve()
        if path.parent != self.folder.resolve():
            raise OutputError(f"chapter file name {chapter.slug!r} would leave the output folder")
        return path

    def destination(self, chapter: Chapter) -> str:
        return str(self.path_for(chapter))

    def exists(self, chapter: Chapter) -> bool:
        return all(path.is_file() for path in self._files(chapter))

    def _files(self, chapter: Chapter) -> list[Path]:
        """The chapter's file and, with subtitles, its SRT, WebVTT and manifest."""
        from .subtitles import timing_paths

        path = self.path_for(chapter)
        return [path, *timing_paths(self.folder, chapter.slug)] if self.options.subtitles else [path]

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
        timed = timed_segments(
            [s.text for s in segments],
            chapter_audio,
            ids=[s.segment_id for s in segments],
            voices=[s.voice for s in segments],
        )
        if self.options.subtitles:
            write_timings(self.folder, chapter.slug, timed, path.name, lang=self.lang)
        spans = tuple((t.start, t.end) for t in timed)
        return WrittenChapter(
            destination=str(path),
            audio_seconds=chapter_audio.seconds,
            spans=spans,
            files=tuple(self._files(chapter)),
            kind=self.options.format,
        )

    def close(self) -> None:
        return None


class M4bSink:
    """One audiobook: chapters are kept as WAV files in the job folder (so a resumed or edited run
    rewrites only what changed), and the m4b is built from them when the run completes. With
    subtitles, the chapters' timings become one SRT, WebVTT and manifest beside the m4b, timed
    from the start of the book."""

    kind = "m4b"  # of the book and its subtitles; its chapter files are WAV

    def __init__(
        self, folder: Path, cache: Path, options: StitchOptions, metadata: BookMetadata, stem: str, lang: str = "en"
    ) -> None:
        self.folder = folder
        self.metadata = metadata
        self.stem = stem
        self.lang = lang
        self.chapters: dict[int, tuple[Chapter, Path]] = {}
        self.cache = FolderSink(cache, dataclasses.replace(options, format=M4B_CHAPTER_FORMAT), lang)
        self.options = options
        _open_folder(folder)

    @property
    def book_path(self) -> Path:
        return self.folder.resolve() / f"{self.stem}.m4b"

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
        return dataclasses.replace(written, book=str(self.book_path))

    def close(self) -> PendingBook:
        from .subtitles import timing_paths

        ordered = [self.chapters[n] for n in sorted(self.chapters)]
        subtitles = timing_paths(self.folder, self.stem) if self.options.subtitles else ()
        return PendingBook(
            path=self.book_path,
            subtitles=subtitles,
            chapter_files=tuple(path for _, path in ordered),
            fingerprint=self._book_fingerprint([chapter for chapter, _ in ordered]),
            kind=self.kind,
            write=lambda: self._write_book(ordered, (self.book_path, *subtitles)),
        )

    def _book_fingerprint(self, chapters: list[Chapter]) -> str:
        tags = dataclasses.asdict(dataclasses.replace(self.metadata, cover=None))
        cover = self.metadata.cover
        # The cover's content, not its path: a moved job reads its own copy of the same image.
        cover_id = hashlib.sha256(cover.read_bytes()).hexdigest() if cover is not None and cover.is_file() else cover
        return json.dumps(
            {
                "tags": tags,
                "cover": str(cover_id),
                "titles": [chapter.title for chapter in chapters],
                "subtitles": self.options.subtitles,
                "sample_rate": self.options.sample_rate,
            },
            sort_keys=True,
        )

    def _write_book(self, ordered: list[tuple[Chapter, Path]], files: tuple[Path, ...]) -> WrittenBook:
        import soundfile

        from .m4b import write_m4b

        audio = [(chapter.title, soundfile.read(path, dtype="float32")[0]) for chapter, path in ordered]
        rate = self.options.sample_rate
        write_m4b(audio, rate, self.book_path, self.metadata)
        if self.options.subtitles:
            self._write_book_timings(ordered, [len(chunk) / rate for _, chunk in audio])
        seconds = sum(len(chunk) for _, chunk in audio) / rate
        return WrittenBook(self.book_path, seconds, len(ordered), files)

    def _write_book_timings(self, ordered: list[tuple[Chapter, Path]], lengths: list[float]) -> None:
        """The chapters' timings (their manifests in the job folder), placed where each chapter
        starts in the book."""
        from .subtitles import read_manifest, shifted, timing_paths, write_timings

        timed = []
        offset = 0.0
        for (chapter, _), seconds in zip(ordered, lengths, strict=True):
            manifest = timing_paths(self.cache.folder, chapter.slug)[2]
            timed += shifted(read_manifest(manifest), offset)
            offset += seconds
        write_timings(self.folder, self.stem, timed, self.book_path.name, lang=self.lang)


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
