"""What verification says about a segment, and the protocol every verifier follows.

A `SegmentVerifier` takes a batch of `VerifyItem`s (text + audio) and returns one `Verdict` per
item: passed or not, a score that ranks attempts at one segment (higher is better, 0..1), the
metrics measured, the names of the checks that failed, and the transcript when ASR ran. Retrying
is the caller's: regenerate the failing items with a new seed, verify again, and keep the best
attempt (`best_attempt`). `verdict_checks` lays a verdict out against its thresholds.

NumPy only: nothing here loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..options import VerifyOptions
from . import alignment as al
from . import noise, pace
from . import signal_checks as sc

# Names of the model-based checks, next to those of the signal checks (signal_checks.py), the pace
# (pace.py), the noise estimate (noise.py) and the transcript alignment (alignment.py).
WER = "wer"
CER = "cer"
SPEAKER = "speaker"
SIMILARITY = "similarity"

FAILURE_HELP = {
    sc.EMPTY: "no audible speech",
    sc.TOO_SHORT: "audio too short for its text (early stop or skipped words)",
    sc.TOO_LONG: "audio too long for its text (runaway babble or stalls)",
    sc.LEAD_SILENCE: "long silence before the speech",
    sc.TRAIL_SILENCE: "long silence after the speech",
    sc.INNER_SILENCE: "long pause inside the speech",
    sc.CLIPPING: "clipped samples",
    sc.TOO_QUIET: "speech too quiet",
    sc.HIT_CAP: "generation hit its token cap (runaway)",
    pace.TOO_FAST: "much shorter than the narrator's pace allows (rushed, or words skipped)",
    pace.TOO_SLOW: "much longer than the narrator's pace allows (dragging, stalls or a loop)",
    noise.NOISY: "speech buried in noise",
    WER: "transcript differs from the text",
    CER: "transcript differs from the text",
    al.OMISSION: "a run of words of the text is missing",
    al.LOOP: "a phrase is said again (a loop)",
    al.BABBLE: "words heard after the end of the text",
    SPEAKER: "voice differs from the reference",
}
# Every check that is a rule on the clip (the signal checks, pace, noise, alignment): a verdict's
# score counts the share of these that passed; WER/CER and similarity weigh in as numbers.
RULE_FAILURES = sc.SIGNAL_FAILURES | pace.PACE_FAILURES | {noise.NOISY} | al.ALIGNMENT_FAILURES


@dataclass(frozen=True)
class VerifyItem:
    """One synthesised segment: the text it should say and its 16 kHz mono audio."""

    text: str
    audio: np.ndarray
    hit_cap: bool = False  # generation stopped at max_new_tokens, not at the end-of-speech token
    # Speech in progress (search's partial candidates): seconds spoken so far, of which `audio` is
    # the newest part; None for a whole segment.
    spoken_seconds: float | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float  # higher is better; ranks attempts at one segment
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    failures: tuple[str, ...] = ()
    transcript: str | None = None  # None when ASR did not run

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number finite, failures as a list."""
        return {
            "passed": self.passed,
            "score": round(self.score, 4),
            "failures": list(self.failures),
            "transcript": self.transcript,
            **{name: _json_number(value) for name, value in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Verdict:
        """The verdict `to_dict` wrote (as the job store keeps it): every other number is a metric."""
        return cls(
            passed=bool(stored.get("passed", False)),
            score=float(stored.get("score", 0.0)),
            metrics={k: float(v) for k, v in stored.items() if k not in _VERDICT_FIELDS and _is_number(v)},
            failures=tuple(stored.get("failures", ())),
            transcript=stored.get("transcript"),
        )


class SegmentVerifier(Protocol):
    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]: ...

    def for_partial_speech(self) -> SegmentVerifier:
        """This verifier for speech cut off mid-sentence (search's partial candidates): the same
        models and thresholds, less the checks that need the whole sentence (ASR)."""
        ...


_VERDICT_FIELDS = frozenset({"passed", "score", "failures", "transcript"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_number(value: float) -> float:
    return round(float(np.nan_to_num(value, nan=0.0, posinf=1e9, neginf=-1e9)), 6)


def best_attempt(verdicts: Sequence[Verdict]) -> int:
    """Index of the attempt to keep: a passing one before any failing one, then the highest
    score, then the earliest."""
    if not verdicts:
        raise ValueError("best_attempt needs at least one verdict")
    return max(range(len(verdicts)), key=lambda i: (verdicts[i].passed, verdicts[i].score, -i))


def failure_limits(options: VerifyOptions) -> dict[str, tuple[str, str, float]]:
    """failure name -> (metric, comparison that passes, limit), for messages and reports."""
    return {
        sc.EMPTY: ("voiced_s", ">=", sc.MIN_VOICED_SECONDS),
        sc.TOO_SHORT: ("seconds_per_char", ">=", options.min_seconds_per_char),
        sc.TOO_LONG: ("seconds_per_char", "<=", options.max_seconds_per_char),
        sc.LEAD_SILENCE: ("lead_silence_s", "<=", options.max_lead_silence),
        sc.TRAIL_SILENCE: ("trail_silence_s", "<=", options.max_trail_silence),
        sc.INNER_SILENCE: ("inner_silence_s", "<=", options.max_inner_silence),
        sc.CLIPPING: ("clipping_share", "<=", options.max_clipping),
        sc.TOO_QUIET: ("rms_dbfs", ">=", options.min_rms_dbfs),
        sc.HIT_CAP: ("hit_cap", "<=", 0.0),
        pace.TOO_FAST: (pace.PACE_RATIO, ">=", round(1.0 / options.pace_factor, 4)),
        pace.TOO_SLOW: (pace.PACE_RATIO, "<=", options.pace_factor),
        noise.NOISY: (noise.SNR_DB, ">=", options.min_snr_db),
        WER: (WER, "<=", options.max_wer),
        CER: (CER, "<=", options.max_cer),
        al.OMISSION: (al.OMITTED_WORDS, "<=", float(options.max_omitted_words)),
        al.LOOP: (al.REPEATED_WORDS, "<=", float(options.max_repeated_words)),
        al.BABBLE: (al.WORDS_AFTER_END, "<=", float(options.max_words_after_end)),
        SPEAKER: (SIMILARITY, ">=", options.similarity_threshold),
    }


@dataclass(frozen=True)
class CheckRow:
    """One check that ran on a clip: its metric against the limit that passes."""

    check: str
    metric: str
    value: float
    comparison: str  # ">=" or "<="
    limit: float
    passed: bool

    @property
    def help(self) -> str:
        """What a failure of this check usually means."""
        return FAILURE_HELP[self.check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "metric": self.metric,
            "value": round(self.value, 6),
            "comparison": self.comparison,
            "limit": self.limit,
            "passed": self.passed,
        }


def verdict_checks(verdict: Verdict, options: VerifyOptions) -> list[CheckRow]:
    """One row per check that ran (its metric was measured), in a fixed order."""
    return [
        CheckRow(name, metric, float(verdict.metrics[metric]), comparison, limit, name not in verdict.failures)
        for name, (metric, comparison, limit) in failure_limits(options).items()
        if metric in verdict.metrics
    ]
