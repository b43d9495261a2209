"""`llasa split` on hostile and odd input, through the installed command as a user meets it:
nothing is lost, nothing hangs, and every refusal is one line with its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from itertools import pairwise
from pathlib import Path

import pytest

# A command that takes longer than this is hanging, not working.
SPLIT_TIMEOUT_S = 60


def llasa_command() -> str:
    """The `llasa` entry point pip installed beside this Python."""
    script = Path(sys.executable).with_name("llasa")
    if not script.exists():
        pytest.skip("the llasa entry point is not installed next to this Python")
    return str(script)


def split(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [llasa_command(), "split", *map(str, args)], capture_output=True, text=True, timeout=SPLIT_TIMEOUT_S
    )


def split_json(*args: str | Path) -> list[dict]:
    result = split(*args, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], exit_code: int, *fragments: str) -> None:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llasa: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def spoken_words(segments: list[dict]) -> list[str]:
    return [word for segment in segments for word in segment["text"].split()]


# --- Markdown nesting ------------------------------------------------------------


def test_a_list_nested_past_the_parser_limit_keeps_the_rest_of_the_book(tmp_path):
    items = [f"{'  ' * depth}- item{chr(97 + depth)}" for depth in range(25)]
    quote = ">" * 30 + " deep quoted words"
    text = "\n".join(["# One", "", *items, "", "After the list.", "", "# Two", "", quote, "", "The end."])
    (tmp_path / "book.md").write_text(text)
    segments = split_json(tmp_path / "book.md")
    assert [f"item{chr(97 + depth)}" for depth in range(25)] == [
        word for word in spoken_words(segments) if word.startswith("item")
    ]
    assert sorted({segment["chapter_title"] for segment in segments}) == ["One", "Two"]
    assert spoken_words(segments)[-6:] == ["Two", "deep", "quoted", "words", "The", "end."]


@pytest.mark.parametrize("opening", ["> ", "- ", "1. ", "> - "])
def test_a_hundred_thousand_levels_of_nesting_are_read_in_bounded_time(tmp_path, opening):
    (tmp_path / "deep.md").write_text(opening * 100_000 + "bottom\n\nAfter it.\n")
    assert spoken_words(split_json(tmp_path / "deep.md"))[-3:] == ["bottom", "After", "it."]


# --- YAML front matter -----------------------------------------------------------

LAUGH_LEVELS = "abcdefghi"


def billion_laughs() -> str:
    levels = [f"a: &a [{', '.join(['lol'] * 9)}]"]
    levels += [f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in pairwise(LAUGH_LEVELS)]
    return "\n".join(["---", "title: Laughs", *levels, f"author: *{LAUGH_LEVELS[-1]}", "---", "", "Text."])


@pytest.mark.parametrize(
    "front", [billion_laughs(), "---\ntitle: &loop [*loop]\n---\n\nText.\n"], ids=["billion-laughs", "recursive"]
)
def test_yaml_aliases_are_refused_in_one_line(tmp_path, front):
    (tmp_path / "book.md").write_text(front)
    result = split(tmp_path / "book.md")
    assert_one_line_error(result, 12, "book.md", "anchors or aliases")


# --- --chapter-pattern --------------------------------------------------------------


@pytest.fixture
def line_of_as(tmp_path: Path) -> Path:
    path = tmp_path / "book.txt"
    path.write_text("Opening words.\n\n" + "a" * 5_000 + "!\n\nMore words.\n")
    return path


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(a|a)+b"])
def test_a_catastrophic_chapter_pattern_fails_in_one_line_instead_of_hanging(line_of_as, pattern):
    started = time.monotonic()
    result = split(line_of_as, "--chapter-pattern", pattern)
    assert_one_line_error(result, 2, f"--chapter-pattern {pattern!r}", "takes too long")
    assert time.monotonic() - started < SPLIT_TIMEOUT_S / 2


def test_the_pattern_from_the_report_finishes(line_of_as):
    assert split_json(line_of_as, "--chapter-pattern", r"(a+)+$")


def test_an_invalid_chapter_pattern_is_one_line(line_of_as):
    assert_one_line_error(split(line_of_as, "--chapter-pattern", "(a+"), 2, "--chapter-pattern", "regular expression")


# --- terminal controls in titles --------------------------------------------------

ESCAPED_BOOK = b"# Chap \x1b[31mRED\x1b]0;pwned\x07 one\n\nText \x1b[2J here.\n\n# [/] odd [bold]title\n\nMore.\n"


def test_escape_sequences_in_titles_are_neither_printed_nor_kept(tmp_path):
    (tmp_path / "book.md").write_bytes(ESCAPED_BOOK)
    result = split(tmp_path / "book.md")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert "Chap RED one" in result.stdout and "[/] odd [bold]title" in result.stdout  # text, not Rich markup
    assert "removed 3 terminal control" in result.stderr
    segments = split_json(tmp_path / "book.md")
    assert [segment["chapter_title"] for segment in segments[:2]] == ["Chap RED one", "Chap RED one"]
    assert all("\x1b" not in segment["text"] and "\x1b" not in segment["chapter_title"] for segment in segments)


# --- EPUB: title page, front matter, size limits -----------------------------------


def title_page_epub(path: Path) -> Path:
    """`title.xhtml`, "Title Page" in the contents, before one chapter."""
    epub = pytest.importorskip("ebooklib.epub")
    book = epub.EpubBook()
    book.set_identifier("title-page")
    book.set_title("The Lighthouse")
    pages = []
    for uid, name, body in [
        ("title", "title.xhtml", "<h1>The Lighthouse</h1><p>A. Writer</p>"),
        ("c1", "chapter1.xhtml", "<h1>Chapter 1</h1><p>Rain fell on the harbour.</p>"),
    ]:
        page = epub.EpubHtml(uid=uid, file_name=name, title=uid, lang="en")
        page.content = f"<html><head><title>{uid}</title></head><body>{body}</body></html>"
        book.add_item(page)
        pages.append(page)
    book.toc = [epub.Link("title.xhtml", "Title Page", "tp"), epub.Link("chapter1.xhtml", "Chapter 1", "c1")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [pages[0], "nav", pages[1]]
    epub.write_epub(str(path), book)
    return path


def test_split_skips_the_title_page_and_says_so(tmp_path):
    path = title_page_epub(tmp_path / "book.epub")
    result = split(path)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 front-matter document(s): title.xhtml (title page), nav.xhtml" in result.stderr
    segments = split_json(path)
    assert {segment["chapter_title"] for segment in segments} == {"Chapter 1"}
    assert "Writer" not in " ".join(spoken_words(segments))


def test_split_keeps_front_matter_when_asked(tmp_path):
    segments = split_json(title_page_epub(tmp_path / "book.epub"), "--keep-front-matter")
    assert [segments[0]["chapter_title"], segments[-1]["chapter_title"]] == ["Title Page", "Chapter 1"]
    assert "Writer" in " ".join(spoken_words(segments))


def test_an_epub_entry_that_inflates_past_the_limit_is_one_line(tmp_path):
    from llasa_cli.text.epub_archive import MAX_ENTRY_BYTES

    path = title_page_epub(tmp_path / "book.epub")
    with zipfile.ZipFile(path) as source:
        files = {name: source.read(name) for name in source.namelist()}
    chapter = next(name for name in files if name.endswith("chapter1.xhtml"))
    files[chapter] = b" " * (MAX_ENTRY_BYTES + 1)  # 32 MiB of spaces pack into a few kilobytes
    with zipfile.ZipFile(tmp_path / "bomb.epub", "w", zipfile.ZIP_DEFLATED) as bomb:
        for name, data in files.items():
            bomb.writestr(name, data)
    assert_one_line_error(split(tmp_path / "bomb.epub"), 12, "bomb.epub", "chapter1.xhtml inflates to over")
