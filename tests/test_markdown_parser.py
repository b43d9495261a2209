"""The lossless Markdown parser: what stock markdown-it drops is kept, and deep input stays cheap."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from llasa_cli.text.markdown_parser import MAX_BLOCK_NESTING
from llasa_cli.text.normalize import FOOTNOTE_MARKER, LINK_DEFINITION, markdown_paragraphs

# Generous for 200,000 characters of nesting on a busy shared core; the stock parser's failure is
# losing text, not time, so this only guards against a quadratic fallback.
DEEP_INPUT_SECONDS = 20.0


def paragraphs(text: str) -> tuple[list[str], Counter[str]]:
    dropped: Counter[str] = Counter()
    return markdown_paragraphs(text, dropped), dropped


def test_a_list_past_the_depth_limit_is_read_as_plain_paragraphs_and_the_text_after_it_stays():
    depth = MAX_BLOCK_NESTING  # list levels: twice as many container levels as the limit
    items = [f"{'  ' * level}- item {level}" for level in range(depth)]
    found, _ = paragraphs("\n".join([*items, "", "After the list."]))
    assert found == [f"item {level}" for level in range(depth)] + ["After the list."]


def test_a_quote_past_the_depth_limit_keeps_its_words():
    found, _ = paragraphs(">" * (MAX_BLOCK_NESTING + 5) + " deep words\n\nAfter.")
    assert found == ["deep words", "After."]


def test_table_cells_past_the_header_count_are_kept():
    found, _ = paragraphs("| a | b |\n|---|---|\n| c | d | e | f |\n| g |")
    assert found == ["a, b", "c, d, e, f", "g"]


def test_footnotes_keep_their_text_and_lose_their_markers():
    found, dropped = paragraphs("Text[^1] here.\n\n[^1]: Ibid.\n\n[^long]: A longer note.")
    assert found == ["Text here.", "Ibid.", "A longer note."]
    assert dropped[FOOTNOTE_MARKER[0]] == 3


def test_link_definitions_are_counted_as_dropped():
    found, dropped = paragraphs("See [the site][s].\n\n[s]: https://example.com")
    assert found == ["See the site."]
    assert dropped[LINK_DEFINITION[0]] == 1


@pytest.mark.parametrize("unit", ["> ", "- ", "1. ", "> - ", "["])
def test_a_hundred_thousand_levels_take_bounded_time(unit):
    started = time.perf_counter()
    found, _ = paragraphs(unit * 100_000 + "bottom")
    assert time.perf_counter() - started < DEEP_INPUT_SECONDS
    assert found[-1].endswith("bottom")
