"""Reading an m4b back, as players see it: its tags, chapter marks and cover (via ffmpeg).

Tests use it to check what `llasa_cli.audio.m4b.write_m4b` wrote; the product never reads an m4b.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llasa_cli.audio.audio_io import find_ffmpeg, last_line
from llasa_cli.audio.m4b import DEFAULT_CHAPTER_TITLE, MS_PER_SECOND, ChapterMark
from llasa_cli.errors import ExportError

FFMPEG_READ_TIMEOUT_S = 120.0
FFMPEG_NO_STREAM_TEXT = "does not contain any stream"


@dataclass(frozen=True)
class AudiobookInfo:
    """What `read_audiobook_info` finds in a file: global tags and chapter marks."""

    tags: dict[str, str]
    chapters: tuple[ChapterMark, ...]


def read_audiobook_info(path: Path) -> AudiobookInfo:
    """Global tags and chapter marks of an audio file, read back with `ffmpeg -f ffmetadata`."""
    source = str(Path(path).absolute())  # an absolute path is never taken for an option or a protocol
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-i", source, "-f", "ffmetadata", "-"]
    proc = _run_reader(cmd, path)
    return parse_ffmetadata(proc.decode("utf-8", "replace"))


def extract_cover(path: Path) -> bytes | None:
    """The attached cover picture of an audio file, as stored (None when it has none)."""
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(Path(path).absolute())]
    cmd += ["-map", "0:v:0?", "-c", "copy", "-frames:v", "1", "-f", "image2pipe", "-"]
    try:
        data = _run_reader(cmd, path)
    except _NoStreamError:
        return None
    return data or None


class _NoStreamError(ExportError):
    """ffmpeg found nothing to copy (e.g. no picture stream)."""


def _run_reader(cmd: list[str], path: Path) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_READ_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"ffmpeg could not read {path}: {exc}") from exc
    if proc.returncode != 0:
        reason = last_line(proc.stderr) or f"exit status {proc.returncode}"
        error = _NoStreamError if FFMPEG_NO_STREAM_TEXT in reason else ExportError
        raise error(f"ffmpeg could not read {path}: {reason}")
    return proc.stdout


def parse_ffmetadata(text: str) -> AudiobookInfo:
    """Parse an ffmetadata document (global tags, [CHAPTER] sections; escapes undone)."""
    tags: dict[str, str] = {}
    chapters: list[dict[str, str]] = []
    section: dict[str, str] | None = tags
    for line in _logical_lines(text):
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = {} if line == "[CHAPTER]" else None
            if section is not None:
                chapters.append(section)
            continue
        key, sep, value = _split_unescaped(line)
        if sep and section is not None:
            section[key] = value
    return AudiobookInfo(tags=tags, chapters=tuple(_chapter_mark(c, n) for n, c in enumerate(chapters, 1)))


def _chapter_mark(fields: dict[str, str], number: int) -> ChapterMark:
    num, _, den = fields.get("TIMEBASE", "1/1000").partition("/")
    scale = MS_PER_SECOND * int(num or 1) / int(den or 1)
    start = round(int(fields.get("START", "0")) * scale)
    end = round(int(fields.get("END", "0")) * scale)
    return ChapterMark(fields.get("title", DEFAULT_CHAPTER_TITLE.format(number=number)), start, end)


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with escaped newlines joined back (a trailing backslash continues a line)."""
    current = ""
    for line in text.split("\n"):
        current += line
        if _ends_escaped(current):
            current = current[:-1] + "\n"
            continue
        yield current
        current = ""
    if current:
        yield current


def _ends_escaped(line: str) -> bool:
    backslashes = len(line) - len(line.rstrip("\\"))
    return backslashes % 2 == 1


def _split_unescaped(line: str) -> tuple[str, str, str]:
    """Split `key=value` at the first unescaped '=', undoing backslash escapes in both."""
    key: list[str] = []
    value: list[str] = []
    target, sep = key, ""
    chars = iter(line)
    for char in chars:
        if char == "\\":
            target.append(next(chars, ""))
        elif char == "=" and not sep:
            target, sep = value, "="
        else:
            target.append(char)
    return "".join(key), sep, "".join(value)
