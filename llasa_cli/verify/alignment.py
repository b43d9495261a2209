"""Where a transcript departs from its text, word by word: the typical failures of LLM-based TTS.

A word error rate says how much differs, not how: a 4-word clause skipped in a 14-word sentence
is under 30% WER, and so is a 3-word phrase said twice. The transcript's tokens (normalised as
for WER, textcompare.py) are aligned with the text's by edit distance, and three numbers read off,
in words (Chinese is compared by character; two characters count as one word):

| metric | what it counts | failure |
|---|---|---|
| `omitted_words` | the longest run of consecutive text tokens the transcript lacks (deletions) | `omission` |
| `repeated_words` | longest n-gram (n >= 2) said more often than the text says it, twice in a row | `loop` |
| `words_after_end` | transcript tokens after the one aligned with the text's last token | `babble` |

"Twice in a row": a loop repeats itself at once ("before the storm before the storm"); a pair
must repeat at once, a longer phrase may have up to n - 2 (at most LOOP_GAP_TOKENS) words heard
between its copies. N-grams said again further apart are left to the WER (a misheard word can
make a common pair like "of the" appear twice).
Pure Python on token lists; no model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

MIN_LOOP_NGRAM = 2
# Tokens allowed between two copies of an n-gram: n - 2, at most LOOP_GAP_TOKENS (a pair must
# repeat at once; a longer phrase may have a filler word heard between its copies).
LOOP_GAP_TOKENS = 2

MATCH, SUBSTITUTE, DELETE, INSERT = "=", "~", "-", "+"

OMISSION = "omission"
LOOP = "loop"
BABBLE = "babble"
ALIGNMENT_FAILURES = frozenset({OMISSION, LOOP, BABBLE})


OMITTED_WORDS = "omitted_words"
REPEATED_WORDS = "repeated_words"
WORDS_AFTER_END = "words_after_end"
# Counts are in words; Chinese is compared character by character (textcompare.py), and a Chinese
# word is about two characters, so there a token counts half a word.
WORDS_PER_TOKEN = {"zh": 0.5}


@dataclass(frozen=True)
class AlignmentReport:
    """The three counts, in words (see WORDS_PER_TOKEN)."""

    omitted_words: float
    repeated_words: float
    words_after_end: float

    def metrics(self) -> dict[str, float]:
        return {
            OMITTED_WORDS: self.omitted_words,
            REPEATED_WORDS: self.repeated_words,
            WORDS_AFTER_END: self.words_after_end,
        }


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> list[str]:
    """Edit operations turning `reference` into `hypothesis`, in order (MATCH, SUBSTITUTE, DELETE,
    INSERT). Among alignments of least cost, a match is preferred, then an insertion late in the
    transcript, so words spoken past the end stay at the end."""
    rows, cols = len(reference), len(hypothesis)
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows + 1):
        cost[i][0] = i
    for j in range(cols + 1):
        cost[0][j] = j
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            diagonal = cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
            cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    ops: list[str] = []
    i, j = rows, cols
    while i or j:
        if i and j and reference[i - 1] == hypothesis[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            ops.append(MATCH)
            i, j = i - 1, j - 1
        elif j and cost[i][j] == cost[i][j - 1] + 1:
            ops.append(INSERT)
            j -= 1
        elif i and j and cost[i][j] == cost[i - 1][j - 1] + 1:
            ops.append(SUBSTITUTE)
            i, j = i - 1, j - 1
        else:
            ops.append(DELETE)
            i -= 1
    return ops[::-1]


def longest_deletion_run(ops: Sequence[str]) -> int:
    """Most consecutive text tokens deleted (insertions in between do not break a run)."""
    longest = current = 0
    for op in ops:
        if op == DELETE:
            current += 1
            longest = max(longest, current)
        elif op != INSERT:
            current = 0
    return longest


def tokens_after_end(ops: Sequence[str]) -> int:
    """Insertions after the last operation that consumes a text token."""
    count = 0
    for op in reversed(ops):
        if op != INSERT:
            break
        count += 1
    return count


def longest_extra_repeat(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Length of the longest n-gram (n >= MIN_LOOP_NGRAM) the hypothesis says more often than the
    reference, two of its copies close together (see LOOP_GAP_TOKENS); 0 when there is none."""
    for n in range(len(hypothesis) // 2, MIN_LOOP_NGRAM - 1, -1):
        said = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        starts: dict[tuple[str, ...], list[int]] = {}
        for i in range(len(hypothesis) - n + 1):
            starts.setdefault(tuple(hypothesis[i : i + n]), []).append(i)
        for gram, positions in starts.items():
            gap = min(n - MIN_LOOP_NGRAM, LOOP_GAP_TOKENS)
            close = any(b - a - n <= gap for a, b in zip(positions, positions[1:], strict=False))
            if len(positions) > said[gram] and close:
                return n
    return 0


def check_alignment(reference: Sequence[str], hypothesis: Sequence[str], lang: str = "en") -> AlignmentReport:
    """The three alignment metrics of a transcript's tokens against its text's."""
    ops = align(reference, hypothesis)
    scale = WORDS_PER_TOKEN.get(lang, 1.0)
    return AlignmentReport(
        omitted_words=longest_deletion_run(ops) * scale,
        repeated_words=longest_extra_repeat(reference, hypothesis) * scale,
        words_after_end=(tokens_after_end(ops) if reference else 0) * scale,
    )
