"""No text is ever lost: the words of the segments are the words of the normalised chapters.

Checked on arbitrary Unicode and on adversarial manuscripts built from nasty pieces
(huge sentences, 5,000-character words, URLs, odd punctuation, lone CRs, empty
chapters, Markdown syntax). With normalisation and chapter detection off, the
segments' words are exactly the input's words.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llasa_cli.errors import InputEmptyError
from llasa_cli.options import TextOptions
from llasa_cli.text.manuscript import Manuscript
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
    if not text.split():
        return
    options = TextOptions(normalize=False, detect_chapters=False, max_segment_seconds=budget)
    plan = build_plan(Manuscript("m", text, markdown), options)
    assert segment_words(plan) == text.split()
    assert len(plan.chapters) == 1 and plan.chapters[0].title is None
    check_structure(plan, budget)


@SETTINGS
@given(text=ANY_TEXT, normalize=st.booleans(), chapters=st.booleans(), budget=st.floats(1.0, 30.0))
def test_chinese_keeps_every_character(text: str, normalize: bool, chapters: bool, budget: float) -> None:
    options = TextOptions(lang="zh", normalize=normalize, detect_chapters=chapters, max_segment_seconds=budget)
    try:
        plan = build_plan(Manuscript("m", text, False), options)
    except InputEmptyError:
        assert normalize or chapters or not text.split()
        return
    # Chinese may be cut between characters, so compare characters rather than words.
    assert "".join(segment_words(plan)) == "".join(chapter_words(plan))
    if not normalize and not chapters:
        assert "".join(segment_words(plan)) == "".join(text.split())


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
