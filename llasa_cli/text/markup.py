"""Inline direction in a manuscript: who speaks a span, where a pause goes, how a span is said.

Tags (names in any case; spaces inside the brackets are allowed)::

    [voice=anna]"Who's there?"[/voice]   spoken by the character anna; `narrator` is the narrator.
                                          Spans may nest (the inner voice wins) and run over paragraphs.
    [pause=1.5]                           1.5 s of silence here (0-60, an `s` may follow), instead of the
                                          pause that would be there; pauses in a row add up.
    [say=Shivaun]Siobhan[/say]            the span is said as written in the tag, like a lexicon entry
                                          (never rewritten); it stays within a paragraph and holds no tags.

A tag always separates words. `\\[` writes a literal bracket (in Markdown, Markdown's own
backslash escapes apply, `\\[` among them). Brackets that are not tags stay text: `[sic]`,
`[1]`, Markdown links and footnotes. A bracketed tag name with a value or a slash that is not
one of the three (`[volce=anna]`, `[/vioce]`), a known tag without its value (`[pause]`), a
closing tag that closes nothing or the wrong span, and a span left open are errors
(InputDecodeError, exit 12) naming the line and column: markup is never read aloud.

Each tag becomes one sentinel character (a private-use code point, see `sentinel`) standing for
its `Mark`, so the text can go through chapter detection, Markdown and normalisation with its
marks in place; `marked_pieces` splits a paragraph at them again.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ..errors import InputDecodeError
from .cast import NARRATOR, character_key, check_character

VOICE_TAG, PAUSE_TAG, SAY_TAG = "voice", "pause", "say"
TAGS = (VOICE_TAG, PAUSE_TAG, SAY_TAG)
MAX_MARKED_PAUSE_SECONDS = 60.0
# Sentinels are code points of Unicode's supplementary private use areas (planes 15 and 16): never
# letters, digits, spaces or punctuation to any rule downstream, and never text a book means to show.
_FIRST_SENTINEL = 0xF0000
_SENTINEL_AREAS = ((0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
MAX_MARKS = sum(last - first + 1 for first, last in _SENTINEL_AREAS)
SENTINELS = re.compile("[\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_ESCAPE_TEXT = re.compile(r"\\[\[\]]")
_ESCAPE_MARKDOWN = re.compile(r"\\[!-/:-@\[-`{-~]")  # CommonMark: a backslash before ASCII punctuation
_TAG = re.compile(r"\[\s*(/?)\s*([^\W\d_][\w-]*)\s*(?:=\s*([^\[\]\n]*?)\s*)?\]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*s?", re.IGNORECASE)


@dataclass(frozen=True)
class Where:
    """Where a tag is written: 1-based line and column in the manuscript file."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class VoiceMark:
    """From here on `voice` speaks (None: the narrator). `where` is None for marks that
    dialogue splitting put at quotes."""

    voice: str | None
    where: Where | None = None


@dataclass(frozen=True)
class PauseMark:
    seconds: float
    where: Where | None = None


@dataclass(frozen=True)
class SayMark:
    """`written` is said as `spoken`."""

    spoken: str
    written: str
    where: Where | None = None


Mark = VoiceMark | PauseMark | SayMark
Token = str | Mark


@dataclass(frozen=True)
class MarkedText:
    """Text with one sentinel character per mark, in order: `marks[i]` stands at `sentinel(i)`."""

    text: str
    marks: tuple[Mark, ...] = ()


def sentinel(index: int) -> str:
    first_area = _SENTINEL_AREAS[0][1] - _SENTINEL_AREAS[0][0] + 1
    if index < first_area:
        return chr(_FIRST_SENTINEL + index)
    return chr(_SENTINEL_AREAS[1][0] + index - first_area)


def mark_index(char: str) -> int:
    code = ord(char)
    if code <= _SENTINEL_AREAS[0][1]:
        return code - _FIRST_SENTINEL
    return code - _SENTINEL_AREAS[1][0] + _SENTINEL_AREAS[0][1] - _SENTINEL_AREAS[0][0] + 1


def has_marks(text: str) -> bool:
    return SENTINELS.search(text) is not None


def without_sentinels(text: str) -> str:
    """`text` less any code point that would read as a sentinel (private use: nothing to say)."""
    return SENTINELS.sub("", text)


def marked_pieces(text: str) -> Iterator[str | int]:
    """The text between sentinels (empty pieces left out) and, for each sentinel, its mark's index."""
    position = 0
    for match in SENTINELS.finditer(text):
        if match.start() > position:
            yield text[position : match.start()]
        yield mark_index(match.group())
        position = match.end()
    if position < len(text):
        yield text[position:]


def map_text_pieces(text: str, change: Callable[[str], str]) -> str:
    """`text` with `change` applied to each piece between sentinels, the sentinels kept in place.

    A piece that started or ended with whitespace keeps one space there, so a tag between two
    words still separates them after `change` strips the piece.
    """
    if not has_marks(text):
        return change(text)
    out = []
    for piece in marked_pieces(text):
        if isinstance(piece, int):
            out.append(sentinel(piece))
            continue
        changed = change(piece)
        lead = " " if piece[:1].isspace() else ""
        trail = " " if piece[-1:].isspace() and changed else ""
        out.append(lead + changed + trail)
    return "".join(out)


def encode_marks(tokens: Sequence[Token]) -> MarkedText:
    """Text and marks in order: each mark becomes its sentinel."""
    marks: list[Mark] = []
    parts = []
    for token in tokens:
        if isinstance(token, str):
            parts.append(token)
            continue
        if len(marks) >= MAX_MARKS:
            raise InputDecodeError(f"more than {MAX_MARKS} tags and quotes; split the manuscript into several books")
        parts.append(sentinel(len(marks)))
        marks.append(token)
    return MarkedText("".join(parts), tuple(marks))


def expand_say(text: str, marks: Sequence[Mark], *, spoken: bool) -> str:
    """`text` with each SayMark's sentinel replaced by what is said (or, not `spoken`, what is
    written); other sentinels are left in place."""

    def replace(match: re.Match[str]) -> str:
        mark = marks[mark_index(match.group())]
        if isinstance(mark, SayMark):
            return mark.spoken if spoken else mark.written
        return match.group()

    return SENTINELS.sub(replace, text)


def read_markup(text: str, name: str, *, markdown: bool, first_line: int = 1) -> list[Token]:
    """The text cut at its tags: strings and the Marks the tags stand for.

    `name` and `first_line` (the file line `text` starts on, after front matter) place errors.
    """
    return _Reader(without_sentinels(text), name, markdown, first_line).read()


@dataclass
class _Open:
    tag: str
    value: str
    where: Where
    start: int  # index in the text just after the opening tag
    voice: str | None = None


class _Reader:
    def __init__(self, text: str, name: str, markdown: bool, first_line: int) -> None:
        self.text = text
        self.name = name
        self.first_line = first_line
        self.escape = _ESCAPE_MARKDOWN if markdown else _ESCAPE_TEXT
        self.markdown = markdown
        self.tokens: list[Token] = []
        self.open: list[_Open] = []
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def read(self) -> list[Token]:
        position = 0
        for match in re.finditer(f"{self.escape.pattern}|{_TAG.pattern}", self.text):
            if match.group().startswith("\\"):
                if not self.markdown:  # `\[` in a text file: the bracket, without the backslash
                    self._text(self.text[position : match.start()] + match.group()[1:])
                    position = match.end()
                continue
            closing, tag, value = match.group(1), match.group(2).casefold(), match.group(3)
            if not closing and value is None and tag not in TAGS:
                continue  # `[sic]`, `[Chapter notes]`: brackets in prose, not a tag
            self._text(self.text[position : match.start()])
            self._tag(match, bool(closing), tag, value)
            position = match.end()
        self._text(self.text[position:])
        if self.open:
            span = self.open[-1]
            self._fail(span.where, f"[{span.tag}={span.value}] is never closed; end it with [/{span.tag}]")
        return self.tokens

    def _text(self, text: str) -> None:
        if not text:
            return
        if self.open and self.open[-1].tag == SAY_TAG:
            return  # the written words of a [say] span: kept with its mark when it closes
        self.tokens.append(text)

    def _tag(self, match: re.Match[str], closing: bool, tag: str, value: str | None) -> None:
        where = self._where(match.start())
        shown = match.group()
        if tag not in TAGS:
            self._fail(where, f"unknown tag {shown}: the tags are [voice=NAME], [pause=SECONDS] and "
                       "[say=SPOKEN]; write \\[ for a bracket meant as text")  # fmt: skip
        if self.open and self.open[-1].tag == SAY_TAG and not (closing and tag == SAY_TAG):
            inner = self.open[-1]
            self._fail(where, f"{shown} inside [say={inner.value}] ({inner.where}): a [say] span holds plain text only")
        if closing:
            self._close(where, match.start(), shown, tag, value)
        elif value is None or not value.strip():
            example = {VOICE_TAG: "[voice=anna]", PAUSE_TAG: "[pause=1.5]", SAY_TAG: "[say=Shivaun]"}[tag]
            self._fail(where, f"{shown} needs a value, e.g. {example}")
        elif tag == PAUSE_TAG:
            self.tokens.append(PauseMark(self._seconds(where, shown, value), where))
        else:
            self._open(where, match.end(), tag, value)

    def _open(self, where: Where, start: int, tag: str, value: str) -> None:
        span = _Open(tag, value, where, start)
        if tag == VOICE_TAG:
            try:
                check_character(value)
            except ValueError as exc:
                self._fail(where, f"[voice={value}]: {exc}")
            key = character_key(value)
            span.voice = None if key == NARRATOR else key
            self.tokens.append(VoiceMark(span.voice, where))
        self.open.append(span)

    def _close(self, where: Where, offset: int, shown: str, tag: str, value: str | None) -> None:
        if value is not None:
            self._fail(where, f"{shown}: a closing tag takes no value; write [/{tag}]")
        if not self.open:
            self._fail(where, f"{shown} closes nothing: no [{tag}=...] is open")
        span = self.open[-1]
        if span.tag != tag:
            self._fail(where, f"{shown} cannot close [{tag}] while [{span.tag}={span.value}] ({span.where}) is open; "
                       f"close that first with [/{span.tag}]")  # fmt: skip
        self.open.pop()
        if tag == VOICE_TAG:
            outer = next((s.voice for s in reversed(self.open) if s.tag == VOICE_TAG), None)
            self.tokens.append(VoiceMark(outer, where))
        else:
            written = self.text[span.start : offset]
            if _BLANK_LINE.search(written):
                self._fail(span.where, f"[say={span.value}] runs past the end of its paragraph; close it there")
            self.tokens.append(SayMark(" ".join(span.value.split()), " ".join(written.split()), span.where))

    def _seconds(self, where: Where, shown: str, value: str) -> float:
        match = _SECONDS.fullmatch(value)
        seconds = float(match.group(1)) if match else -1.0
        if not 0.0 <= seconds <= MAX_MARKED_PAUSE_SECONDS:
            self._fail(where, f"{shown}: a pause is a number of seconds from 0 to {MAX_MARKED_PAUSE_SECONDS:g}")
        return seconds

    def _where(self, offset: int) -> Where:
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return Where(self.first_line + line, offset - self.line_starts[line] + 1)

    def _fail(self, where: Where, message: str) -> NoReturn:
        raise InputDecodeError(f"{self.name}, {where}: {message}")
