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
Importing whisper's normalisers imports torch, so they are loaded lazily (once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .verdict import CER, WER

CER_LANGS = frozenset({"zh"})
_BRACKETS = re.compile(r"[()\[\]<>{}]")


@dataclass(frozen=True)
class ErrorRate:
    """An edit-distance comparison of a reference with a hypothesis, after normalisation."""

    metric: str  # "wer" or "cer"
    rate: float
    errors: int
    reference_tokens: int
    reference: str  # normalised
    hypothesis: str  # normalised


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
    )
