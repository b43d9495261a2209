"""Pronunciation lexicon: `written -> spoken` pairs the user controls (read from a TSV file by
`options.load_lexicon`), applied to the text before any built-in rule.

Matching is whole-word (CJK characters do not count as word neighbours) and case-aware:
- a written form with any capital letter (`NASA`, `Siobhan`) matches exactly that spelling;
- an all-lowercase written form (`tomato`) matches any capitalisation, and the
  spoken form follows the match's case (`Tomato` -> `Tomahto`, `TOMATO` -> `TOMAHTO`).
Longer written forms win over shorter ones (`New York City` before `New York`),
and replaced text is never rewritten again by the lexicon or by later rules.
"""

from __future__ import annotations

import functools
import re

from ..options import Lexicon

# A letter or digit that is not CJK: Chinese is written without spaces, so a CJK
# neighbour never makes a match "part of a word" (我的GPU很快 still matches GPU).
_WORD_CHAR_NOT_CJK = r"[^\W\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]"


def apply_lexicon(text: str, lexicon: Lexicon) -> list[tuple[str, bool]]:
    """Split `text` into pieces `(text, replaced)`; replaced pieces hold spoken forms.

    Callers run their own rules on the pieces that were not replaced only, so a
    lexicon entry always has the last word on how its text is said.
    """
    if not lexicon or not text:
        return [(text, False)]
    pattern, exact, folded = _compile(lexicon)
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(text):
        spoken = _spoken_for(match.group(), exact, folded)
        if spoken is None:
            continue
        if match.start() > position:
            pieces.append((text[position : match.start()], False))
        pieces.append((spoken, True))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


@functools.lru_cache(maxsize=8)
def _compile(lexicon: Lexicon) -> tuple[re.Pattern[str], dict[str, str], dict[str, str]]:
    exact = {written: spoken for written, spoken in lexicon if written != written.lower()}
    folded = {written: spoken for written, spoken in lexicon if written == written.lower()}
    alternatives = []
    # Longest first, so that a longer entry wins wherever two entries overlap.
    for written, _ in sorted(lexicon, key=lambda entry: -len(entry[0])):
        escaped = re.escape(written)
        alternatives.append(escaped if written in exact else f"(?i:{escaped})")
    # Whole words: the match may not be glued to a (non-CJK) letter or digit on either side.
    pattern = re.compile(rf"(?<!{_WORD_CHAR_NOT_CJK})(?:{'|'.join(alternatives)})(?!{_WORD_CHAR_NOT_CJK})")
    return pattern, exact, folded


def _spoken_for(matched: str, exact: dict[str, str], folded: dict[str, str]) -> str | None:
    if matched in exact:
        return exact[matched]
    spoken = folded.get(matched.lower())
    if spoken is None:
        return None
    if len(matched) > 1 and matched.isupper():
        return spoken.upper()
    if matched[:1].isupper():
        return spoken[:1].upper() + spoken[1:]
    return spoken
