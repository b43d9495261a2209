"""Reading a manuscript: bytes from a file or stdin to clean Unicode text (LF line ends, no
terminal control characters: see controls.py).

Every way an input can be unusable raises its own domain error with a one-line
message that names the input, so the CLI can print it as is.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import (
    InputBinaryError,
    InputDecodeError,
    InputEmptyError,
    InputIsDirectoryError,
    InputNotFoundError,
    InvalidOptionError,
)
from .cast import CAST_KEY, Cast, cast_from_data
from .controls import remove_terminal_controls

STDIN_SOURCE = "-"
STDIN_NAME = "<stdin>"
MARKDOWN_SUFFIXES = (".md", ".markdown")
DEFAULT_ENCODING = "utf-8"
# The encoding most often behind "not UTF-8" text files (Windows Western European).
SUGGESTED_ENCODING = "cp1252"

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
EPUB_SUFFIX = ".epub"

# An ATX heading: up to three spaces, 1-6 '#', then a space or the end of the line.
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)


@dataclass(frozen=True)
class Manuscript:
    """A decoded manuscript. `text` has LF line ends only; `name` is what messages call it."""

    name: str
    text: str
    is_markdown: bool
    # Book metadata found in YAML front matter (or an EPUB's package), not spoken.
    front_matter: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Inline markup (markup.py) is read in .txt and .md files and typed text, not in EPUBs.
    markup: bool = True
    first_line: int = 1  # the file line `text` starts on (after front matter), for messages
    cast: Cast | None = None  # from front matter


def read_manuscript(
    source: str, encoding: str | None = None, stdin: BinaryIO | None = None, keep_front_matter: bool = False
) -> Manuscript:
    """Read `source` (a path, or "-" for `stdin`) and decode it.

    UTF-8 with or without a byte-order mark is the default; a UTF-16/32 mark is
    honoured too. `encoding` forces another codec. `.md`/`.markdown` files are
    Markdown; standard input is Markdown when any line is an ATX heading.
    """
    if encoding is not None:
        _check_encoding(encoding)
    if source != STDIN_SOURCE and Path(source).suffix.lower() == EPUB_SUFFIX:
        return _read_epub(source, keep_front_matter)
    if source == STDIN_SOURCE:
        name = STDIN_NAME
        data = (stdin if stdin is not None else sys.stdin.buffer).read()
    else:
        name = source
        data = _read_file(Path(source))
    text, warnings = _clean_text(decode_bytes(data, name, encoding), name)
    if not text.strip():
        raise InputEmptyError(f"{name}: the manuscript is empty (nothing but whitespace)")
    if source == STDIN_SOURCE:
        is_markdown = _ATX_HEADING.search(text) is not None
    else:
        is_markdown = Path(source).suffix.lower() in MARKDOWN_SUFFIXES
    return _with_front_matter(Manuscript(name, text, is_markdown, warnings=warnings), source)


def _clean_text(text: str, name: str) -> tuple[str, tuple[str, ...]]:
    """LF line ends and no terminal controls, with a warning when controls were removed."""
    text, removed = remove_terminal_controls(normalize_newlines(text))
    if not removed:
        return text, ()
    return text, (f"{name}: removed {removed} terminal control character(s) or escape sequence(s) (not text)",)


def _with_front_matter(manuscript: Manuscript, source: str) -> Manuscript:
    """Split YAML front matter (title, author...) off a Markdown manuscript: metadata, not speech."""
    if not manuscript.is_markdown:
        return manuscript
    from .metadata import parse_front_matter

    base = None if source == STDIN_SOURCE else Path(source).parent
    try:
        front, body = parse_front_matter(manuscript.text, base)
    except InputDecodeError as exc:
        raise InputDecodeError(f"{manuscript.name}: {exc}") from exc
    if not front:
        return manuscript
    if not body.strip():
        raise InputEmptyError(f"{manuscript.name}: the manuscript has front matter but no text")
    cast_data = front.pop(CAST_KEY, None)
    cast = None if cast_data is None else cast_from_data(cast_data, f"{manuscript.name} (front matter)", base)
    first_line = manuscript.text[: len(manuscript.text) - len(body)].count("\n") + 1
    return dataclasses.replace(manuscript, text=body, front_matter=front, first_line=first_line, cast=cast)


def _read_epub(source: str, keep_front_matter: bool) -> Manuscript:
    from .epub import epub_to_manuscript_text, read_epub

    book = read_epub(source, keep_front_matter=keep_front_matter)
    front = {"title": book.title, "author": ", ".join(book.authors) if book.authors else None}
    text = epub_to_manuscript_text(book)
    found = {k: v for k, v in front.items() if v}
    return Manuscript(
        name=source, text=text, is_markdown=True, front_matter=found, warnings=tuple(book.warnings), markup=False
    )


def manuscript_from_text(text: str, name: str = "<text>", is_markdown: bool = False) -> Manuscript:
    """A manuscript from a string (e.g. `--text`), with the same newline and emptiness rules."""
    text, warnings = _clean_text(text, name)
    if not text.strip():
        raise InputEmptyError(f"{name}: the text is empty (nothing but whitespace)")
    return Manuscript(name=name, text=text, is_markdown=is_markdown, warnings=warnings)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR (old Mac files) become LF, so every later stage sees one line end."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_bytes(data: bytes, name: str, encoding: str | None = None) -> str:
    """Decode manuscript bytes, raising InputBinaryError / InputDecodeError naming `name`."""
    bom_length = 0
    codec = encoding
    if codec is None:
        codec = DEFAULT_ENCODING
        for bom, bom_codec in _BOMS:
            if data.startswith(bom):
                codec, bom_length = bom_codec, len(bom)
                break
    # UTF-16/32 text is full of NUL bytes, so only an 8-bit reading can judge NULs on the raw bytes.
    if bom_length == 0 and encoding is None and b"\x00" in data:
        raise InputBinaryError(_binary_message(name, data.index(b"\x00")))
    try:
        text = data[bom_length:].decode(codec)
    except UnicodeDecodeError as exc:
        raise InputDecodeError(_decode_message(name, codec, encoding, bom_length + exc.start, data)) from exc
    except LookupError as exc:  # a codec that exists but is not a text encoding, e.g. "base64"
        raise InvalidOptionError(f"--encoding {encoding!r} is not a text encoding") from exc
    if text.startswith("\ufeff"):  # a mark left by an explicit --encoding utf-8 / utf-16
        text = text[1:]
    if "\x00" in text:
        raise InputBinaryError(_binary_message(name, None))
    return text


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise InvalidOptionError(f"unknown --encoding {encoding!r}; try utf-8, cp1252, latin-1 or utf-16") from exc


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputNotFoundError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputIsDirectoryError(f"{path}: is a directory, not a manuscript file") from exc
    except PermissionError as exc:
        # On Windows opening a directory is a PermissionError; tell the two apart.
        if path.is_dir():
            raise InputIsDirectoryError(f"{path}: is a directory, not a manuscript file") from exc
        raise InputNotFoundError(f"{path}: permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise InputNotFoundError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def _binary_message(name: str, offset: int | None) -> str:
    where = f" (NUL byte at offset {offset})" if offset is not None else " (it contains NUL characters)"
    return f"{name}: looks like a binary file, not text{where}"


def _decode_message(name: str, codec: str, requested: str | None, offset: int, data: bytes) -> str:
    bad = f"byte 0x{data[offset]:02x}" if offset < len(data) else "truncated at the end"
    if requested is None:
        hint = f"pass --encoding with the file's encoding, e.g. --encoding {SUGGESTED_ENCODING}"
    else:
        hint = "pass a different --encoding"
    return f"{name}: cannot decode as {codec} at byte offset {offset} ({bad}); {hint}"
