"""Plans: chapters, sentence packing, splitting of long sentences, titles and pauses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llasa_cli.constants import CHARS_PER_SECOND, CJK_CHARS_PER_SECOND
from llasa_cli.errors import InputEmptyError
from llasa_cli.options import TextOptions
from llasa_cli.text import planner as segments_module
from llasa_cli.text.manuscript import Manuscript, read_manuscript
from llasa_cli.text.plan import Pause
from llasa_cli.text.planner import (
    SENTENCE_WINDOW_CHARS,
    build_plan,
    estimate_seconds,
    pack_paragraph,
    sentence_spans,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_texts"


def plan_of(text: str, markdown: bool = False, **options: object):
    return build_plan(Manuscript("book.txt", text, markdown), TextOptions(**options))  # type: ignore[arg-type]


def texts(plan) -> list[str]:
    return [segment.text for segment in plan.segments]


def test_estimate_seconds() -> None:
    assert estimate_seconds("a" * 30) == pytest.approx(30 / CHARS_PER_SECOND)
    assert estimate_seconds("你好世界") == pytest.approx(4 / CJK_CHARS_PER_SECOND)
    assert estimate_seconds("ab你") == pytest.approx(2 / CHARS_PER_SECOND + 1 / CJK_CHARS_PER_SECOND)


def test_sentences_pack_greedily_within_the_budget() -> None:
    # Each sentence is 30 characters, 2 s; a 5 s budget holds two of them (61 characters with the space).
    sentence = "This sentence has thirty char."
    assert len(sentence) == 30
    paragraph = " ".join([sentence] * 5)
    assert pack_paragraph(paragraph, "en", 5.0) == [f"{sentence} {sentence}"] * 2 + [sentence]


def test_segments_hold_whole_sentences() -> None:
    text = "Dr. Smith arrived at 3 p.m. on Monday. He was late. Nobody minded at all, really."
    assert pack_paragraph(text, "en", 3.0) == ["Dr. Smith arrived at 3 p.m. on Monday.",
                                               "He was late. Nobody minded at all, really."]  # fmt: skip


CLAUSE = "the quick brown fox jumps over it"  # 33 characters, 2.2 s


@pytest.mark.parametrize(
    ("budget", "pieces"),
    [
        (10.0, [f"{CLAUSE}, {CLAUSE}; {CLAUSE}, {CLAUSE}."]),  # 139 characters fit as they are
        (6.0, [f"{CLAUSE}, {CLAUSE};", f"{CLAUSE}, {CLAUSE}."]),  # the semicolon first
        (4.0, [f"{CLAUSE},", f"{CLAUSE};", f"{CLAUSE},", f"{CLAUSE}."]),  # then the commas
        (
            2.0,
            [
                "the quick brown fox",
                "jumps over it,",
                "the quick brown fox",
                "jumps over it;",
                "the quick brown fox",
                "jumps over it,",
                "the quick brown fox",
                "jumps over it.",
            ],
        ),  # then words
    ],
)
def test_long_sentence_splits_at_the_strongest_break_first(budget: float, pieces: list[str]) -> None:
    sentence = f"{CLAUSE}, {CLAUSE}; {CLAUSE}, {CLAUSE}."
    assert pack_paragraph(sentence, "en", budget) == pieces


def test_split_sentence_parts_are_even() -> None:
    # 34 characters over a 30-character budget: greedy filling would leave "gggg" alone.
    sentence = "aaaa bbbb cccc dddd eeee ffff gggg"
    assert pack_paragraph(sentence, "en", 2.0) == ["aaaa bbbb cccc dddd", "eeee ffff gggg"]


def test_dash_is_a_strong_break() -> None:
    clause = "one two three four five six"
    pieces = pack_paragraph(f"{clause}, {clause} - {clause}, {clause}", "en", 4.0)
    assert pieces == [f"{clause}, {clause} -", f"{clause}, {clause}"]


def test_sentence_without_punctuation_splits_between_words() -> None:
    words = [f"word{i:03d}" for i in range(300)]
    pieces = pack_paragraph(" ".join(words), "en", 2.0)
    assert " ".join(pieces).split() == words
    assert all(estimate_seconds(piece) <= 2.0 for piece in pieces)
    assert all(estimate_seconds(f"{piece} {words[0]}") > 2.0 for piece in pieces[:-1])  # greedy: each is full


def test_one_word_over_the_budget_stays_whole_with_a_warning() -> None:
    word = "x" * 100
    plan = plan_of(f"Short start. {word} short end.", max_segment_seconds=2.0)
    assert texts(plan) == ["Short start.", word, "short end."]
    assert len(plan.warnings) == 1
    assert "segment 1.1 is one word" in plan.warnings[0] and "cannot be split" in plan.warnings[0]


def test_segments_never_cross_paragraphs_and_pauses_follow_structure() -> None:
    text = "The first sentence is here. The second one is here.\nIt goes on here.\n\nAnd it ends."
    plan = plan_of(text, max_segment_seconds=2.0, detect_chapters=False)  # 30 characters: one sentence each
    assert [(s.index, s.text, s.paragraph, s.pause_after) for s in plan.segments] == [
        (0, "The first sentence is here.", 0, Pause.SENTENCE),
        (1, "The second one is here.", 0, Pause.SENTENCE),
        (2, "It goes on here.", 0, Pause.PARAGRAPH),
        (3, "And it ends.", 1, Pause.CHAPTER),
    ]
    big = plan_of("One. Two.\n\nThree.", max_segment_seconds=60.0)
    assert texts(big) == ["One. Two.", "Three."]


def test_chapters_titles_and_indexes() -> None:
    title = "Chapter 1: The Start of It All"
    text = f"A dedication.\n\n{title}\n\nFirst sentence goes here. Words follow.\n\nChapter II\n\nSecond."
    plan = plan_of(text, max_segment_seconds=2.0)
    assert [(c.number, c.title, c.slug, c.spoken_title) for c in plan.chapters] == [
        (1, None, "01-chapter", None),
        (2, title, "02-chapter-1-the-start-of-it-all", "Chapter One: The Start of It All"),
        (3, "Chapter II", "03-chapter-ii", "Chapter Two"),
    ]
    assert [(s.segment_id, s.text, s.paragraph, s.is_title, s.pause_after) for s in plan.segments] == [
        ("1.0", "A dedication.", 0, False, Pause.CHAPTER),
        ("2.0", "Chapter One:", -1, True, Pause.SENTENCE),
        ("2.1", "The Start of It All", -1, True, Pause.TITLE),
        ("2.2", "First sentence goes here.", 0, False, Pause.SENTENCE),
        ("2.3", "Words follow.", 0, False, Pause.CHAPTER),
        ("3.0", "Chapter Two", -1, True, Pause.TITLE),
        ("3.1", "Second.", 0, False, Pause.CHAPTER),
    ]
    assert all(s.chapter_title == plan.chapters[s.chapter - 1].title for s in plan.segments)


def test_no_spoken_titles() -> None:
    plan = plan_of("Chapter 1\n\nText.", speak_titles=False)
    assert plan.chapters[0].spoken_title is None
    assert [(s.text, s.is_title) for s in plan.segments] == [("Text.", False)]


def test_title_only_chapter_is_kept_and_ends_with_a_chapter_pause() -> None:
    plan = plan_of("Chapter 1\n\nChapter 2\n\nText.")
    assert [c.title for c in plan.chapters] == ["Chapter 1", "Chapter 2"]
    assert [(s.text, s.pause_after) for s in plan.segments_of(1)] == [("Chapter One", Pause.CHAPTER)]


def test_chapter_with_nothing_to_say_is_dropped_with_a_warning() -> None:
    text = "```\nonly code\n```\n\n# One\n\nText one.\n\n# \n\n```\nmore code\n```\n\n# Three\n\nText three."
    plan = plan_of(text, markdown=True)
    assert [(c.number, c.title, c.slug) for c in plan.chapters] == [(1, "One", "01-one"), (2, "Three", "02-three")]
    assert plan.warnings == (
        "book.txt: dropped 2 code blocks (not spoken)",
        "book.txt: untitled section 1 has no text to speak; left out",
        "book.txt: untitled section 3 has no text to speak; left out",
    )


def test_unspoken_title_with_no_body_is_dropped_with_a_warning() -> None:
    plan = plan_of("Chapter 1\n\nChapter 2\n\nText.", speak_titles=False)
    assert [c.title for c in plan.chapters] == ["Chapter 2"]
    assert plan.warnings == ("book.txt: chapter 'Chapter 1' has no text to speak; left out",)


def test_nothing_to_say_at_all_raises() -> None:
    with pytest.raises(InputEmptyError, match="book.txt: nothing left to speak"):
        plan_of("* * *\n\n\u2026")


def test_paragraphs_hold_normalised_text() -> None:
    plan = plan_of("It cost $5.\n\nLine one\nline two.")
    assert plan.chapters[0].paragraphs == ("It cost five dollars.", "Line one line two.")


def test_normalize_off_keeps_words_exactly() -> None:
    text = "It cost $5\u2026 Dr. *Who*\r\rChapter 1\n\n“Yes.”"
    plan = plan_of(text, normalize=False, detect_chapters=False, max_segment_seconds=1.0)
    assert [w for s in plan.segments for w in s.text.split()] == text.split()


def test_chinese_sentences_and_budget() -> None:
    sentence = "今天天气很好。"  # 7 CJK characters: about 1.6 s
    plan = plan_of(sentence * 4, lang="zh", max_segment_seconds=3.5)
    assert texts(plan) == [sentence * 2, sentence * 2]
    long = "我们" * 20 + "。"  # 41 characters, no break but between characters
    pieces = pack_paragraph(long, "zh", 2.0)
    assert "".join(pieces) == long and all(estimate_seconds(p) <= 2.0 for p in pieces)


def test_long_paragraph_is_read_in_windows() -> None:
    sentence = "This is a sentence, with a comma; and more."
    text = " ".join([sentence] * 200)  # 8,799 characters: several windows
    assert len(text) > 4 * SENTENCE_WINDOW_CHARS
    assert [text[a:b].strip() for a, b in sentence_spans(text, "en")] == [sentence] * 200
    huge = " ".join(["word"] * 1000) + "."  # one sentence longer than a window
    text = f"{huge} Next one. End."
    assert [text[a:b].strip() for a, b in sentence_spans(text, "en")] == [huge, "Next one.", "End."]


def test_sentence_spans_survive_a_segmenter_that_changes_text(monkeypatch: pytest.MonkeyPatch) -> None:
    class Mangler:
        def segment(self, text: str) -> list[str]:
            return ["First one. ", "SOMETHING ELSE"]

    monkeypatch.setattr(segments_module, "_segmenter", lambda lang: Mangler())
    text = "First one. Second one. Third."
    assert [text[a:b].strip() for a, b in sentence_spans(text, "en")] == ["First one.", "Second one. Third."]


def test_sentence_boundary_inside_a_word_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    class Splitter:
        def segment(self, text: str) -> list[str]:
            return ["www.", "example.com is ", "a site."]

    monkeypatch.setattr(segments_module, "_segmenter", lambda lang: Splitter())
    text = "www.example.com is a site."
    assert [text[a:b].strip() for a, b in sentence_spans(text, "en")] == ["www.example.com is", "a site."]


@pytest.mark.parametrize("name", ["the_lighthouse.txt", "field_notes.md", "numbers_and_names.txt"])
def test_sample_texts_plan(name: str) -> None:
    plan = build_plan(read_manuscript(str(SAMPLES / name)), TextOptions())
    assert plan.segments and all(s.est_seconds <= 12.0 for s in plan.segments)
    assert not any(ch.isdigit() for s in plan.segments for ch in s.text)


def test_sample_text_chapters() -> None:
    lighthouse = build_plan(read_manuscript(str(SAMPLES / "the_lighthouse.txt")), TextOptions())
    assert [c.slug for c in lighthouse.chapters] == [
        "01-chapter",
        "02-chapter-one-the-keeper",
        "03-chapter-two-the-storm",
        "04-chapter-three-the-morning",
    ]
    notes_path = str(SAMPLES / "field_notes.md")
    notes = build_plan(read_manuscript(notes_path), TextOptions())
    assert [c.title for c in notes.chapters] == ["Field Notes from the Salt Marsh", "Week One", "Week Two"]
    assert notes.warnings == (f"{notes_path}: dropped 1 code block, 1 image (not spoken)",)


def test_text_pipeline_never_imports_torch() -> None:
    code = (
        "import sys, llasa_cli.text.planner, llasa_cli.text.lexicon; "
        "print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SAMPLES.parent
    )
    assert result.stdout.strip() == "[]"
