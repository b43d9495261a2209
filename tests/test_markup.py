"""Inline markup: [voice=NAME]...[/voice], [pause=S], [say=SPOKEN]...[/say], escapes and errors.

The property test extends the no-text-lost invariant to markup: for any manuscript of words,
punctuation and well-formed tags, the words of the segments, in order, are the words between
the tags (a [say] span's spoken words in place of its written ones), each spoken by the voice
whose span it is in, and no segment holds a bracket of a tag.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llasa_cli.errors import InputDecodeError
from llasa_cli.options import TextOptions
from llasa_cli.text.manuscript import Manuscript
from llasa_cli.text.metadata import parse_front_matter
from llasa_cli.text.plan import MarkedPause, Pause, Plan
from llasa_cli.text.planner import build_plan

WIDE = TextOptions(max_segment_seconds=60.0)


def plan_of(text: str, markdown: bool = False, options: TextOptions = WIDE, name: str = "book.txt") -> Plan:
    return build_plan(Manuscript(name, text, markdown), options)


def rows(plan: Plan) -> list[tuple[str | None, str, str]]:
    return [(s.voice, s.text, s.pause_after.value) for s in plan.segments]


def test_voice_spans_pauses_and_say() -> None:
    text = (
        'He waited. [voice=Anna]"Who\'s there?"[/voice] Nobody answered.[pause=2]\n\n'
        "[pause=1.5s]\n\nThen [say=Shivaun]Siobhan[/say] came in."
    )
    plan = plan_of(text)
    assert rows(plan) == [
        (None, "He waited.", "sentence"),
        ("anna", '"Who\'s there?"', "sentence"),
        (None, "Nobody answered.", "3.5s"),
        (None, "Then Shivaun came in.", "chapter"),
    ]
    assert plan.segments[2].pause_after == MarkedPause(3.5)
    assert plan.chapters[0].paragraphs == ('He waited. "Who\'s there?" Nobody answered.', "Then Shivaun came in.")
    assert plan.voices == ("anna",)


def test_spans_nest_and_run_over_paragraphs_and_chapters() -> None:
    opening = "[voice=anna]One.\n\n[voice=ben]Two.[/voice] Three."
    text = f"{opening}\n\nChapter 2\n\nFour.[/voice] [voice=narrator]Five.[/voice]"
    plan = plan_of(text)
    assert [(s.voice, s.text, s.is_title) for s in plan.segments] == [
        ("anna", "One.", False),
        ("ben", "Two.", False),
        ("anna", "Three.", False),
        (None, "Chapter Two", True),  # titles are the narrator's
        ("anna", "Four.", False),
        (None, "Five.", False),
    ]


def test_a_pause_follows_the_title_or_is_left_out_with_a_warning() -> None:
    plan = plan_of("# One\n\n[pause=3]\n\nText.\n\n# Two\n\nMore.", markdown=True)
    assert rows(plan)[0] == (None, "One", "3s")
    untitled = plan_of("[pause=3] Text.", options=TextOptions(speak_titles=False))
    assert rows(untitled) == [(None, "Text.", "chapter")]
    assert any("[pause] opens chapter 1" in warning for warning in untitled.warnings)


def test_say_in_a_title_is_shown_as_written_and_spoken_as_said() -> None:
    plan = plan_of("# Chapter [say=Wun]One[/say]\n\nText.", markdown=True)
    assert plan.chapters[0].title == "Chapter One"
    assert plan.chapters[0].spoken_title == "Chapter Wun"


def test_say_is_never_rewritten_and_glues_to_its_neighbours() -> None:
    plan = plan_of("[say=Dr. 1984]Doctor[/say]'s 12 cats.")
    assert plan.segments[0].text == "Dr. 1984's twelve cats."


@pytest.mark.parametrize(
    ("text", "markdown", "spoken"),
    [
        ("Text with \\[voice=x] literal.", False, "Text with [voice=x] literal."),
        ("Text with \\[voice=x] literal.", True, "Text with [voice=x] literal."),
        ("A [sic] and [1] and [Chapter notes].", False, "A [sic] and [one] and [Chapter notes]."),
        ("A [link](http://x.y) and a note[^1].\n\n[^1]: The note.", True, "A link and a note."),
    ],
)
def test_brackets_that_are_not_tags_stay_text(text: str, markdown: bool, spoken: str) -> None:
    assert plan_of(text, markdown).segments[0].text == spoken


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("One.\nTwo [volce=anna]x", "line 2, column 5", "unknown tag [volce=anna]"),
        ("x [/vioce]", "line 1, column 3", "unknown tag [/vioce]"),
        ("a [/voice]", "line 1, column 3", "[/voice] closes nothing"),
        ("[voice=a]x\n\ny", "line 1, column 1", "[voice=a] is never closed"),
        ("[voice=a][say=b]x[/voice][/say]", "line 1, column 18", "[/voice] inside [say=b]"),
        ("[say=b][voice=a]x[/voice][/say]", "line 1, column 8", "[voice=a] inside [say=b]"),
        ("[voice=a]x[/say]", "line 1, column 11", "[/say] cannot close [say] while [voice=a]"),
        ("[pause=abc]", "line 1, column 1", "a pause is a number of seconds"),
        ("[pause=61]", "line 1, column 1", "from 0 to 60"),
        ("[Pause]", "line 1, column 1", "[Pause] needs a value"),
        ("[say=x]a\n\nb[/say]", "line 1, column 1", "runs past the end of its paragraph"),
        ("ok\nline two [voice=a b]x[/voice]", "line 2, column 10", "a character name"),
        ("[/voice=a]", "line 1, column 1", "a closing tag takes no value"),
    ],
)
def test_markup_errors_name_line_and_column(text: str, where: str, says: str) -> None:
    with pytest.raises(InputDecodeError) as error:
        plan_of(text)
    message = str(error.value)
    assert message.startswith(f"book.txt, {where}: ") and says in message
    assert "\n" not in message
    assert InputDecodeError.exit_code == 12


def test_voice_and_pause_tags_in_a_title_are_errors() -> None:
    with pytest.raises(InputDecodeError, match=r"line 3, column 3: \[voice\] in a chapter title"):
        plan_of("Intro.\n\n# [voice=a]T[/voice]\n\nText.", markdown=True)


def test_errors_count_lines_from_the_top_of_the_file_past_front_matter() -> None:
    text = "---\ntitle: T\n---\n\nText [oops=1] here."
    front, body = parse_front_matter(text)
    manuscript = Manuscript("book.md", body, True, front_matter=front, first_line=4)
    with pytest.raises(InputDecodeError, match=r"book.md, line 5, column 6: unknown tag \[oops=1\]"):
        build_plan(manuscript, WIDE)


def test_epub_text_has_no_markup() -> None:
    manuscript = Manuscript("book.epub", "A [pause] and [voice=x] stay text.", True, markup=False)
    assert build_plan(manuscript, WIDE).segments[0].text == "A [pause] and [voice=x] stay text."


# --- property: markup never loses or duplicates a word ----------------------------------------

WORD = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
PUNCTUATION = st.sampled_from([".", ",", "!", "?", "...", " - ", '"', "'", "(", ")", "\\["])
SEPARATOR = st.sampled_from([" ", "\n", "\n\n", " \n ", "\n\n\n"])
CHARACTERS = st.sampled_from(["anna", "Ben", "cleo-2", "Narrator"])


@st.composite
def marked_documents(draw: st.DrawFn) -> tuple[str, list[tuple[str, str | None]]]:
    """A manuscript with well-formed tags, and each word it says with the voice that says it."""
    parts: list[str] = []
    expected: list[tuple[str, str | None]] = []
    voices: list[str | None] = [None]
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["word", "word", "word", "punctuation", "open", "close", "pause", "say"]))
        if kind == "word":
            word = draw(WORD)
            parts.append(word)
            expected.append((word, voices[-1]))
        elif kind == "punctuation":
            parts.append(draw(PUNCTUATION))
        elif kind == "open":
            name = draw(CHARACTERS)
            parts.append(f"[voice={name}]")
            voices.append(None if name.casefold() == "narrator" else name.casefold())
        elif kind == "close" and len(voices) > 1:
            parts.append("[/voice]")
            voices.pop()
        elif kind == "pause":
            parts.append(f"[pause={draw(st.floats(0, 60)):.2f}]")
        elif kind == "say":
            spoken = draw(st.lists(WORD, min_size=1, max_size=3))
            written = draw(st.lists(WORD, min_size=0, max_size=3))
            parts.append(f"[say={' '.join(spoken)}]{' '.join(written)}[/say]")
            expected.extend((word, voices[-1]) for word in spoken)
        parts.append(draw(SEPARATOR))
    parts.extend("[/voice]" for _ in voices[1:])
    return "".join(parts), expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=marked_documents(), markdown=st.booleans(), budget=st.floats(1.0, 30.0))
def test_markup_keeps_every_word_once_in_its_voice(
    document: tuple[str, list[tuple[str, str | None]]], markdown: bool, budget: float
) -> None:
    text, expected = document
    options = TextOptions(normalize=False, detect_chapters=False, max_segment_seconds=budget)
    try:
        plan = build_plan(Manuscript("m", text, markdown), options)
    except Exception as error:  # noqa: BLE001 - only "nothing to say" is allowed, and only without words
        assert not expected and "nothing left to speak" in str(error)
        return
    said = [(word, segment.voice) for segment in plan.segments for word in re.findall(r"[A-Za-z]+", segment.text)]
    assert said == expected
    assert not any(re.search(r"\[/?(voice|pause|say)", segment.text) for segment in plan.segments)
    assert all(isinstance(s.pause_after, (Pause, MarkedPause)) for s in plan.segments)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=marked_documents(), markdown=st.booleans())
def test_normalised_markup_keeps_every_word_of_the_chapters(
    document: tuple[str, list[tuple[str, str | None]]], markdown: bool
) -> None:
    text, _ = document
    options = TextOptions(max_segment_seconds=8.0, dialogue_voice="dee")
    try:
        plan = build_plan(Manuscript("m", text, markdown), options)
    except Exception as error:  # noqa: BLE001 - a tag in a heading (`x [voice=a]` over `-`) is an error too
        assert "nothing left to speak" in str(error) or "in a chapter title" in str(error)
        return
    chapter_words = [w for c in plan.chapters for p in ((c.spoken_title or ""), *c.paragraphs) for w in p.split()]
    assert [w for s in plan.segments for w in s.text.split()] == chapter_words
    assert not any(re.search(r"\[/?(voice|pause|say)", segment.text) for segment in plan.segments)
