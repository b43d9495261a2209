"""Model-free checks of one synthesised segment: NumPy only, milliseconds per segment.

The audio is cut into 20 ms frames and each frame's RMS level taken in dBFS. A frame is voiced
when it is louder than both an absolute floor (SILENCE_FLOOR_DBFS) and the loudest frame less
SILENCE_BELOW_PEAK_DB, so the split follows the clip's own level. From that:

| check | metric | fails when |
|---|---|---|
| `empty` | `voiced_s` (first to last voiced frame) | under MIN_VOICED_SECONDS: no audio, or only silence |
| `too_short` | `seconds_per_char` | below `min_seconds_per_char` (early stop, skipped words) |
| `too_long` | `seconds_per_char` | above `max_seconds_per_char` (runaway babble, stalls) |
| `lead_silence` / `trail_silence` | `lead_silence_s` / `trail_silence_s` | above the limit |
| `inner_silence` | `inner_silence_s` (longest pause inside) | above the limit |
| `clipping` | `clipping_share` (samples at full scale) | above `max_clipping` |
| `too_quiet` | `rms_dbfs` (RMS of the voiced frames) | below `min_rms_dbfs` |
| `hit_cap` | `hit_cap` (1 or 0) | generation stopped at its token cap (runaway) |

Speech rate is seconds per character of text, CJK characters weighted as several Latin ones
(they take CHARS_PER_SECOND / CJK_CHARS_PER_SECOND times longer to say). The rate band is widened
by RATE_SLACK_SECONDS so a short title is not judged on a fraction of a second. Levels of silence
are floored at DB_FLOOR so every metric is a finite number (JSON has no -inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import CHARS_PER_SECOND, SAMPLE_RATE
from ..options import VerifyOptions
from ..text.planner import estimate_seconds

FRAME_SECONDS = 0.02
DB_FLOOR = -120.0
SILENCE_FLOOR_DBFS = -60.0
SILENCE_BELOW_PEAK_DB = 35.0
CLIP_LEVEL = 0.999
MIN_VOICED_SECONDS = 0.1
RATE_SLACK_SECONDS = 0.25

EMPTY = "empty"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LEAD_SILENCE = "lead_silence"
TRAIL_SILENCE = "trail_silence"
INNER_SILENCE = "inner_silence"
CLIPPING = "clipping"
TOO_QUIET = "too_quiet"
HIT_CAP = "hit_cap"
# Every failure a signal check can report; the rest come from ASR or the speaker check.
SIGNAL_FAILURES = frozenset(
    {EMPTY, TOO_SHORT, TOO_LONG, LEAD_SILENCE, TRAIL_SILENCE, INNER_SILENCE, CLIPPING, TOO_QUIET, HIT_CAP}
)


@dataclass(frozen=True)
class CheckResult:
    name: str  # the failure name when it fails
    metric: str  # key of the value in SignalReport.metrics
    value: float
    limit: float
    passed: bool


@dataclass(frozen=True)
class SignalReport:
    metrics: dict[str, float]
    checks: tuple[CheckResult, ...]

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if not check.passed)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class SilenceProfile:
    duration_s: float
    voiced_s: float  # first voiced frame to last, pauses included
    lead_s: float
    trail_s: float
    inner_s: float  # longest run of silent frames between voiced ones
    voiced_rms_dbfs: float


def to_dbfs(rms: np.ndarray | float) -> np.ndarray:
    """RMS amplitude (full scale 1.0) in dBFS, floored at DB_FLOOR."""
    value = np.maximum(np.asarray(rms, dtype=np.float64), 10 ** (DB_FLOOR / 20))
    return 20.0 * np.log10(value)


def frame_rms(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RMS of consecutive FRAME_SECONDS frames (the last, partial frame included)."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    frame = max(1, round(FRAME_SECONDS * sr))
    count = -(-audio.size // frame)
    padded = np.zeros(count * frame)
    padded[: audio.size] = audio
    squares = (padded**2).reshape(count, frame).sum(axis=1)
    lengths = np.full(count, frame, dtype=np.float64)
    if count and audio.size % frame:
        lengths[-1] = audio.size % frame
    return np.sqrt(squares / lengths)


def voiced_frames(levels_db: np.ndarray) -> np.ndarray:
    """Boolean mask of frames above the clip's silence threshold."""
    if levels_db.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(SILENCE_FLOOR_DBFS, float(levels_db.max()) - SILENCE_BELOW_PEAK_DB)
    return levels_db > threshold


def silence_profile(audio: np.ndarray, sr: int = SAMPLE_RATE) -> SilenceProfile:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / sr
    rms = frame_rms(audio, sr)
    voiced = voiced_frames(to_dbfs(rms))
    if not voiced.any():
        return SilenceProfile(duration, 0.0, duration, 0.0, 0.0, DB_FLOOR)
    frame = FRAME_SECONDS
    indices = np.flatnonzero(voiced)
    first, last = int(indices[0]), int(indices[-1])
    gaps = np.diff(indices) - 1
    voiced_rms = float(np.sqrt(np.mean(rms[voiced] ** 2)))
    return SilenceProfile(
        duration_s=duration,
        voiced_s=min(duration, (last - first + 1) * frame),
        lead_s=first * frame,
        trail_s=max(0.0, duration - (last + 1) * frame),
        inner_s=float(gaps.max()) * frame if gaps.size else 0.0,
        voiced_rms_dbfs=float(to_dbfs(voiced_rms)),
    )


def clipping_share(audio: np.ndarray) -> float:
    audio = np.asarray(audio).reshape(-1)
    if audio.size == 0:
        return 0.0
    return float(np.mean(np.abs(audio) >= CLIP_LEVEL))


def text_chars(text: str) -> float:
    """Characters of text in Latin-character equivalents (CJK characters weigh more)."""
    return estimate_seconds(" ".join(text.split())) * CHARS_PER_SECOND


def speech_rate_check(voiced_s: float, text: str, options: VerifyOptions) -> tuple[float, CheckResult, CheckResult]:
    """(seconds per character, too_short check, too_long check)."""
    chars = max(text_chars(text), 1.0)
    rate = voiced_s / chars
    low = chars * options.min_seconds_per_char - RATE_SLACK_SECONDS
    high = chars * options.max_seconds_per_char + RATE_SLACK_SECONDS
    metric = "seconds_per_char"
    return (
        rate,
        CheckResult(TOO_SHORT, metric, rate, options.min_seconds_per_char, voiced_s >= low),
        CheckResult(TOO_LONG, metric, rate, options.max_seconds_per_char, voiced_s <= high),
    )


def check_signal(
    audio: np.ndarray, text: str, options: VerifyOptions, hit_cap: bool = False, sr: int = SAMPLE_RATE
) -> SignalReport:
    """Every model-free check of one segment against `options`' thresholds."""
    profile = silence_profile(audio, sr)
    rate, too_short, too_long = speech_rate_check(profile.voiced_s, text, options)
    clipped = clipping_share(audio)
    metrics = {
        "duration_s": profile.duration_s,
        "voiced_s": profile.voiced_s,
        "seconds_per_char": rate,
        "lead_silence_s": profile.lead_s,
        "trail_silence_s": profile.trail_s,
        "inner_silence_s": profile.inner_s,
        "clipping_share": clipped,
        "rms_dbfs": profile.voiced_rms_dbfs,
        "hit_cap": float(hit_cap),
    }
    checks = (
        CheckResult(EMPTY, "voiced_s", profile.voiced_s, MIN_VOICED_SECONDS, profile.voiced_s >= MIN_VOICED_SECONDS),
        too_short,
        too_long,
        _at_most(LEAD_SILENCE, "lead_silence_s", profile.lead_s, options.max_lead_silence),
        _at_most(TRAIL_SILENCE, "trail_silence_s", profile.trail_s, options.max_trail_silence),
        _at_most(INNER_SILENCE, "inner_silence_s", profile.inner_s, options.max_inner_silence),
        _at_most(CLIPPING, "clipping_share", clipped, options.max_clipping),
        CheckResult(TOO_QUIET, "rms_dbfs", profile.voiced_rms_dbfs, options.min_rms_dbfs,
                    profile.voiced_rms_dbfs >= options.min_rms_dbfs),
        CheckResult(HIT_CAP, "hit_cap", float(hit_cap), 0.0, not hit_cap),
    )  # fmt: skip
    return SignalReport(metrics=metrics, checks=checks)


def _at_most(name: str, metric: str, value: float, limit: float) -> CheckResult:
    return CheckResult(name, metric, value, limit, value <= limit)
