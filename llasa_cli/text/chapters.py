"""Finding chapters in a manuscript, and naming their files.

Detection, in order of precedence:
1. `options.chapter_pattern`: every line whose stripped text the regex matches in
   full starts a chapter; the line (less any `#` markers) is the title. The pattern
   is run by `regex` with a time limit, so one that backtracks without end fails
   with an error naming it instead of hanging.
2. Markdown: top-level headings of level 1 and 2 (ATX `#`/`##`, and setext
   underlines, since every viewer shows those as headings too). Deeper headings
   (`###`...) stay in the chapter and are read as paragraphs of its text;
   headings inside code blocks, quotes or lists do not count. A Markdown file
   with no such heading falls back to rule 3.
3. Plain text: a line standing alone (blank line or start of text before it,
   blank line or end after it) such as `Chapter 12`, `CHAPTER XII.`,
   `Chapter Twelve: The Storm`, `Part One - Arrival`, `Prologue`, `Epilogue`
   (case-insensitive), or Chinese `第十二章`.

Text before the first heading is an untitled chapter when it holds any letter or
digit, or a tag (markup.py). A heading with nothing under it is still a chapter (its title is spoken).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass

import regex
from num2words import num2words

from ..errors import InvalidOptionError
from ..options import TextOptions
from .manuscript import normalize_newlines
from .markdown_parser import markdown_parser
from .markup import has_marks
from .normalize import HAS_WORD, ROMAN, collapse_whitespace, inline_text

# Chapter numbers written as words are recognised up to this ("Chapter Ninety-Nine").
MAX_WORD_NUMBER = 100
# A longer line is prose, not a heading, even if it starts like one.
MAX_TITLE_CHARS = 120
SLUG_MIN_DIGITS = 2
SLUG_MAX_TITLE_CHARS = 50
SLUG_FALLBACK = "chapter"
# A --chapter-pattern may backtrack for ages on some line: each line, and all lines together, get this long.
PATTERN_LINE_SECONDS = 1.0
PATTERN_TOTAL_SECONDS = 10.0
_MARKDOWN_CHAPTER_TAGS = ("h1", "h2")
_NOT_PROSE_TOKENS = ("fence", "code_block", "html_block")


@dataclass(frozen=True)
class RawChapter:
    """A chapter as written: its title (None for untitled text) and its body, not yet normalised."""

    title: str | None
    body: str


@dataclass(frozen=True)
class _Heading:
    start: int  # first line of the heading
    end: int  # first line after it
    title: str | None


def _number_words() -> str:
    # num2words spells the numbers, so no hand table: "twenty-one" also matches "twenty one".
    spelled = {num2words(n) for n in range(1, MAX_WORD_NUMBER + 1)}
    patterns = (re.escape(s).replace(r"\-", "[- ]").replace(r"\ ", r"\s+") for s in spelled)
    return "|".join(sorted(patterns, key=len, reverse=True))


_KEYWORDS = r"chapter|part|book|volume"
_SECTIONS = r"prologue|epilogue|preface|foreword|afterword|interlude|introduction"
_SUBTITLE = r"(?:\s*[:.]\s*|\s+[-\u2013\u2014]\s+|\s*[\u2013\u2014]\s*)\S.*"
_CHAPTER_LINE = re.compile(
    rf"(?i:(?:{_KEYWORDS})\s+(?:\d{{1,4}}|{ROMAN}|{_number_words()})|{_SECTIONS})(?:{_SUBTITLE})?\.?"
    r"|第[〇零一二三四五六七八九十百千两\d]+[章节回卷部篇](?:[\s:：]+\S.*)?|序章|序言|楔子|尾声"
)
_ATX_MARKERS = re.compile(r"^#{1,6}(?:\s+|$)|\s+#+$")


def split_chapters(text: str, is_markdown: bool, options: TextOptions) -> list[RawChapter]:
    """Cut `text` into chapters (see the module docstring for the rules).

    `detect_chapters=False` gives one untitled chapter holding all of the text.
    """
    text = normalize_newlines(text)
    if not options.detect_chapters:
        return [RawChapter(None, text)]
    lines = text.split("\n")
    headings: list[_Heading] = []
    skip: set[int] = set()
    if is_markdown:
        headings, skip = _markdown_headings(text)
    if options.chapter_pattern:
        headings = _pattern_headings(lines, compile_chapter_pattern(options.chapter_pattern), is_markdown, skip)
    elif not headings:
        headings = _standalone_headings(lines, skip)
    return _cut(text, lines, headings)


def _cut(text: str, lines: list[str], headings: list[_Heading]) -> list[RawChapter]:
    if not headings:
        return [RawChapter(None, text)]
    chapters = []
    preamble = "\n".join(lines[: headings[0].start])
    if HAS_WORD.search(preamble) or has_marks(preamble):  # tags before the first heading still count
        chapters.append(RawChapter(None, preamble))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        stop = following.start if following else len(lines)
        chapters.append(RawChapter(heading.title, "\n".join(lines[heading.end : stop])))
    return chapters


def _markdown_headings(text: str) -> tuple[list[_Heading], set[int]]:
    """Top-level level-1/2 headings, and the lines of code and HTML blocks (never headings)."""
    tokens = markdown_parser().parse(text)
    headings: list[_Heading] = []
    skip: set[int] = set()
    for index, token in enumerate(tokens):
        if token.map is None:
            continue
        if token.type in _NOT_PROSE_TOKENS:
            skip.update(range(*token.map))
        elif token.type == "heading_open" and token.level == 0 and token.tag in _MARKDOWN_CHAPTER_TAGS:
            title = collapse_whitespace(inline_text(tokens[index + 1].children or []))
            headings.append(_Heading(token.map[0], token.map[1], title or None))
    return headings, skip


def compile_chapter_pattern(text: str) -> regex.Pattern[str]:
    """The user's --chapter-pattern, compiled by `regex`, which can stop a match that runs too long."""
    try:
        return regex.compile(text)
    except regex.error as exc:
        raise InvalidOptionError(f"--chapter-pattern {text!r} is not a valid regular expression: {exc}") from exc


def _pattern_headings(
    lines: list[str], pattern: regex.Pattern[str], is_markdown: bool, skip: set[int]
) -> list[_Heading]:
    headings = []
    deadline = time.monotonic() + PATTERN_TOTAL_SECONDS
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped and number not in skip and _matches_in_time(pattern, stripped, deadline):
            headings.append(_Heading(number, number + 1, _title_of(stripped, is_markdown)))
    return headings


def _matches_in_time(pattern: regex.Pattern[str], line: str, deadline: float) -> bool:
    """Whether `pattern` matches all of `line`; InvalidOptionError when it takes too long,
    as a pattern with nested repeats such as `(a|aa)+$` can on a long line."""
    allowed = min(PATTERN_LINE_SECONDS, deadline - time.monotonic())
    try:
        if allowed <= 0:
            raise TimeoutError
        return pattern.fullmatch(line, timeout=allowed) is not None
    except TimeoutError as exc:
        raise InvalidOptionError(
            f"--chapter-pattern {pattern.pattern!r} takes too long to match a line of {len(line)} characters; "
            "simplify it, e.g. without nested repeats such as (a+)+"
        ) from exc


def _standalone_headings(lines: list[str], skip: set[int]) -> list[_Heading]:
    headings = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or number in skip or len(stripped) > MAX_TITLE_CHARS:
            continue
        blank_before = number == 0 or not lines[number - 1].strip()
        blank_after = number == len(lines) - 1 or not lines[number + 1].strip()
        if blank_before and blank_after and _CHAPTER_LINE.fullmatch(stripped):
            headings.append(_Heading(number, number + 1, collapse_whitespace(stripped)))
    return headings


def _title_of(line: str, is_markdown: bool) -> str | None:
    if not is_markdown:
        return collapse_whitespace(line)
    inline = markdown_parser().parseInline(_ATX_MARKERS.sub("", line))
    title = collapse_whitespace(inline_text(inline[0].children or [])) if inline else ""
    return title or None


def chapter_slug(number: int, title: str | None, total: int) -> str:
    """File-name stem for a chapter, e.g. `03-the-storm`.

    Zero-padded number (two digits, more when `total` needs them), then the title
    folded to ASCII `[a-z0-9-]`, at most SLUG_MAX_TITLE_CHARS, cut at a word. Only
    those characters ever appear, so a slug cannot name another folder.
    """
    width = max(SLUG_MIN_DIGITS, len(str(max(total, number, 0))))
    folded = unicodedata.normalize("NFKD", (title or "").casefold()).encode("ascii", "ignore").decode("ascii")
    stem = ""
    for word in re.findall(r"[a-z0-9]+", folded):
        candidate = f"{stem}-{word}" if stem else word
        if len(candidate) > SLUG_MAX_TITLE_CHARS:
            stem = stem or word[:SLUG_MAX_TITLE_CHARS]
            break
        stem = candidate
    return f"{max(number, 0):0{width}d}-{stem or SLUG_FALLBACK}"
