"""Options of the verifier-guided search (`--beam`, `--best-of`, `--beam-candidates`,
`--beam-step-seconds`, `--score-weights`): their limits, validation and the search mode they pick.

Split out of search.py, which re-exports every public name here (import from either).
Plain dataclasses: no torch, no numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..constants import CODES_PER_SECOND
from ..errors import InvalidOptionError

MAX_SEARCH_WIDTH = 64  # most beams (--beam) or samples (--best-of) per segment
MAX_BEAM_CANDIDATES = 16  # most children per beam and step
DEFAULT_BEAM_CANDIDATES = 2
DEFAULT_BEAM_STEP_SECONDS = 1.0
MIN_BEAM_STEP_SECONDS = 1.0 / CODES_PER_SECOND  # one token
MAX_BEAM_STEP_SECONDS = 30.0

MODE_PLAIN = "plain"
MODE_BEAM = "beam"
MODE_BEST_OF = "best_of"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidOptionError(message)


@dataclass(frozen=True)
class ScoreWeights:
    """How the final scorer's adapter combines its verifiers (the search itself only sees floats).
    The defaults and `combine` follow verify.py's `combine_score`: a weighted mean, 0..1."""

    asr: float = 0.5  # weight of 1 - min(WER or CER, 1)
    speaker: float = 0.3  # weight of max(cosine similarity to the narrator, 0)
    signal: float = 0.2  # weight of the share of signal checks passed

    def __post_init__(self) -> None:
        for name, value in (("asr", self.asr), ("speaker", self.speaker), ("signal", self.signal)):
            _require(math.isfinite(value) and value >= 0.0, f"--score-weights {name} must be >= 0, not {value}")
        _require(self.asr + self.speaker + self.signal > 0.0, "--score-weights cannot all be 0")

    def combine(self, signal_passed: float, asr_error: float | None, similarity: float | None) -> float:
        """Weighted mean of the parts that ran (None: did not run), higher is better."""
        parts = [(self.signal, signal_passed)]
        if asr_error is not None:
            parts.append((self.asr, 1.0 - min(max(asr_error, 0.0), 1.0)))
        if similarity is not None:
            parts.append((self.speaker, max(similarity, 0.0)))
        total = sum(weight for weight, _ in parts)
        return sum(weight * value for weight, value in parts) / total if total > 0 else 0.0

    @classmethod
    def parse(cls, text: str) -> ScoreWeights:
        """`asr=0.6,speaker=0.4,signal=0` (a part left out keeps its default)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = (x.strip() for x in part.partition("="))
            _require(
                bool(sep) and key in _WEIGHT_NAMES, f"--score-weights expects asr=W,speaker=W,signal=W, not {text!r}"
            )
            try:
                values[key] = float(value)
            except ValueError as exc:
                raise InvalidOptionError(f"--score-weights {key} is not a number: {value!r}") from exc
        return cls(**values)


_WEIGHT_NAMES = ("asr", "speaker", "signal")


@dataclass(frozen=True)
class SearchOptions:
    """Inference-time search per segment. beam = best_of = 1 is plain sampling."""

    beam: int = 1  # N beams (--beam)
    best_of: int = 1  # N complete samples ranked by the final scorer (--best-of)
    beam_candidates: int = DEFAULT_BEAM_CANDIDATES  # M children per beam and step (--beam-candidates)
    beam_step_seconds: float = DEFAULT_BEAM_STEP_SECONDS  # S: speech per step (--beam-step-seconds)
    score_weights: ScoreWeights = field(default_factory=ScoreWeights)

    def __post_init__(self) -> None:
        for flag, value in (("--beam", self.beam), ("--best-of", self.best_of)):
            _require(1 <= value <= MAX_SEARCH_WIDTH, f"{flag} must be between 1 and {MAX_SEARCH_WIDTH}, not {value}")
        _require(not (self.beam > 1 and self.best_of > 1), "--beam and --best-of cannot be used together")
        _require(
            1 <= self.beam_candidates <= MAX_BEAM_CANDIDATES,
            f"--beam-candidates must be between 1 and {MAX_BEAM_CANDIDATES}, not {self.beam_candidates}",
        )
        _require(
            MIN_BEAM_STEP_SECONDS <= self.beam_step_seconds <= MAX_BEAM_STEP_SECONDS,
            f"--beam-step-seconds must be between {MIN_BEAM_STEP_SECONDS} and {MAX_BEAM_STEP_SECONDS}, "
            f"not {self.beam_step_seconds}",
        )
        _require(isinstance(self.score_weights, ScoreWeights), "--score-weights must be ScoreWeights")

    @property
    def mode(self) -> str:
        if self.beam > 1:
            return MODE_BEAM
        return MODE_BEST_OF if self.best_of > 1 else MODE_PLAIN

    @property
    def width(self) -> int:
        """N: beams or samples per segment (1 for plain sampling)."""
        return max(self.beam, self.best_of)

    @property
    def step_tokens(self) -> int:
        """S: tokens per beam step."""
        return max(1, round(self.beam_step_seconds * CODES_PER_SECOND))
