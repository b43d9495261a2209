"""Dialogue without markup (`--dialogue-voice NAME`): quoted speech is spoken by NAME, the
narration around it by the narrator, a sentence cut at its quotes.

Rules, for narration outside `[voice=...]` spans:
- A book quotes speech in double quotes (`"`, `“ ”`, `« »`) or, British style, in single ones
  (`'`, `‘ ’`): whichever reading finds more quotes in the manuscript, or on a tie, more quotes of
  the other kind inside them (double on a tie again). Quotes of the other kind are nested quotes,
  part of the speech they sit in.
- A straight quote opens after a space, an opening bracket or a dash and before a letter, and
  closes after a letter or punctuation and before a space or punctuation; otherwise it toggles.
  The same mark opening inside a quote nests: `"She said "no" to me," he said.`
- Apostrophes are not quotes: inside a word (`don't`, `o'clock`), eliding the start of a word
  (`'90s`, `'em`, `'tis`, `rock 'n' roll`), or closing a word before a lower-case one (the
  plural possessive `the boys' room`, `goin' home`). Only single-quote books need this rule.
- A straight double quote right after a digit is an inch mark (`a 6" nail`) outside a quote.
- A paragraph ends any quote still open: a speech running over paragraphs opens each of them
  with a quote, as typesetting has it, and a missing closing quote costs one paragraph.
- Punctuation right after a closing quote goes with the speech (`"Stop"!`), an opening bracket
  right before an opening quote too (`("Really?")`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .markup import PauseMark, SayMark, Token, VoiceMark

_DOUBLE_OPEN, _DOUBLE_CLOSE, _DOUBLE = "\u201c\u00ab", "\u201d\u00bb", '"'
_SINGLE_OPEN, _SINGLE_CLOSE, _SINGLE = "\u2018", "\u2019", "'"
_QUOTES = _DOUBLE_OPEN + _DOUBLE_CLOSE + _DOUBLE + _SINGLE_OPEN + _SINGLE_CLOSE + _SINGLE
_BEFORE_OPENING = "([{/-\u2013\u2014" + _QUOTES  # what may stand right before an opening quote
_AFTER_CLOSING = ".,;:!?)]}-\u2013\u2014\u2026*_" + _QUOTES  # ... and right after a closing one
_JOINS_SPEECH_AFTER = ".,;:!?)]}-\u2013\u2014\u2026*_"
_JOINS_SPEECH_BEFORE = "([{"
# Words whose first letters an apostrophe stands for: `'em`, `'tis`, `'90s`, `rock 'n' roll`.
_ELIDED_START = re.compile(r"(?:\d\d?s?|em|tis|twas|cause|cos|til|bout|round|n['\u2019])(?![^\W\d_])", re.IGNORECASE)
# In the flat text a [say] span reads as a word and a pause as a space; voice changes end a region.
_SAY_STANDS_FOR, _PAUSE_STANDS_FOR, _VOICE_STANDS_FOR = "a", " ", "\n"
# Quotes never run over a blank line, nor into or out of a Markdown heading's line.
_LINE = re.compile(r"[^\n]*(?:\n|$)")
_HEADING = re.compile(r" {0,3}#")
_WORD_AFTER = re.compile(r"\s[a-z]")

Span = tuple[int, int]


def mark_dialogue(tokens: Sequence[Token], voice: str) -> list[Token]:
    """`tokens` with a VoiceMark for `voice` before each quote of the narration and one back to
    the narrator after it."""
    flat = _Flat.of(tokens)
    regions = list(flat.narration())
    single = _single_quoted(flat.text, regions)
    inserts: dict[int, list[VoiceMark]] = {}
    for start, end in regions:
        for paragraph_start, paragraph_end in _paragraphs(flat.text, start, end):
            for a, b in quote_spans(flat.text[paragraph_start:paragraph_end], single):
                inserts.setdefault(paragraph_start + a, []).append(VoiceMark(voice))
                inserts.setdefault(paragraph_start + b, []).insert(0, VoiceMark(None))
    return flat.rebuild(inserts)


def quote_spans(text: str, single: bool) -> list[Span]:
    """Spans of quoted speech in one paragraph, with the punctuation that joins them."""
    spans = _Quotes(text, single).spans()
    return [_widen(text, start, end) for start, end in spans]


def _single_quoted(text: str, regions: Sequence[Span]) -> bool:
    """Whether the book quotes speech in single quotes: read so, it finds more quotes than read
    with double ones, or as many with more of the other kind nested inside."""
    found = {single: [0, 0] for single in (False, True)}  # quotes found, other kind's quotes inside them
    for start, end in regions:
        for paragraph_start, paragraph_end in _paragraphs(text, start, end):
            paragraph = text[paragraph_start:paragraph_end]
            for single, tally in found.items():
                other = _DOUBLE_OPEN + _DOUBLE if single else _SINGLE_OPEN + _SINGLE
                for a, b in _Quotes(paragraph, single).spans():
                    tally[0] += 1
                    tally[1] += sum(paragraph.count(quote, a + 1, b - 1) for quote in other)
    return found[True] > found[False]


@dataclass
class _Quotes:
    """The quote state machine over one paragraph."""

    text: str
    single: bool
    depth: int = 0
    start: int = 0
    found: list[Span] = field(default_factory=list)

    def spans(self) -> list[Span]:
        for index, char in enumerate(self.text):
            if char in _QUOTES:
                self._quote(index, char)
        if self.depth:  # open at the paragraph's end: it ends there (before any line end, which must stay blank)
            self.found.append((self.start, len(self.text.rstrip())))
        return self.found

    def _quote(self, index: int, char: str) -> None:
        if not self.single:
            if char in _DOUBLE_OPEN:
                self._open(index)
            elif char in _DOUBLE_CLOSE:
                self._close(index)
            elif char == _DOUBLE and not (self.depth == 0 and self.inch(index)):
                self._straight(index)
            return
        if char == _SINGLE_OPEN and not self.elides(index):
            self._open(index)
        elif char in (_SINGLE_CLOSE, _SINGLE) and self.closes(index) and not self.ends_word(index):
            self._close(index)
        elif char == _SINGLE and self.opens(index) and not self.closes(index) and not self.elides(index):
            self._open(index)

    def _straight(self, index: int) -> None:
        opens = self.opens(index)
        if opens == self.closes(index):  # both or neither by its neighbours: it toggles
            opens = self.depth == 0
        if opens:
            self._open(index)
        else:
            self._close(index)

    def _open(self, index: int) -> None:
        if self.depth == 0:
            self.start = index
        self.depth += 1

    def _close(self, index: int) -> None:
        if self.depth == 0:
            return  # a closing quote with nothing open: a typo, or the end of a quote we never saw start
        self.depth -= 1
        if self.depth == 0:
            self.found.append((self.start, index + 1))

    def _before(self, index: int) -> str:
        return self.text[index - 1] if index > 0 else " "

    def _after(self, index: int) -> str:
        return self.text[index + 1] if index + 1 < len(self.text) else " "

    def opens(self, index: int) -> bool:
        before, after = self._before(index), self._after(index)
        return (before.isspace() or before in _BEFORE_OPENING) and not after.isspace()

    def closes(self, index: int) -> bool:
        before, after = self._before(index), self._after(index)
        return not before.isspace() and (after.isspace() or after in _AFTER_CLOSING)

    def inch(self, index: int) -> bool:
        return self._before(index).isdigit()

    def elides(self, index: int) -> bool:
        return _ELIDED_START.match(self.text, index + 1) is not None

    def ends_word(self, index: int) -> bool:
        """An apostrophe closing a word before a lower-case one: `the boys' room`, `goin' home`."""
        return self._before(index).isalpha() and _WORD_AFTER.match(self.text, index + 1) is not None


def _widen(text: str, start: int, end: int) -> Span:
    while start > 0 and text[start - 1] in _JOINS_SPEECH_BEFORE:
        start -= 1
    while end < len(text) and text[end] in _JOINS_SPEECH_AFTER:
        end += 1
    return start, end


def _paragraphs(text: str, start: int, end: int) -> Iterator[Span]:
    """Paragraphs of text[start:end]: lines between blank ones, and each heading line alone."""
    first = start
    for line in _LINE.finditer(text, start, end):
        if not line.group():
            break
        heading = _HEADING.match(line.group()) is not None
        if heading or not line.group().strip():
            if first < line.start():
                yield first, line.start()
            if heading:
                yield line.start(), line.end()
            first = line.end()
    if first < end:
        yield first, end


@dataclass
class _Flat:
    """Tokens as one string (each mark one character standing for it) and where the marks were."""

    text: str
    marks: dict[int, PauseMark | SayMark | VoiceMark]

    @classmethod
    def of(cls, tokens: Sequence[Token]) -> _Flat:
        parts: list[str] = []
        marks: dict[int, PauseMark | SayMark | VoiceMark] = {}
        length = 0
        for token in tokens:
            if isinstance(token, str):
                parts.append(token)
                length += len(token)
                continue
            marks[length] = token
            parts.append(
                _SAY_STANDS_FOR if isinstance(token, SayMark)
                else _PAUSE_STANDS_FOR if isinstance(token, PauseMark)
                else _VOICE_STANDS_FOR
            )  # fmt: skip
            length += 1
        return cls("".join(parts), marks)

    def narration(self) -> Iterator[Span]:
        """Spans of the text the narrator speaks (outside `[voice=...]`)."""
        start: int | None = 0
        for position, mark in self.marks.items():
            if not isinstance(mark, VoiceMark):
                continue
            if mark.voice is None and start is None:
                start = position + 1
            elif mark.voice is not None and start is not None:
                yield start, position
                start = None
        if start is not None:
            yield start, len(self.text)

    def rebuild(self, inserts: dict[int, list[VoiceMark]]) -> list[Token]:
        tokens: list[Token] = []
        previous = 0
        for position in sorted({*self.marks, *inserts}):
            if position > previous:
                tokens.append(self.text[previous:position])
            tokens.extend(inserts.get(position, ()))
            previous = position
            if position in self.marks:
                tokens.append(self.marks[position])
                previous = position + 1
        if previous < len(self.text):
            tokens.append(self.text[previous:])
        return tokens
