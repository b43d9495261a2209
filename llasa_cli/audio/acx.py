"""ACX (Audible) audio rules: measure a chapter file, and master one to pass.

Measurements (NumPy only, on mono float audio; levels in dBFS where a full-scale
square wave is 0 dB, i.e. 20*log10 of the linear value):
- RMS: unweighted RMS of the whole file (as ACX measures it). Rule: -23 to -18 dBFS.
- peak: the largest absolute sample value. Rule: at most -3 dBFS.
- noise floor: RMS of the quietest 0.5 s window, windows stepped every 50 ms
  (the approach of Audacity's ACX Check). Digital silence measures -inf and passes.
  Rule: at most -60 dBFS.
- room tone: leading and trailing silence, the time before the first and after the
  last 20 ms frame whose RMS is above -50 dBFS. Rules: 0.5-1 s at the start, 1-5 s
  at the end.

`acx_master` makes audio compliant: DC removed, gain towards -20 dBFS RMS, a
look-ahead peak limiter at -3.5 dBFS (smooth gain reduction, no clipping), a
silence gate (20 ms frames below -55 dBFS, more than 150 ms from sound, are
lowered by 60 dB with 10 ms ramps), then room tone cut or padded with digital
silence to 0.75 s at the start and 2 s at the end. The gain is refined a few times
because the limiter and the padding change the final RMS.

Not checked: ACX's file format rules (192 kb/s CBR MP3, 44.1 kHz), the 120 min
per-file limit, and listening qualities (mouth noise, plosives, consistency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RMS_MIN_DB, RMS_MAX_DB = -23.0, -18.0
PEAK_MAX_DB = -3.0
NOISE_FLOOR_MAX_DB = -60.0
LEAD_MIN_S, LEAD_MAX_S = 0.5, 1.0
TAIL_MIN_S, TAIL_MAX_S = 1.0, 5.0

NOISE_WINDOW_S = 0.5
NOISE_HOP_S = 0.05
SILENCE_FRAME_S = 0.02
SILENCE_THRESHOLD_DB = -50.0

MASTER_RMS_DB = -20.0
MASTER_PEAK_DB = -3.5
MASTER_LEAD_S = 0.75
MASTER_TAIL_S = 2.0
MASTER_ITERATIONS = 6
MASTER_TOLERANCE_DB = 0.1
MAX_MASTER_GAIN_DB = 60.0
LIMITER_WINDOW_S = 0.005  # look-ahead and release of the limiter's gain curve
LIMITER_CHUNK_SAMPLES = 1 << 20
GATE_FRAME_S = 0.02
GATE_THRESHOLD_DB = -55.0
GATE_HOLD_S = 0.15
GATE_DEPTH_DB = 60.0
GATE_RAMP_S = 0.01
TINY = 1e-12


@dataclass(frozen=True)
class AcxRule:
    """One ACX rule: what was measured, the allowed range, and the verdict."""

    name: str
    value: float
    minimum: float | None
    maximum: float | None
    unit: str

    @property
    def passed(self) -> bool:
        low_ok = self.minimum is None or self.value >= self.minimum
        return low_ok and (self.maximum is None or self.value <= self.maximum)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _json_number(self.value),
            "min": self.minimum,
            "max": self.maximum,
            "unit": self.unit,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class AcxReport:
    """ACX measurements of one file (see the module doc) and a verdict per rule."""

    duration_s: float
    rms_db: float
    peak_db: float
    noise_floor_db: float
    leading_silence_s: float
    trailing_silence_s: float

    @property
    def rules(self) -> tuple[AcxRule, ...]:
        return (
            AcxRule("rms", self.rms_db, RMS_MIN_DB, RMS_MAX_DB, "dBFS"),
            AcxRule("peak", self.peak_db, None, PEAK_MAX_DB, "dBFS"),
            AcxRule("noise_floor", self.noise_floor_db, None, NOISE_FLOOR_MAX_DB, "dBFS"),
            AcxRule("room_tone_start", self.leading_silence_s, LEAD_MIN_S, LEAD_MAX_S, "s"),
            AcxRule("room_tone_end", self.trailing_silence_s, TAIL_MIN_S, TAIL_MAX_S, "s"),
        )

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules if not rule.passed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: -inf levels (digital silence) become null."""
        return {
            "duration_s": round(self.duration_s, 3),
            "passed": self.passed,
            "rules": [rule.to_dict() for rule in self.rules],
        }


def _json_number(value: float) -> float | None:
    return round(value, 2) if np.isfinite(value) else None


def to_db(amplitude: float) -> float:
    """20*log10 of a linear level; -inf for 0."""
    return float(20.0 * np.log10(amplitude)) if amplitude > 0.0 else float("-inf")


def from_db(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _clean(audio: np.ndarray) -> np.ndarray:
    data = np.asarray(audio, dtype=np.float64).reshape(-1)
    return np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)


def rms_db(audio: np.ndarray) -> float:
    data = _clean(audio)
    return to_db(float(np.sqrt(np.mean(data * data)))) if data.size else float("-inf")


def peak_db(audio: np.ndarray) -> float:
    data = _clean(audio)
    return to_db(float(np.max(np.abs(data)))) if data.size else float("-inf")


def noise_floor_db(audio: np.ndarray, sr: int) -> float:
    """RMS (dBFS) of the quietest NOISE_WINDOW_S window, stepped every NOISE_HOP_S."""
    data = _clean(audio)
    if data.size == 0:
        return float("-inf")
    window = min(len(data), max(1, round(NOISE_WINDOW_S * sr)))
    hop = max(1, round(NOISE_HOP_S * sr))
    energy = np.concatenate(([0.0], np.cumsum(data * data)))
    starts = np.arange(0, len(data) - window + 1, hop)
    sums = np.maximum(energy[starts + window] - energy[starts], 0.0)
    return to_db(float(np.sqrt(np.min(sums) / window)))


def frame_rms_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS in dBFS of consecutive frames of `frame` samples (the last one may be shorter)."""
    data = _clean(audio)
    count = -(-len(data) // frame)
    padded = np.zeros(count * frame)
    padded[: len(data)] = data
    lengths = np.full(count, frame, dtype=np.float64)
    if count:
        lengths[-1] = len(data) - (count - 1) * frame
    power = (padded.reshape(count, frame) ** 2).sum(axis=1) / lengths
    return 10.0 * np.log10(np.maximum(power, TINY))


def sound_bounds(audio: np.ndarray, sr: int, threshold_db: float = SILENCE_THRESHOLD_DB) -> tuple[int, int] | None:
    """(first, last+1) sample of the frames louder than `threshold_db`; None when all is silence."""
    frame = max(1, round(SILENCE_FRAME_S * sr))
    loud = np.flatnonzero(frame_rms_db(audio, frame) > threshold_db)
    if loud.size == 0:
        return None
    return int(loud[0]) * frame, min(len(audio), (int(loud[-1]) + 1) * frame)


def check_acx(audio: np.ndarray, sr: int) -> AcxReport:
    """Measure `audio` (mono, any rate) against the ACX rules."""
    data = _clean(audio)
    duration = len(data) / sr
    bounds = sound_bounds(data, sr)
    lead, tail = (duration, duration) if bounds is None else (bounds[0] / sr, (len(data) - bounds[1]) / sr)
    return AcxReport(
        duration_s=duration,
        rms_db=rms_db(data),
        peak_db=peak_db(data),
        noise_floor_db=noise_floor_db(data, sr),
        leading_silence_s=lead,
        trailing_silence_s=tail,
    )


def running_min(values: np.ndarray, half_width: int) -> np.ndarray:
    """Minimum over [i - half_width, i + half_width] for every i (van Herk/Gil-Werman, O(n))."""
    values = np.asarray(values, dtype=np.float64)
    size = 2 * half_width + 1
    if half_width <= 0 or values.size == 0:
        return values.copy()
    padded = np.concatenate((np.full(half_width, np.inf), values, np.full(half_width, np.inf)))
    blocks = -(-len(padded) // size)
    full = np.full(blocks * size, np.inf)
    full[: len(padded)] = padded
    shaped = full.reshape(blocks, size)
    prefix = np.minimum.accumulate(shaped, axis=1).reshape(-1)
    suffix = np.minimum.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    # Window [j, j + size - 1] in `full` = min(suffix[j], prefix[j + size - 1]).
    starts = np.arange(len(values))
    return np.minimum(suffix[starts], prefix[starts + size - 1])


def moving_average(values: np.ndarray, half_width: int) -> np.ndarray:
    """Centred moving average over 2*half_width+1 samples (edges padded with the edge value)."""
    if half_width <= 0 or values.size == 0:
        return np.asarray(values, dtype=np.float64).copy()
    padded = np.pad(np.asarray(values, dtype=np.float64), half_width, mode="edge")
    sums = np.concatenate(([0.0], np.cumsum(padded)))
    size = 2 * half_width + 1
    return (sums[size:] - sums[:-size]) / size


def limit_peaks(audio: np.ndarray, sr: int, ceiling_db: float = MASTER_PEAK_DB) -> np.ndarray:
    """Look-ahead peak limiter: a smooth gain curve that keeps every sample under `ceiling_db`.

    The needed gain is min-filtered then averaged over the same window, so the
    curve never exceeds the needed gain anywhere and ramps down before a peak.
    Worked in chunks (with overlap) so memory stays bounded on long files.
    """
    data = _clean(audio)
    ceiling = from_db(ceiling_db)
    if data.size == 0 or float(np.max(np.abs(data))) <= ceiling:
        return data
    half = max(1, round(LIMITER_WINDOW_S * sr))
    reach = 2 * half  # how far one sample's gain depends on its neighbours
    out = np.empty_like(data)
    for begin in range(0, len(data), LIMITER_CHUNK_SAMPLES):
        end = min(len(data), begin + LIMITER_CHUNK_SAMPLES)
        lo, hi = max(0, begin - reach), min(len(data), end + reach)
        needed = np.minimum(1.0, ceiling / np.maximum(np.abs(data[lo:hi]), TINY))
        gain = moving_average(running_min(needed, half), half)
        out[begin:end] = data[begin:end] * gain[begin - lo : end - lo]
    return np.clip(out, -ceiling, ceiling)


def gate_silence(audio: np.ndarray, sr: int) -> np.ndarray:
    """Lower by GATE_DEPTH_DB the stretches quieter than GATE_THRESHOLD_DB away from any sound."""
    data = _clean(audio)
    frame = max(1, round(GATE_FRAME_S * sr))
    levels = frame_rms_db(data, frame)
    if levels.size == 0:
        return data
    hold = round(GATE_HOLD_S / GATE_FRAME_S)
    closed = running_min((levels <= GATE_THRESHOLD_DB).astype(np.float64), hold)
    frame_gain = np.where(closed > 0.5, from_db(-GATE_DEPTH_DB), 1.0)
    gain = np.repeat(frame_gain, frame)[: len(data)]
    return data * moving_average(gain, max(1, round(GATE_RAMP_S * sr / 2)))


def _fit_room_tone(audio: np.ndarray, sr: int, lead_s: float, tail_s: float) -> np.ndarray:
    bounds = sound_bounds(audio, sr)
    body = audio[:0] if bounds is None else audio[bounds[0] : bounds[1]]
    return np.concatenate((np.zeros(round(lead_s * sr)), body, np.zeros(round(tail_s * sr))))


def _master_once(data: np.ndarray, sr: int, gain_db: float) -> np.ndarray:
    limited = limit_peaks(data * from_db(gain_db), sr)
    return _fit_room_tone(gate_silence(limited, sr), sr, MASTER_LEAD_S, MASTER_TAIL_S)


def acx_master(audio: np.ndarray, sr: int) -> np.ndarray:
    """A version of `audio` that meets the ACX rules (see the module doc); float32 mono.

    Silent (or empty) audio comes back as room tone only, which still fails the RMS rule.
    """
    data = _clean(audio)
    if data.size:
        data = data - float(np.mean(data))
    if not np.any(data):
        return _fit_room_tone(data, sr, MASTER_LEAD_S, MASTER_TAIL_S).astype(np.float32)
    gain_db = min(MAX_MASTER_GAIN_DB, MASTER_RMS_DB - rms_db(data))
    result = _master_once(data, sr, gain_db)
    for _ in range(MASTER_ITERATIONS):
        error = MASTER_RMS_DB - rms_db(result)
        if abs(error) <= MASTER_TOLERANCE_DB or gain_db >= MAX_MASTER_GAIN_DB:
            break
        gain_db = min(MAX_MASTER_GAIN_DB, gain_db + error)
        result = _master_once(data, sr, gain_db)
    return result.astype(np.float32)
