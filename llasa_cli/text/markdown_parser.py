"""The Markdown parser the text pipeline reads manuscripts with: CommonMark that never drops text.

Stock markdown-it loses text in three places, each closed here:
- At its nesting limit it skips the rest of the enclosing block, which for a list
  is the rest of the book. Here, at MAX_BLOCK_NESTING levels of containers (a list
  costs two, list and item; a quote one), the rest of the deepest container is read
  as plain paragraphs, its quote and bullet markers removed. The parser recurses
  only that deep, so even 100,000 nested quotes take linear time and little stack.
- A table row with more cells than its header loses the extra cells; here they are
  kept as further cells of the row.
- A footnote definition of one word (`[^1]: Ibid.`) is a link reference definition
  to CommonMark, and vanishes. Here `[^label]` markers become `footnote_ref` tokens
  (for the caller to drop and count) and the note's text stays where it is written.
Link reference definitions (`[id]: https://...`) are markup, not prose; the caller
counts them from `env["references"]`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_block.state_block import StateBlock
    from markdown_it.rules_inline.state_inline import StateInline
    from markdown_it.token import Token

# Container levels parsed as Markdown; deeper text is read as plain paragraphs.
MAX_BLOCK_NESTING = 40
# markdown-it's own limit, out of reach of the block levels above (a list item and its
# paragraph add three past the last container); it also bounds inline nesting (links
# in links), where markdown-it keeps the text past it as literal characters.
PARSER_NESTING_LIMIT = MAX_BLOCK_NESTING + 10
FOOTNOTE_REF = "footnote_ref"
_FOOTNOTE_MARK = re.compile(r"\[\^[^\]\s]+\]")
# Quote markers and bullets at the start of a line of over-deep text: markup, not words.
_CONTAINER_MARKERS = re.compile(r"[ \t]*(?:(?:>|[-+*](?=[ \t]|$))[ \t]*)*")
_LIST_ITEM_START = re.compile(r"[ \t]*(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")


@functools.lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    """CommonMark with raw HTML, tables and strikethrough, made lossless (see the module doc)."""
    from markdown_it import MarkdownIt  # imported here: only Markdown input needs it
    from markdown_it.rules_block.reference import reference
    from markdown_it.rules_block.table import table

    parser = MarkdownIt("commonmark", {"html": True, "maxNesting": PARSER_NESTING_LIMIT})
    parser.enable(["table", "strikethrough"])
    first_rule = parser.block.ruler.get_all_rules()[0]
    parser.block.ruler.before(first_rule, "plain_when_too_deep", _plain_when_too_deep)
    parser.block.ruler.at("table", _table_keeping_extra_cells(table), {"alt": ["paragraph", "reference"]})
    parser.block.ruler.at("reference", _reference_unless_footnote(reference))
    parser.inline.ruler.before("link", FOOTNOTE_REF, _footnote_ref)
    return parser


# --- over-deep containers ---------------------------------------------------


def _plain_when_too_deep(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """At the depth limit, the rest of this container (its lines indented at least as
    deep, and blank lines) becomes plain paragraphs: no recursion, nothing skipped."""
    if state.level < MAX_BLOCK_NESTING:
        return False
    if silent:
        return True
    stop = start + 1
    while stop < end and (state.isEmpty(stop) or state.sCount[stop] >= state.blkIndent):
        stop += 1
    lines = state.getLines(start, stop, state.blkIndent, False).split("\n")
    for first, paragraph in _plain_paragraphs(lines):
        state.push("paragraph_open", "p", 1).map = [start + first, start + first + 1]
        inline = state.push("inline", "", 0)
        inline.content, inline.map, inline.children = paragraph, [start + first, start + first + 1], []
        state.push("paragraph_close", "p", -1)
    state.line = stop
    return True


def _plain_paragraphs(lines: list[str]) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph: a blank line or a new list item starts one."""
    paragraphs: list[tuple[int, list[str]]] = []
    fresh = True
    for number, line in enumerate(lines):
        text = _CONTAINER_MARKERS.sub("", line, count=1).strip()  # the pattern matches at the start
        if not text:
            fresh = True
            continue
        if fresh or _LIST_ITEM_START.match(line):
            paragraphs.append((number, []))
        paragraphs[-1][1].append(text)
        fresh = False
    return [(first, "\n".join(texts)) for first, texts in paragraphs]


# --- tables -----------------------------------------------------------------


def _table_keeping_extra_cells(table):  # -> a block rule
    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        first = len(state.tokens)
        if not table(state, start, end, silent):
            return False
        if not silent:
            _add_extra_cells(state, first)
        return True

    return rule


def _add_extra_cells(state: StateBlock, first: int) -> None:
    """Give each row of the table (its tokens from `first` on) the cells past the header's count,
    which markdown-it leaves out."""
    rebuilt: list[Token] = []
    row_open, kept = None, 0
    for token in state.tokens[first:]:
        if token.type == "tr_open":
            row_open, kept = token, 0
        elif token.type in ("td_open", "th_open"):
            kept += 1
        elif token.type == "tr_close" and row_open is not None and row_open.map:
            for extra in _row_cells(state, row_open.map[0])[kept:]:
                rebuilt += _cell_tokens(extra, row_open.map)
        rebuilt.append(token)
    state.tokens[first:] = rebuilt


def _row_cells(state: StateBlock, line: int) -> list[str]:
    from markdown_it.rules_block.table import escapedSplit

    text = state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]].strip()
    cells = escapedSplit(text)
    if cells and cells[0].strip() == "":
        cells.pop(0)
    if cells and cells[-1].strip() == "":
        cells.pop()
    return [cell.strip() for cell in cells]


def _cell_tokens(content: str, line_map: list[int]) -> list[Token]:
    from markdown_it.token import Token

    inline = Token("inline", "", 0, content=content, map=line_map, children=[])
    return [Token("td_open", "td", 1), inline, Token("td_close", "td", -1)]


# --- footnotes --------------------------------------------------------------


def _reference_unless_footnote(reference):  # -> a block rule
    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if state.src.startswith("[^", state.bMarks[start] + state.tShift[start]):
            return False  # a footnote's text: a paragraph, its marker dropped by `_footnote_ref`
        return reference(state, start, end, silent)

    return rule


def _footnote_ref(state: StateInline, silent: bool) -> bool:
    """`[^label]` (and the colon after it at the start of a note) is a footnote marker."""
    match = _FOOTNOTE_MARK.match(state.src, state.pos)
    if match is None:
        return False
    end = match.end()
    if state.pos == 0 and state.src.startswith(":", end):
        end += 1
    if not silent:
        state.push(FOOTNOTE_REF, "", 0).content = match.group()
    state.pos = end
    return True
