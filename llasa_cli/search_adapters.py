"""The search loop's scorers, backed by the codec and the verifiers.

Partial candidates are scored on what can be judged before the end of a sentence: speaker
similarity and the signal checks (no ASR: half a sentence would always mismatch its text).
Finished candidates are scored by the full verifier, its parts weighted by `--score-weights`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .options import VerifyOptions
from .protocols import SpeechCodec
from .search import Candidate, ScoreWeights

# Failure names the signal checks report (signal_checks.py); the rest come from ASR or the speaker check.
SIGNAL_FAILURES = frozenset(
    {"empty", "too_short", "too_long", "lead_silence", "trail_silence", "inner_silence", "clipping", "too_quiet",
     "hit_cap"}
)  # fmt: skip


class VerdictScorer:
    """Decodes candidates' codes (one batch) and ranks them by a verifier's weighted verdict."""

    def __init__(self, codec: SpeechCodec, verifier: Any, weights: ScoreWeights) -> None:
        self.codec = codec
        self.verifier = verifier
        self.weights = weights
        self.codec_seconds = 0.0  # running total, read by the search for its statistics

    def score(self, items: Sequence[Candidate]) -> list[float]:
        from .verify import VerifyItem

        begin = time.perf_counter()
        audio = self.codec.decode([np.asarray(c.codes, dtype=np.int64) for c in items])
        self.codec_seconds += time.perf_counter() - begin
        verdicts = self.verifier.verify(
            [VerifyItem(c.request.text, a, c.hit_cap) for c, a in zip(items, audio, strict=True)]
        )
        return [self._combine(v) for v in verdicts]

    def _combine(self, verdict: Any) -> float:
        signal_failed = len(SIGNAL_FAILURES.intersection(verdict.failures))
        error = verdict.metrics.get("wer", verdict.metrics.get("cer"))
        similarity = verdict.metrics.get("similarity")
        return self.weights.combine(1.0 - signal_failed / len(SIGNAL_FAILURES), error, similarity)


def make_scorers(
    verifier: Any | None,
    reference_audio: np.ndarray,
    codec: SpeechCodec,
    weights: ScoreWeights,
    lang: str,
) -> tuple[VerdictScorer, VerdictScorer]:
    """(partial, final) scorers sharing the run's loaded models; signal checks only without a verifier."""
    from .verify import CompositeVerifier

    if not isinstance(verifier, CompositeVerifier):
        signal_only = CompositeVerifier(VerifyOptions(check_asr=False, check_speaker=False), None, None, None, lang)
        return VerdictScorer(codec, signal_only, weights), VerdictScorer(codec, signal_only, weights)
    partial_options = dataclasses.replace(verifier.options, check_asr=False)
    partial = CompositeVerifier(partial_options, None, verifier.embedder, reference_audio, lang)
    return VerdictScorer(codec, partial, weights), VerdictScorer(codec, verifier, weights)
