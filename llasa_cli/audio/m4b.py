"""One-file audiobooks: every chapter in one AAC `.m4b` with chapter marks, tags and cover art.

ffmpeg does the work: the chapters' audio is streamed to it as raw 16-bit PCM on a
pipe (never all converted at once), the chapter list and tags come from an
ffmetadata file (`[CHAPTER]` sections, TIMEBASE=1/1000), and the output is the
iPod flavour of MP4 (`-f ipod`, brand `M4B `) with a QuickTime chapter track, which
Apple Books, VLC, Audiobookshelf and most players read. Tags written:

| tag | from |
|---|---|
| title, album | book title |
| artist, album_artist | author |
| composer | narrator (the usual audiobook convention), also `comment` "Narrated by ..." |
| date | year |
| genre | genre |
| media_type | 2 (iTunes "audiobook") |

Chapter k starts where the audio of chapter k-1 ends: boundaries are the running
sample counts rounded to whole milliseconds, so marks are contiguous and exact to
half a millisecond. The file is written under a temporary name in its folder and
moved into place (see `export.py`).
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ExportError, InvalidOptionError
from ..text.metadata import BookMetadata, check_cover
from .audio_io import find_ffmpeg, last_line, to_pcm16_range
from .export import FFMPEG_DISK_FULL_TEXT, FFMPEG_ENCODE_TIMEOUT_S, atomic_write

DEFAULT_BITRATE = "64k"  # AAC-LC mono speech: transparent enough for narration
BITRATE_PATTERN = re.compile(r"[1-9]\d{0,2}k")
M4B_BRAND = "M4B "
ITUNES_AUDIOBOOK_MEDIA_TYPE = "2"
MS_PER_SECOND = 1000
PCM16_SCALE = 32767.0
PCM_CHUNK_SAMPLES = 1 << 18  # samples converted and piped at a time
FFMETADATA_HEADER = ";FFMETADATA1"
_FFMETADATA_SPECIAL = "\\=;#"
DEFAULT_CHAPTER_TITLE = "Chapter {number}"


@dataclass(frozen=True)
class ChapterMark:
    """A chapter of the audiobook: its title and span in milliseconds."""

    title: str
    start_ms: int
    end_ms: int


def chapter_marks(titles: Sequence[str | None], lengths: Sequence[int], sr: int) -> list[ChapterMark]:
    """Contiguous chapter marks for chapters of `lengths` samples (untitled ones get "Chapter N")."""
    marks = []
    position = 0
    for number, (title, length) in enumerate(zip(titles, lengths, strict=True), start=1):
        start_ms = round(position * MS_PER_SECOND / sr)
        position += int(length)
        end_ms = round(position * MS_PER_SECOND / sr)
        name = " ".join((title or "").split()) or DEFAULT_CHAPTER_TITLE.format(number=number)
        marks.append(ChapterMark(name, start_ms, end_ms))
    return marks


def ffmetadata_text(marks: Sequence[ChapterMark], metadata: BookMetadata) -> str:
    """An ffmetadata document with the book's tags and one [CHAPTER] per mark."""
    lines = [FFMETADATA_HEADER]
    lines.extend(f"{key}={_escape(value)}" for key, value in book_tags(metadata).items())
    for mark in marks:
        lines += ["", "[CHAPTER]", "TIMEBASE=1/1000", f"START={mark.start_ms}", f"END={mark.end_ms}"]
        lines.append(f"title={_escape(mark.title)}")
    return "\n".join(lines) + "\n"


def book_tags(metadata: BookMetadata) -> dict[str, str]:
    """The MP4 tags for `metadata` (see the module table); unset fields are left out."""
    tags: dict[str, str] = {}
    if metadata.title:
        tags["title"] = tags["album"] = metadata.title
    if metadata.author:
        tags["artist"] = tags["album_artist"] = metadata.author
    if metadata.narrator:
        tags["composer"] = metadata.narrator
        tags["comment"] = f"Narrated by {metadata.narrator}"
    if metadata.year is not None:
        tags["date"] = str(metadata.year)
    if metadata.genre:
        tags["genre"] = metadata.genre
    tags["media_type"] = ITUNES_AUDIOBOOK_MEDIA_TYPE
    return tags


def write_m4b(
    chapters: Sequence[tuple[str | None, np.ndarray]],
    sr: int,
    path: Path,
    metadata: BookMetadata,
    bitrate: str = DEFAULT_BITRATE,
) -> Path:
    """Write `chapters` ((title, mono float audio at `sr`) in order) as one `.m4b` at `path`.

    Atomic; returns `path`. Raises InvalidOptionError (no chapters, bad cover),
    OutputError (cannot write) or ExportError (ffmpeg missing or failing).
    """
    if not chapters:
        raise InvalidOptionError("an audiobook needs at least one chapter")
    if not BITRATE_PATTERN.fullmatch(bitrate):
        raise InvalidOptionError(f"bitrate must look like 64k, not {bitrate!r}")
    path = Path(path)
    cover = Path(metadata.cover).absolute() if metadata.cover is not None else None  # never read as an option
    if cover is not None:
        check_cover(cover)
    audio = [np.asarray(chunk, dtype=np.float32).reshape(-1) for _, chunk in chapters]
    marks = chapter_marks([title for title, _ in chapters], [len(a) for a in audio], sr)
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="llasa-m4b-") as scratch:
        meta_file = Path(scratch) / "chapters.ffmeta"
        meta_file.write_text(ffmetadata_text(marks, metadata), encoding="utf-8")

        def fill(temp: Path, handle: BinaryIO) -> None:
            handle.close()  # ffmpeg writes the temp file itself
            cmd = _encode_command(ffmpeg, sr, meta_file, cover, bitrate, temp.absolute())
            _run_encoder(cmd, _pcm_chunks(audio), path)

        return atomic_write(path, fill)


def _encode_command(ffmpeg: str, sr: int, meta_file: Path, cover: Path | None, bitrate: str, out: Path) -> list[str]:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y"]
    cmd += ["-f", "s16le", "-ar", str(int(sr)), "-ac", "1", "-i", "pipe:0", "-i", str(meta_file)]
    if cover is not None:
        cmd += ["-i", str(cover)]
    cmd += ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
    if cover is not None:
        cmd += ["-map", "2:v", "-c:v", "copy", "-disposition:v", "attached_pic"]
    cmd += ["-c:a", "aac", "-b:a", bitrate, "-movflags", "+faststart", "-f", "ipod", "-brand", M4B_BRAND, str(out)]
    return cmd


def _pcm_chunks(audio: Sequence[np.ndarray]) -> Iterator[bytes]:
    for chapter in audio:
        for begin in range(0, len(chapter), PCM_CHUNK_SAMPLES):
            chunk = to_pcm16_range(chapter[begin : begin + PCM_CHUNK_SAMPLES])
            yield np.round(chunk * PCM16_SCALE).astype("<i2").tobytes()


def _run_encoder(cmd: list[str], chunks: Iterator[bytes], path: Path) -> None:
    """Run ffmpeg feeding `chunks` on stdin; its stderr goes to a temp file (no pipe deadlock)."""
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        except OSError as exc:
            raise ExportError(f"ffmpeg could not encode {path.name}: {exc}") from exc
        try:
            _feed(proc, chunks)
            returncode = proc.wait(timeout=FFMPEG_ENCODE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise ExportError(f"ffmpeg timed out encoding {path.name}") from exc
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errors.seek(0)
        stderr = errors.read()
    if returncode != 0:
        if FFMPEG_DISK_FULL_TEXT.lower() in stderr.decode("utf-8", "replace").lower():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        reason = last_line(stderr) or f"exit status {returncode}"
        raise ExportError(f"ffmpeg could not encode {path.name} as m4b: {reason}")


def _feed(proc: subprocess.Popen[bytes], chunks: Iterator[bytes]) -> None:
    assert proc.stdin is not None
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg stopped early; its exit status and stderr tell why


def _escape(value: str) -> str:
    value = " ".join(str(value).split())  # no newlines in a tag
    return "".join("\\" + char if char in _FFMETADATA_SPECIAL else char for char in value)
