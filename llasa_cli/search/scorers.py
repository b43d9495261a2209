"""The search loop's scorers, backed by the codec and a verifier.

Partial candidates are scored on what can be judged before the end of a sentence, on their
newest audio only (see PARTIAL_WINDOW_SECONDS): no ASR (half a sentence would always mismatch its
text), but the signal checks that make sense inside a sentence, the noise estimate, the
calibrated speaker check (similarity against the backend's threshold, besides the similarity
itself) and the slow side of the narrator's pace: a candidate that has already spoken longer than
its whole text should take is stalling or looping (`VerifyItem.spoken_seconds`).
Finished candidates are scored by the full verifier on all their audio, its parts weighted by
`--score-weights`. The verifiers arrive behind the `SegmentVerifier` protocol, so this module
loads no model and imports no torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..constants import CODES_PER_SECOND, SAMPLES_PER_CODE
from ..engine.protocols import SpeechCodec
from ..options import ScoreWeights
from ..verify import noise, pace
from ..verify import signal_checks as sc
from ..verify.verdict import CER, RULE_FAILURES, SIMILARITY, SPEAKER, WER, SegmentVerifier, Verdict, VerifyItem
from .segment_search import Candidate

# A partial candidate is judged on its newest PARTIAL_WINDOW_SECONDS, decoded with the codes of
# PARTIAL_CONTEXT_SECONDS before them, whose audio is then cut off (the codec looks both ways, so
# audio right at a cut would be off). The newest audio is what tells one step's continuations
# apart: what came before was judged at earlier steps. And the cost stays the same at every step
# instead of growing with the candidate (decoding whole prefixes is quadratic in its length).
PARTIAL_WINDOW_SECONDS = 3.0
PARTIAL_CONTEXT_SECONDS = 1.0
# The checks that mean something on a window of a sentence in progress (a long trailing silence
# there is a stall); speech rate, omissions and the silence before the first word need the whole
# segment. A candidate's score counts the share of its scorer's checks that passed.
PARTIAL_CHECKS = frozenset(
    {sc.EMPTY, sc.INNER_SILENCE, sc.TRAIL_SILENCE, sc.CLIPPING, sc.TOO_QUIET, noise.NOISY, pace.TOO_SLOW, SPEAKER}
)
FINAL_CHECKS = RULE_FAILURES | {SPEAKER}


@dataclass(frozen=True)
class Heard:
    """A finished candidate as the final scorer heard it: its audio and the verifier's verdict."""

    audio: np.ndarray
    verdict: Verdict


class VerdictScorer:
    """A `CandidateScorer`: decodes candidates' codes (one batch) and ranks them by a verifier's
    weighted verdict.

    With `window_seconds`, only each candidate's newest audio is decoded and judged (partial
    candidates), told how long the candidate has spoken in all. A verdict's failures among
    `checks` count against the score's rule part."""

    def __init__(
        self,
        codec: SpeechCodec,
        verifier: SegmentVerifier,
        weights: ScoreWeights,
        window_seconds: float | None = None,
        checks: frozenset[str] = FINAL_CHECKS,
    ) -> None:
        self.codec = codec
        self.verifier = verifier
        self.weights = weights
        self.window_codes = None if window_seconds is None else round(window_seconds * CODES_PER_SECOND)
        self.checks = checks
        self.codec_seconds = 0.0  # running total, read by the search for its statistics
        self._heard: dict[tuple[str, bytes], Heard] = {}

    def score(self, items: Sequence[Candidate]) -> list[float]:
        windows = [self._window(np.asarray(c.codes, dtype=np.int64)) for c in items]
        begin = time.perf_counter()
        decoded = self.codec.decode([codes for codes, _ in windows])
        self.codec_seconds += time.perf_counter() - begin
        audio = [a[lead:] for a, (_, lead) in zip(decoded, windows, strict=True)]
        verdicts = self.verifier.verify(
            [
                VerifyItem(c.request.text, a, c.hit_cap, self._spoken_seconds(c))
                for c, a in zip(items, audio, strict=True)
            ]
        )
        if self.window_codes is None:
            self._heard = {
                _heard_key(c.request.text, c.codes): Heard(a, v) for c, a, v in zip(items, audio, verdicts, strict=True)
            }
        return [self._combine(v) for v in verdicts]

    def recall(self, text: str, codes: np.ndarray) -> Heard | None:
        """The audio and verdict of a candidate judged whole in this scorer's last call, so the
        pipeline need not decode and verify the chosen one again; None when it was not judged."""
        return self._heard.get(_heard_key(text, codes))

    def _spoken_seconds(self, candidate: Candidate) -> float | None:
        """A partial candidate's length so far (its window is only the newest part of it)."""
        return None if self.window_codes is None else len(candidate.codes) / CODES_PER_SECOND

    def _window(self, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """(codes to decode, samples of lead-in to cut from their audio)."""
        if self.window_codes is None:
            return codes, 0
        start = max(0, codes.size - self.window_codes)
        lead = min(start, round(PARTIAL_CONTEXT_SECONDS * CODES_PER_SECOND))
        return codes[start - lead :], lead * SAMPLES_PER_CODE

    def _combine(self, verdict: Verdict) -> float:
        failed = len(self.checks.intersection(verdict.failures))
        error = verdict.metrics.get(WER, verdict.metrics.get(CER))
        similarity = verdict.metrics.get(SIMILARITY)
        return self.weights.combine(1.0 - failed / len(self.checks), error, similarity)


def _heard_key(text: str, codes: np.ndarray) -> tuple[str, bytes]:
    return text, np.asarray(codes, dtype=np.int64).tobytes()


@dataclass(frozen=True)
class Scorers:
    """The search's two judges: the partial scorer prunes beams, the final scorer ranks finished candidates."""

    partial: VerdictScorer
    final: VerdictScorer


def make_scorers(codec: SpeechCodec, weights: ScoreWeights, verifier: SegmentVerifier) -> Scorers:
    """A partial scorer judging each candidate's newest audio with `verifier.for_partial_speech()`,
    and a final scorer judging finished candidates whole with `verifier` itself."""
    partial = VerdictScorer(codec, verifier.for_partial_speech(), weights, PARTIAL_WINDOW_SECONDS, PARTIAL_CHECKS)
    return Scorers(partial, VerdictScorer(codec, verifier, weights))
