"""How far a transcript is from the text it should say: WER for English, CER for Chinese.

Both sides go through the same normaliser first, so punctuation, case, spelled-out versus
written numbers ("twelve" / "12") and British/American spellings do not count as errors:

- `en`: Whisper's `EnglishTextNormalizer` (the normaliser Whisper's own WER figures use);
- `zh`: Whisper's `BasicTextNormalizer` (lower case, symbols and punctuation removed), then
  every letter or digit (each CJK character) is a token.

Tokens without a letter or digit (a lone "." the English normaliser keeps) are not counted.

Brackets and parentheses are turned into spaces before normalising: Whisper's normalisers drop
the words between them, which would hide a skipped parenthetical in the reference text.

The rate is (substitutions + deletions + insertions) / reference tokens, so it can exceed 1
when the speech babbles on. An empty reference gives 0.0 for an empty transcript, else 1.0.
Importing whisper's normalisers imports torch, so they are loaded lazily (once). `word_diff` lays
the two side by side for a listener (`llasa review`), without the normaliser.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .verdict import CER, WER

CER_LANGS = frozenset({"zh"})
_BRACKETS = re.compile(r"[()\[\]<>{}]")
_PUNCTUATION = re.compile(r"[^\w]")


@dataclass(frozen=True)
class ErrorRate:
    """An edit-distance comparison of a reference with a hypothesis, after normalisation."""

    metric: str  # "wer" or "cer"
    rate: float
    errors: int
    reference_tokens: int
    reference: str  # normalised
    hypothesis: str  # normalised
    reference_words: tuple[str, ...] = ()  # the tokens compared (characters for CER languages)
    hypothesis_words: tuple[str, ...] = ()


def metric_for(lang: str) -> str:
    """`cer` for languages written without spaces (Chinese), else `wer`."""
    return CER if lang in CER_LANGS else WER


@lru_cache(maxsize=2)
def _normalizer(lang: str) -> Callable[[str], str]:
    from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

    return BasicTextNormalizer() if lang in CER_LANGS else EnglishTextNormalizer()


def normalize_text(text: str, lang: str = "en") -> str:
    """The text as it is compared: Whisper-normalised, whitespace collapsed."""
    cleaned = _BRACKETS.sub(" ", text)
    return " ".join(_normalizer(lang)(cleaned).split())


def tokens(text: str, lang: str = "en") -> list[str]:
    """Words for WER languages, letters and digits for CER languages (after normalisation)."""
    normalized = normalize_text(text, lang)
    if metric_for(lang) == CER:
        return [char for char in normalized if char.isalnum()]
    return [word for word in normalized.split() if any(char.isalnum() for char in word)]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (unit costs)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_token in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_token in enumerate(hypothesis, start=1):
            substitution = previous[j - 1] + (ref_token != hyp_token)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        previous = current
    return previous[-1]


def error_rate(reference: str, hypothesis: str, lang: str = "en") -> ErrorRate:
    """WER (en) or CER (zh) of `hypothesis` against `reference`."""
    ref, hyp = tokens(reference, lang), tokens(hypothesis, lang)
    errors = edit_distance(ref, hyp)
    rate = errors / len(ref) if ref else float(bool(hyp))
    return ErrorRate(
        metric=metric_for(lang),
        rate=rate,
        errors=errors,
        reference_tokens=len(ref),
        reference=normalize_text(reference, lang),
        hypothesis=normalize_text(hypothesis, lang),
        reference_words=tuple(ref),
        hypothesis_words=tuple(hyp),
    )


@dataclass(frozen=True)
class DiffPart:
    """A run of the text and what the transcript has in its place: `equal`, `replace`, `delete`
    (said nothing for `text`) or `insert` (said `heard` where the text has nothing)."""

    tag: str
    text: str
    heard: str


def word_diff(text: str, transcript: str, lang: str = "en") -> list[DiffPart]:
    """Where a transcript departs from the text, word by word (letter by letter for CER
    languages), for a listener to read. Words match regardless of case and punctuation; unlike
    `error_rate` there is no Whisper normalising, so "12" and "twelve" show as a difference."""
    split = list if metric_for(lang) == CER else str.split
    ours, theirs = split(" ".join(text.split())), split(" ".join(transcript.split()))
    joiner = "" if metric_for(lang) == CER else " "
    matcher = difflib.SequenceMatcher(None, [_word_key(w) for w in ours], [_word_key(w) for w in theirs], False)
    return [
        DiffPart(tag, joiner.join(ours[i1:i2]), joiner.join(theirs[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _word_key(word: str) -> str:
    return _PUNCTUATION.sub("", word.casefold()) or word
