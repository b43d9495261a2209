"""`llasa split` on a book with a cast, through the installed command: each segment's voice in
`--json`, quotes split off with `--dialogue-voice`, markup errors as one line with exit 12."""

from __future__ import annotations

from pathlib import Path

from tests.test_split_cli import assert_one_line_error, split, split_json

BOOK = """---
title: Two Voices
cast:
  anna: anna
  ben: ben
---

# One

The door creaked. [voice=anna]"Who's there?"[/voice] [pause=1.5]

[voice=ben]"Only me," he said.[/voice] Rain fell.

# Two

"Then come in," she said.
"""


def test_split_json_names_each_segments_voice(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK)
    segments = split_json(tmp_path / "book.md")
    assert [(s["id"], s["voice"], s["text"], s["pause_after"]) for s in segments] == [
        ("1.0", None, "One", "title"),
        ("1.1", None, "The door creaked.", "sentence"),
        ("1.2", "anna", '"Who\'s there?"', "1.5s"),
        ("1.3", "ben", '"Only me," he said.', "sentence"),
        ("1.4", None, "Rain fell.", "chapter"),
        ("2.0", None, "Two", "title"),
        ("2.1", None, '"Then come in," she said.', "chapter"),
    ]


def test_dialogue_voice_splits_quotes_off_in_split(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK)
    segments = split_json(tmp_path / "book.md", "--dialogue-voice", "Anna")
    assert [(s["voice"], s["text"]) for s in segments if s["chapter"] == 2] == [
        (None, "Two"),
        ("anna", '"Then come in,"'),
        (None, "she said."),
    ]
    assert ("ben", '"Only me," he said.') in [(s["voice"], s["text"]) for s in segments]


def test_markup_errors_are_one_line_with_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK.replace("[/voice] Rain", "[/voise] Rain"))
    result = split(tmp_path / "book.md")
    assert_one_line_error(result, 12, "book.md, line 12, column 31: unknown tag [/voise]")
    (tmp_path / "open.txt").write_text("Fine.\n\n  [voice=anna]Never closed.\n")
    assert_one_line_error(split(tmp_path / "open.txt"), 12, "line 3, column 3: [voice=anna] is never closed")


def test_a_bad_dialogue_voice_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "book.txt").write_text("Text.")
    assert_one_line_error(split(tmp_path / "book.txt", "--dialogue-voice", "two words"), 2, "--dialogue-voice")
