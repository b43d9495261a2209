"""No text is ever lost: the words of the segments are the words of the normalised chapters.

Checked on arbitrary Unicode and on adversarial manuscripts built from nasty pieces
(huge sentences, 5,000-character words, URLs, odd punctuation, lone CRs, empty
chapters, Markdown syntax). With normalisation and chapter detection off, the
segments' words are exactly the input's words. Markdown documents built from real
structure (lists and quotes nested past the parser's depth limit, tables with ragged
rows, footnotes, code and HTML blocks) keep every prose word, once, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llasa_cli.errors import InputEmptyError
from llasa_cli.options import TextOptions
from llasa_cli.text.manuscript import Manuscript
from llasa_cli.text.markup import without_sentinels
from llasa_cli.text.plan import Plan
from llasa_cli.text.planner import build_plan, estimate_seconds

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

WORDS = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
NASTY = st.sampled_from(
    [
        " ", "\n", "\n\n", "\r", "\r\n", "\t", "\u00a0", "\u200b", "\u2028", "\x0c", ". ", "! ", "? ", "; ", ": ",
        ", ", " - ", "\u2014", "\u2013", "\u2026", "...", "?!", "\u201c", "\u201d", "'", '"', "(", ")", "[", "]",
        "*", "_", "`", "```", "~~~", "#", "# ", "## ", "### ", "> ", "- ", "1. ", "<b>", "</b>", "<!--", "-->",
        "[link](http://x.y/z)", "![img](a.png)", "https://example.com/a?b=c&d=e#f", "www.example.org", "e.g.",
        "Dr.", "St.", "etc.", "$3.50", "\u00a35", "\u20ac20", "50%", "21st", "1,234", "1984", "3:30 pm", "10:05",
        "007", "-5", "'90s", "Chapter 1", "\n\nChapter XII\n\n", "\n\nPrologue\n\n", "\n\n# Part One\n\n",
        "\n\n# \n\n", "\n\n* * *\n\n", "\u4eca\u5929\u3002", "\U0001f600", "\u0301", "x" * 300,
    ]
)  # fmt: skip
HUGE_SENTENCE = st.lists(WORDS, min_size=400, max_size=900).map(" ".join)  # 5,000 characters and more
HUGE_WORD = st.integers(4000, 6000).map(lambda n: "w" * n)
ADVERSARIAL = st.lists(st.one_of(WORDS, NASTY, NASTY, HUGE_SENTENCE, HUGE_WORD), min_size=1, max_size=60).map("".join)
ANY_TEXT = st.one_of(st.text(min_size=1, max_size=400), ADVERSARIAL)
OPTIONS = st.builds(
    TextOptions,
    lang=st.just("en"),
    normalize=st.booleans(),
    detect_chapters=st.booleans(),
    speak_titles=st.booleans(),
    max_segment_seconds=st.floats(1.0, 30.0),
)


def chapter_words(plan: Plan) -> list[str]:
    words: list[str] = []
    for chapter in plan.chapters:
        words += chapter.spoken_title.split() if chapter.spoken_title else []
        for paragraph in chapter.paragraphs:
            words += paragraph.split()
    return words


def segment_words(plan: Plan) -> list[str]:
    return [word for segment in plan.segments for word in segment.text.split()]


def check_structure(plan: Plan, budget: float) -> None:
    for chapter in plan.chapters:
        own = plan.segments_of(chapter.number)
        assert own, "every chapter kept in the plan has something to say"
        assert [s.index for s in own] == list(range(len(own)))
        assert all(s.paragraph < len(chapter.paragraphs) for s in own)
    assert [s.chapter for s in plan.segments] == sorted(s.chapter for s in plan.segments)
    for segment in plan.segments:
        assert segment.text and segment.text == segment.text.strip()
        assert segment.est_seconds == estimate_seconds(segment.text)
        assert segment.est_seconds <= budget or len(segment.text.split()) == 1, segment


@SETTINGS
@given(text=ANY_TEXT, options=OPTIONS, markdown=st.booleans())
def test_segments_carry_every_normalised_word(text: str, options: TextOptions, markdown: bool) -> None:
    try:
        plan = build_plan(Manuscript("m", text, markdown), options)
    except InputEmptyError:
        return  # nothing sayable (e.g. only code blocks or punctuation); the error says so
    assert segment_words(plan) == chapter_words(plan)
    check_structure(plan, options.max_segment_seconds)


@SETTINGS
@given(text=ANY_TEXT, budget=st.floats(1.0, 30.0), markdown=st.booleans())
def test_without_normalisation_or_chapters_the_words_are_the_input_words(
    text: str, budget: float, markdown: bool
) -> None:
    # Private-use code points of planes 15-16 stand for markup inside the planner, so a manuscript
    # loses them; in a text file `\[` and `\]` are escaped brackets (markup.py).
    written = without_sentinels(text) if markdown else re.sub(r"\\([\[\]])", r"\1", without_sentinels(text))
    if not written.split():
        return
    options = TextOptions(normalize=False, detect_chapters=False, max_segment_seconds=budget)
    plan = build_plan(Manuscript("m", text, markdown), options)
    assert segment_words(plan) == written.split()
    assert len(plan.chapters) == 1 and plan.chapters[0].title is None
    check_structure(plan, budget)


@SETTINGS
@given(text=ANY_TEXT, normalize=st.booleans(), chapters=st.booleans(), budget=st.floats(1.0, 30.0))
def test_chinese_keeps_every_character(text: str, normalize: bool, chapters: bool, budget: float) -> None:
    options = TextOptions(lang="zh", normalize=normalize, detect_chapters=chapters, max_segment_seconds=budget)
    written = re.sub(r"\\([\[\]])", r"\1", without_sentinels(text))  # as in the test above
    try:
        plan = build_plan(Manuscript("m", text, False), options)
    except InputEmptyError:
        assert normalize or chapters or not written.split()
        return
    # Chinese may be cut between characters, so compare characters rather than words.
    assert "".join(segment_words(plan)) == "".join(chapter_words(plan))
    if not normalize and not chapters:
        assert "".join(segment_words(plan)) == "".join(written.split())


@pytest.mark.parametrize(
    "text",
    [
        "x" * 5000,
        ("a " * 2500).strip(),
        "One\rtwo\r\rthree",
        "Chapter 1\n\nChapter 2\n\n\n\nChapter 3",
        "https://example.com/" + "a/" * 1000,
        "\u201c" + "word, " * 900 + "end.\u201d",
    ],
)
def test_adversarial_examples(text: str) -> None:
    options = TextOptions(normalize=False, detect_chapters=False, max_segment_seconds=5.0)
    plan = build_plan(Manuscript("m", text, False), options)
    assert segment_words(plan) == text.split()
    check_structure(plan, 5.0)


# --- Markdown structure ------------------------------------------------------
# Documents built from Markdown blocks, each knowing the words a listener must hear. Prose words
# ("zq...") are words normalisation leaves alone; they must all be spoken, once, in order. Words of
# code and HTML blocks ("kq...") may be dropped, but only with a warning that says so.

PROSE_WORD = st.from_regex(r"zq[a-z]{1,4}", fullmatch=True)
CODE_WORD = st.from_regex(r"kq[a-z]{1,4}", fullmatch=True)
PROSE_PATTERN = re.compile(r"zq[a-z]+")
CODE_PATTERN = re.compile(r"kq[a-z]+")
INLINE_FORMS = (
    "{}", "*{}*", "**{}**", "_{}_", "`{}`", "~~{}~~", "[{}](http://example.com/a)", "<b>{}</b>", "{}[^n1]",
    "&amp;{}", "{}<!-- x -->", "![picture](a.png){}",
)  # fmt: skip
MAX_QUOTE_DEPTH = 60  # past the parser's 40 container levels
MAX_LIST_DEPTH = 30  # a list level costs two container levels


@dataclass(frozen=True)
class Doc:
    lines: tuple[str, ...]
    prose: tuple[str, ...] = ()
    code: tuple[str, ...] = ()

    def __add__(self, other: Doc) -> Doc:
        return Doc(self.lines + ("",) + other.lines, self.prose + other.prose, self.code + other.code)


@st.composite
def inline_run(draw) -> tuple[str, list[str]]:
    words = draw(st.lists(PROSE_WORD, min_size=1, max_size=5))
    forms = draw(st.lists(st.sampled_from(INLINE_FORMS), min_size=len(words), max_size=len(words)))
    return " ".join(form.format(word) for form, word in zip(forms, words, strict=True)), words


@st.composite
def paragraph(draw) -> Doc:
    runs = draw(st.lists(inline_run(), min_size=1, max_size=3))
    return Doc(tuple(text for text, _ in runs), tuple(word for _, words in runs for word in words))


@st.composite
def heading(draw) -> Doc:
    text, words = draw(inline_run())
    return Doc((f"{'#' * draw(st.integers(1, 3))} {text}",), tuple(words))


@st.composite
def code_like(draw) -> Doc:
    words = draw(st.lists(CODE_WORD, min_size=1, max_size=4))
    line = " ".join(words)
    kind = draw(st.sampled_from(["fence", "tilde", "indented", "html"]))
    lines = {
        "fence": ("```python", line, "```"),
        "tilde": ("~~~", line, "~~~"),
        "indented": ("    " + line,),
        "html": ("<div>", line, "</div>"),
    }[kind]
    return Doc(lines, (), tuple(words))


@st.composite
def table(draw) -> Doc:
    columns = draw(st.integers(1, 3))
    rows = [draw(st.lists(inline_run(), min_size=columns, max_size=columns))]
    rows += draw(st.lists(st.lists(inline_run(), min_size=1, max_size=5), min_size=0, max_size=3))
    lines = ["| " + " | ".join(text for text, _ in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * columns)
    return Doc(tuple(lines), tuple(word for row in rows for _, words in row for word in words))


@st.composite
def footnote(draw) -> Doc:
    text, words = draw(inline_run())
    return Doc((f"[^n1]: {text}",), tuple(words))


LEAF = st.one_of(
    paragraph(), paragraph(), heading(), code_like(), table(), footnote(),
    st.just(Doc(("[ref1]: http://example.com/x",))), st.just(Doc(("* * *",))),
)  # fmt: skip


def quoted(doc: Doc, depth: int) -> Doc:
    marker = ">" * depth
    return Doc(tuple(f"{marker} {line}" if line else marker for line in doc.lines), doc.prose, doc.code)


def list_item(doc: Doc, ordered: bool) -> Doc:
    marker, indent = ("1. ", "   ") if ordered else ("- ", "  ")
    lines = (marker + doc.lines[0], *(indent + line if line else "" for line in doc.lines[1:]))
    return Doc(lines, doc.prose, doc.code)


def blocks(parts: list[Doc]) -> Doc:
    whole = parts[0]
    for part in parts[1:]:
        whole = whole + part
    return whole


@st.composite
def container(draw, depth: int) -> Doc:
    """A quote or list of 1-3 blocks, themselves containers while `depth` lasts."""
    inner = LEAF if depth <= 1 else st.one_of(LEAF, container(depth - 1))
    body = blocks(draw(st.lists(inner, min_size=1, max_size=3)))
    if draw(st.booleans()):
        return quoted(body, draw(st.integers(1, 3)))
    return list_item(body, draw(st.booleans()))


@st.composite
def deep_chain(draw) -> Doc:
    """A list or quote nested far past the parser's depth limit, with words at every level."""
    doc = draw(LEAF)
    if draw(st.booleans()):
        return quoted(doc, draw(st.integers(1, MAX_QUOTE_DEPTH)))
    ordered = draw(st.booleans())
    for _ in range(draw(st.integers(1, MAX_LIST_DEPTH))):
        doc = list_item(draw(paragraph()) + doc, ordered)
    return doc


MARKDOWN_DOCS = st.lists(st.one_of(LEAF, LEAF, container(3), deep_chain()), min_size=1, max_size=8).map(blocks)


@SETTINGS
@given(doc=MARKDOWN_DOCS, chapters=st.booleans(), budget=st.floats(1.0, 30.0))
def test_markdown_structure_loses_no_prose(doc: Doc, chapters: bool, budget: float) -> None:
    options = TextOptions(detect_chapters=chapters, max_segment_seconds=budget)
    try:
        plan = build_plan(Manuscript("m.md", "\n".join(doc.lines), True), options)
    except InputEmptyError:
        assert not doc.prose
        return
    spoken = " ".join(segment.text for segment in plan.segments)
    assert PROSE_PATTERN.findall(spoken) == list(doc.prose)
    if set(doc.code) - set(CODE_PATTERN.findall(spoken)):
        assert any("dropped" in warning for warning in plan.warnings)
    check_structure(plan, budget)
