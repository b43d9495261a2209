"""Book metadata: title, author, narrator, year, genre and cover, from front matter and flags.

A Markdown manuscript may start with YAML front matter::

    ---
    title: The Lighthouse
    author: A. Writer          # or `authors: [A, B]`, `creator`
    narrator: Llasa            # or `narrators`, `reader`, `read_by`
    year: 2024                 # or `date: 2024-05-01` (only the year is kept)
    genre: Fiction
    cover: cover.jpg           # relative to the manuscript's folder
    ---

It may also hold the book's `cast:` (character -> voice, read by cast.py), which is returned as
the raw data under "cast".

Rules (pure text processing, plain YAML data only: see plain_yaml.py):
- The block must start on the very first line (`---`) and end with a line `---` or `...`.
- It is taken as front matter only when it parses to a mapping holding at least one
  known key (above, case-insensitive). Anything else (`---` used as a thematic break,
  a setext heading) is left in the text untouched, so no manuscript text is lost.
- Unknown keys are ignored. A block that is meant as front matter (known key) but is
  not valid YAML, or has a value of the wrong kind, raises InputDecodeError.

Command-line flags win over front matter: `merge_metadata(front, flags)`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputDecodeError, InvalidOptionError
from .cast import CAST_KEY
from .controls import without_terminal_controls
from .plain_yaml import load_plain_yaml

FENCE_OPEN = "---"
FENCE_CLOSE = ("---", "...")
MIN_YEAR, MAX_YEAR = 1, 9999
# What front matter may call each field.
FIELD_ALIASES: Mapping[str, str] = {
    "title": "title",
    "author": "author",
    "authors": "author",
    "creator": "author",
    "narrator": "narrator",
    "narrators": "narrator",
    "reader": "narrator",
    "read_by": "narrator",
    "year": "year",
    "date": "year",
    "genre": "genre",
    "cover": "cover",
    "cover_image": "cover",
    "cast": CAST_KEY,
}
LIST_SEPARATOR = ", "
# JPEG and PNG are the cover formats every audiobook player shows.
COVER_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}
_YEAR_PREFIX = re.compile(r"^\s*(\d{1,4})(?:\D|$)")


@dataclass(frozen=True)
class BookMetadata:
    """What an audiobook file is tagged with. Every field is optional."""

    title: str | None = None
    author: str | None = None
    narrator: str | None = None
    year: int | None = None
    genre: str | None = None
    cover: Path | None = None

    def __post_init__(self) -> None:
        if self.year is not None and not MIN_YEAR <= self.year <= MAX_YEAR:
            raise InvalidOptionError(f"year must be between {MIN_YEAR} and {MAX_YEAR}, not {self.year}")


def parse_front_matter(text: str, base_dir: Path | None = None) -> tuple[dict[str, Any], str]:
    """Split YAML front matter off `text`: (BookMetadata field values found, and the cast's raw
    data under "cast", remaining body).

    Returns `({}, text)` unchanged when there is no front matter (see the module rules).
    A relative `cover` is resolved against `base_dir` when it is given.
    """
    block = _front_matter_block(text)
    if block is None:
        return {}, text
    raw, body = block
    try:
        data = load_plain_yaml(raw)
    except ValueError as exc:
        if not _mentions_known_key(raw):
            return {}, text
        raise InputDecodeError(f"front matter {exc}") from exc
    if not isinstance(data, dict):
        return {}, text
    values = _known_values(data)
    if not values:
        return {}, text
    found = {name: _coerce(name, value) for name, value in values.items()}
    found = {name: value for name, value in found.items() if value is not None}
    if "cover" in found and base_dir is not None and not found["cover"].is_absolute():
        found["cover"] = Path(base_dir) / found["cover"]
    return found, body


def metadata_from_fields(values: Mapping[str, Any]) -> BookMetadata:
    """A BookMetadata from a mapping of field values (unknown keys ignored, values coerced)."""
    names = {f.name for f in fields(BookMetadata)}
    coerced = {name: _coerce(name, value) for name, value in values.items() if name in names}
    return BookMetadata(**{name: value for name, value in coerced.items() if value is not None})


def merge_metadata(front: Mapping[str, Any] | BookMetadata, flags: Mapping[str, Any] | BookMetadata) -> BookMetadata:
    """Front matter overlaid with command-line flags: a flag that is set (not None) wins."""
    base = _as_dict(front)
    base.update({name: value for name, value in _as_dict(flags).items() if value is not None})
    return metadata_from_fields(base)


def check_cover(path: Path) -> str:
    """The image kind ("jpeg" or "png") of a cover file; InvalidOptionError if unusable."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(max(len(magic) for magic in COVER_MAGIC))
    except FileNotFoundError as exc:
        raise InvalidOptionError(f"cover image not found: {path}") from exc
    except OSError as exc:
        raise InvalidOptionError(f"cannot read cover image {path}: {exc.strerror or exc}") from exc
    for magic, kind in COVER_MAGIC.items():
        if head.startswith(magic):
            return kind
    raise InvalidOptionError(f"cover image {path} is not a JPEG or PNG file")


def _as_dict(value: Mapping[str, Any] | BookMetadata) -> dict[str, Any]:
    if isinstance(value, BookMetadata):
        return {f.name: getattr(value, f.name) for f in fields(BookMetadata)}
    return dict(value)


def _front_matter_block(text: str) -> tuple[str, str] | None:
    """(YAML text, body after the closing fence) when `text` opens with a fenced block."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != FENCE_OPEN:
        return None
    for number in range(1, len(lines)):
        if lines[number].rstrip() in FENCE_CLOSE:
            return "\n".join(lines[1:number]), "\n".join(lines[number + 1 :])
    return None


def _mentions_known_key(raw: str) -> bool:
    keys = (match.group(1).lower() for match in re.finditer(r"^\s*([A-Za-z_]+)\s*:", raw, re.MULTILINE))
    return any(key in FIELD_ALIASES for key in keys)


def _known_values(data: Mapping[Any, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = FIELD_ALIASES.get(str(key).strip().lower())
        if name is not None and name not in values:
            values[name] = value
    return values


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == CAST_KEY:
        return value
    if name == "year":
        return _coerce_year(value)
    if name == "cover":
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value.strip():
            raise InputDecodeError(f"front matter: cover must be a file path, not {value!r}")
        return Path(value.strip())
    return _coerce_text(name, value)


def _coerce_text(name: str, value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        parts = [_coerce_text(name, item) for item in value]
        text = LIST_SEPARATOR.join(part for part in parts if part)
    elif isinstance(value, (str, int, float, dt.date)) and not isinstance(value, bool):
        text = str(value)
    else:
        raise InputDecodeError(f"front matter: {name} must be text, not {type(value).__name__}")
    text = " ".join(without_terminal_controls(text).split())
    return text or None


def _coerce_year(value: Any) -> int:
    if isinstance(value, bool):
        raise InputDecodeError(f"front matter: year must be a year such as 2024, not {value!r}")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.year
    if isinstance(value, int):
        return value
    match = _YEAR_PREFIX.match(str(value))
    if match is None:
        raise InputDecodeError(f"front matter: year must be a year such as 2024, not {value!r}")
    return int(match.group(1))
