"""Book metadata: YAML front matter, merging with flags, cover checks."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path

import pytest

from llasa_cli.errors import InputDecodeError, InvalidOptionError
from llasa_cli.text.metadata import BookMetadata, check_cover, merge_metadata, metadata_from_fields, parse_front_matter

FRONT = """---
title: The Lighthouse
authors: [A. Writer, B. Editor]
Narrator: Llasa
date: 2024-05-01
genre: Fiction
cover: art/cover.jpg
unknown: ignored
---
# Chapter One

Text.
"""


def test_front_matter_fields_and_body():
    fields, body = parse_front_matter(FRONT, base_dir=Path("/books"))
    assert fields == {
        "title": "The Lighthouse",
        "author": "A. Writer, B. Editor",
        "narrator": "Llasa",
        "year": 2024,
        "genre": "Fiction",
        "cover": Path("/books/art/cover.jpg"),
    }
    assert body == "# Chapter One\n\nText.\n"


@pytest.mark.parametrize(
    "text",
    [
        "# No front matter\n\nText.\n",
        "---\n\nA thematic break first, no closing fence.\n",
        "---\nChapter One\n---\n\nA setext heading, not a mapping.\n",
        "---\nNote: this is prose that happens to look like YAML\n---\n\nText.\n",
    ],
)
def test_text_that_is_not_front_matter_is_untouched(text):
    assert parse_front_matter(text) == ({}, text)


def test_malformed_front_matter_is_a_decode_error():
    with pytest.raises(InputDecodeError, match="YAML"):
        parse_front_matter("---\ntitle: [unclosed\n---\nText\n")
    with pytest.raises(InputDecodeError, match="year"):
        parse_front_matter("---\ntitle: T\nyear: soon\n---\nText\n")
    with pytest.raises(InputDecodeError, match="title"):
        parse_front_matter("---\ntitle: {a: 1}\n---\nText\n")


def test_front_matter_is_never_unpickled_or_executed():
    with pytest.raises(InputDecodeError):
        parse_front_matter("---\ntitle: !!python/object/apply:os.system ['true']\n---\nText\n")


BILLION_LAUGHS = (
    "---\ntitle: Laughs\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in pairwise("abcdefghi"))
    + "author: *i\n---\nText.\n"
)


@pytest.mark.parametrize(
    "text",
    [BILLION_LAUGHS, "---\ntitle: &loop [*loop]\n---\nText\n", "---\ntitle: &name Book\n---\nText\n"],
)
def test_anchors_and_aliases_are_refused_before_anything_expands(text):
    with pytest.raises(InputDecodeError, match="anchors or aliases"):
        parse_front_matter(text)


def test_deeply_nested_front_matter_is_refused_without_recursion():
    with pytest.raises(InputDecodeError, match="deeper than"):
        parse_front_matter("---\ntitle: " + "[" * 100_000 + "]" * 100_000 + "\n---\nText\n")


def test_aliases_in_a_block_that_is_not_front_matter_leave_it_as_text():
    text = "---\n*Emphasis* opens this scene\n---\n\nText.\n"
    assert parse_front_matter(text) == ({}, text)


def test_flags_win_over_front_matter():
    front, _ = parse_front_matter(FRONT)
    merged = merge_metadata(front, {"title": "Flag Title", "author": None, "year": 1999})
    assert merged.title == "Flag Title"
    assert merged.author == "A. Writer, B. Editor"
    assert merged.year == 1999
    assert merge_metadata(BookMetadata(genre="G"), BookMetadata(narrator="N")) == BookMetadata(narrator="N", genre="G")


def test_coercion_and_validation():
    assert metadata_from_fields({"year": dt.date(2001, 2, 3), "title": 42}).year == 2001
    assert metadata_from_fields({"year": "1850s"}).year == 1850
    with pytest.raises(InvalidOptionError):
        BookMetadata(year=0)


def test_cover_must_be_jpeg_or_png(tmp_path):
    png = tmp_path / "c.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    jpeg = tmp_path / "c.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 16)
    assert check_cover(png) == "png" and check_cover(jpeg) == "jpeg"
    (tmp_path / "c.gif").write_bytes(b"GIF89a")
    with pytest.raises(InvalidOptionError, match="JPEG or PNG"):
        check_cover(tmp_path / "c.gif")
    with pytest.raises(InvalidOptionError, match="not found"):
        check_cover(tmp_path / "missing.jpg")
