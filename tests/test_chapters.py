"""Chapter detection (plain lines, Markdown headings, custom patterns) and chapter file slugs."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llasa_cli.errors import InvalidOptionError
from llasa_cli.options import TextOptions
from llasa_cli.text import chapters
from llasa_cli.text.chapters import SLUG_MAX_TITLE_CHARS, RawChapter, chapter_slug, split_chapters

PLAIN = TextOptions()


def titles(text: str, is_markdown: bool = False, options: TextOptions = PLAIN) -> list[str | None]:
    return [chapter.title for chapter in split_chapters(text, is_markdown, options)]


@pytest.mark.parametrize(
    "line",
    [
        "Chapter 12",
        "CHAPTER XII",
        "CHAPTER XII.",
        "chapter xii",
        "Chapter Twelve: The Storm",
        "Chapter Twenty-One",
        "Chapter twenty one - Home Again",
        "Chapter 3 \u2014 The Road",
        "Part One",
        "PART II: THE RETURN",
        "Book 2",
        "Prologue",
        "Epilogue: Ten Years Later",
        "Preface",
        "第十二章 风暴",
    ],
)
def test_standalone_chapter_lines(line: str) -> None:
    chapters = split_chapters(f"Some opening words.\n\n  {line}  \n\nThe body.\nMore body.", False, PLAIN)
    assert chapters == [RawChapter(None, "Some opening words.\n"), RawChapter(line, "\nThe body.\nMore body.")]


@pytest.mark.parametrize(
    "text",
    [
        "Words before.\nChapter 12\n\nnot alone: a line above it",
        "Words before.\n\nChapter 12\nnot alone: a line below it",
        "Chapter and verse\n\nnot a chapter number",
        "Part of the plan\n\nnot a part number",
        "Prologues\n\nnot the keyword",
        "Chapter 12 was the one where everything went wrong for the crew and the captain alike.\n\nprose",
    ],
)
def test_lines_that_are_not_chapter_headings(text: str) -> None:
    assert titles(text) == [None]


def test_chapters_in_order_and_text_before_the_first() -> None:
    text = "A Title Page\n\nChapter 1\n\nOne.\n\nChapter 2\n\nTwo.\n\nEpilogue\n\nEnd."
    assert titles(text) == [None, "Chapter 1", "Chapter 2", "Epilogue"]


def test_text_before_first_heading_without_words_is_not_a_chapter() -> None:
    assert titles("* * *\n\n---\n\nChapter 1\n\nText.") == ["Chapter 1"]


def test_heading_with_no_body_is_still_a_chapter() -> None:
    chapters = split_chapters("Chapter 1\n\nChapter 2\n\nText.", False, PLAIN)
    assert [c.title for c in chapters] == ["Chapter 1", "Chapter 2"]
    assert chapters[0].body.strip() == ""


def test_no_headings_gives_one_untitled_chapter_with_all_text() -> None:
    text = "Just a story.\n\nWith two paragraphs."
    assert split_chapters(text, False, PLAIN) == [RawChapter(None, text)]


def test_detect_chapters_off_gives_one_chapter() -> None:
    text = "Chapter 1\n\nOne.\n\nChapter 2\n\nTwo."
    assert split_chapters(text, False, TextOptions(detect_chapters=False)) == [RawChapter(None, text)]


def test_crlf_input_is_handled() -> None:
    assert titles("Intro.\r\n\r\nChapter 1\r\n\r\nText.") == [None, "Chapter 1"]


MARKDOWN = """Opening *words*.

# The *First* Part

Text one.

### A subsection

Still part one.

```
# not a heading: inside code
```

> # nor inside a quote

## Second [Part](http://x)

Text two.

Third Part
==========

Text three.
"""


def test_markdown_levels_one_and_two_start_chapters() -> None:
    chapters = split_chapters(MARKDOWN, True, PLAIN)
    assert [c.title for c in chapters] == [None, "The First Part", "Second Part", "Third Part"]
    first = chapters[1].body
    assert "### A subsection" in first and "# not a heading" in first and "nor inside a quote" in first
    assert chapters[3].body.strip() == "Text three."


def test_markdown_without_headings_falls_back_to_chapter_lines() -> None:
    assert titles("Intro.\n\nChapter 1\n\nText.", is_markdown=True) == [None, "Chapter 1"]


def test_markdown_code_block_lines_are_never_chapter_lines() -> None:
    assert titles("Intro.\n\n```\n\nChapter 1\n\n```\n\nText.", is_markdown=True) == [None]


def test_plain_text_ignores_markdown_headings() -> None:
    assert titles("# Heading\n\nText.") == [None]


def test_chapter_pattern_overrides_detection() -> None:
    options = TextOptions(chapter_pattern=r"(?i)section \d+")
    text = "Chapter 1\n\nIntro.\n\nSection 1\nText right below.\n\nSECTION 2\n\nMore."
    assert titles(text, options=options) == [None, "Section 1", "SECTION 2"]


def test_chapter_pattern_in_markdown_strips_heading_markers() -> None:
    options = TextOptions(chapter_pattern=r"#+ Scene \d+(?: #+)?")
    text = "# Title\n\n### Scene 1\n\nA.\n\n### Scene 2 ###\n\nB."
    assert titles(text, is_markdown=True, options=options) == [None, "Scene 1", "Scene 2"]


def test_a_chapter_pattern_that_backtracks_for_ages_is_stopped_with_its_name() -> None:
    options = TextOptions(chapter_pattern=r"(a|aa)+$")
    with pytest.raises(InvalidOptionError, match=r"'\(a\|aa\)\+\$' takes too long"):
        split_chapters("Intro.\n\n" + "a" * 200 + "!\n\nText.", False, options)


def test_the_chapter_pattern_time_limit_covers_all_lines_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chapters, "PATTERN_TOTAL_SECONDS", 0.0)
    with pytest.raises(InvalidOptionError, match="takes too long"):
        split_chapters("Section 1\n\nText.", False, TextOptions(chapter_pattern=r"Section \d+"))


@pytest.mark.parametrize(
    ("number", "title", "total", "slug"),
    [
        (3, "The Storm", 10, "03-the-storm"),
        (3, "Chapter Twelve: The Storm!", 3, "03-chapter-twelve-the-storm"),
        (7, None, 5, "07-chapter"),
        (5, "Ça va? Ünïcödé straße", 150, "005-ca-va-unicode-strasse"),
        (1, "../../etc/passwd", 1, "01-etc-passwd"),
        (1, "..\\..\\windows", 1, "01-windows"),
        (2, "第十二章", 2, "02-chapter"),
        (12, "...", 100, "012-chapter"),
    ],
)
def test_chapter_slug(number: int, title: str | None, total: int, slug: str) -> None:
    assert chapter_slug(number, title, total) == slug


def test_long_slug_is_cut_at_a_word() -> None:
    title = "The Extraordinarily Long and Winding Title of a Chapter That Goes On"
    slug = chapter_slug(1, title, 1)
    assert slug == "01-the-extraordinarily-long-and-winding-title-of-a"
    assert len(slug) - len("01-") <= SLUG_MAX_TITLE_CHARS


def test_one_huge_word_is_truncated() -> None:
    assert chapter_slug(1, "x" * 500, 1) == "01-" + "x" * SLUG_MAX_TITLE_CHARS


SAFE_SLUG = re.compile(r"[0-9]{2,}-[a-z0-9]+(?:-[a-z0-9]+)*")


@settings(max_examples=200, deadline=None)
@given(number=st.integers(1, 5000), title=st.none() | st.text(), extra=st.integers(0, 5000))
def test_slug_can_never_leave_the_output_folder(number: int, title: str | None, extra: int) -> None:
    total = number + extra
    slug = chapter_slug(number, title, total)
    assert SAFE_SLUG.fullmatch(slug), slug
    assert "/" not in slug and "\\" not in slug and ".." not in slug
    assert len(slug) <= max(2, len(str(total))) + 1 + SLUG_MAX_TITLE_CHARS
    base = os.path.abspath("out")
    assert os.path.dirname(os.path.abspath(os.path.join(base, slug + ".wav"))) == base
    assert slug.startswith(f"{number:0{max(2, len(str(total)))}d}-")
