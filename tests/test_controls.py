"""Terminal control characters and escape sequences never reach a plan, a title or a tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from llasa_cli.text.controls import remove_terminal_controls
from llasa_cli.text.manuscript import manuscript_from_text, read_manuscript
from llasa_cli.text.metadata import parse_front_matter


@pytest.mark.parametrize(
    ("text", "clean", "removed"),
    [
        ("Chap \x1b[31mRED\x1b[0m one", "Chap RED one", 2),
        ("Title\x1b]0;pwned\x07 here", "Title here", 1),
        ("Title\x1b]2;pwned\x1b\\ here", "Title here", 1),
        ("Clear\x1b[2J\x1b[H screen", "Clear screen", 2),
        ("8-bit\x9b31m CSI", "8-bit CSI", 1),
        ("Bell\x07 and\x08 backspace\x7f", "Bell and backspace", 3),
        ("Unended \x1b]0;title\nnext line", "Unended 0;title\nnext line", 1),
        ("Page\x0cbreak and\x1funit", "Page\nbreak and unit", 0),
        ("Tabs\tand\nlines stay", "Tabs\tand\nlines stay", 0),
    ],
)
def test_sequences_go_whole_and_line_breaks_stay_line_breaks(text: str, clean: str, removed: int) -> None:
    assert remove_terminal_controls(text) == (clean, removed)


def test_an_unended_string_loses_only_its_introducer() -> None:
    text = "Before \x1b]" + "words " * 1000
    assert remove_terminal_controls(text)[0] == "Before " + "words " * 1000


def test_a_manuscript_file_is_read_without_controls_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "book.md"
    path.write_bytes(b"# Chap \x1b[31mRED\x1b[0m\n\nText\x07 here.\n")
    manuscript = read_manuscript(str(path))
    assert manuscript.text == "# Chap RED\n\nText here.\n"
    assert len(manuscript.warnings) == 1 and "removed 3" in manuscript.warnings[0]


def test_front_matter_keeps_its_warnings_and_loses_controls(tmp_path: Path) -> None:
    path = tmp_path / "book.md"
    path.write_bytes(b'---\ntitle: "Evil\\e[31m Title"\n---\n\nText\x1b[0m.\n')
    manuscript = read_manuscript(str(path))
    assert manuscript.front_matter == {"title": "Evil Title"}
    assert manuscript.text.strip() == "Text."
    assert manuscript.warnings


def test_yaml_escapes_in_front_matter_are_removed() -> None:
    fields, _ = parse_front_matter('---\ntitle: "A\\e]0;x\\aB"\nauthor: "C\\x9b1mD"\n---\nText\n')
    assert fields == {"title": "AB", "author": "CD"}


def test_text_option_loses_controls() -> None:
    assert manuscript_from_text("Say\x1b[1m this").text == "Say this"
