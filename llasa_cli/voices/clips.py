"""Reference clips for a narrator voice: is a clip usable, and where to cut one that is too long.

NumPy only: the clip is analysed in short RMS windows.
"""

from __future__ import annotations

import numpy as np

from ..constants import MAX_VOICE_SECONDS, SAMPLE_RATE
from ..errors import VoiceError

# Clip analysis: short RMS windows.
ANALYSIS_WINDOW_S = 0.05
ANALYSIS_HOP_S = 0.01
CUT_SEARCH_SECONDS = 3.0  # look for the quietest window this far back from the limit
CUT_FADE_S = 0.01
SILENT_PEAK_DB = -60.0  # a clip whose loudest window is below this has no signal
SIGNAL_BELOW_LOUDEST_DB = 35.0  # windows within this of the loudest count as signal
MIN_SIGNAL_SECONDS = 1.0
CLIPPED_LEVEL = 0.999
CLIPPED_FRACTION_WARN = 0.001


def _window_rms(audio: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """RMS of `window`-sample windows every `hop` samples; returns (starts, rms)."""
    if len(audio) < window:
        return np.zeros(1, dtype=np.int64), np.array([np.sqrt(np.mean(np.square(audio, dtype=np.float64)))])
    power = np.concatenate(([0.0], np.cumsum(np.square(audio, dtype=np.float64))))
    starts = np.arange(0, len(audio) - window + 1, hop, dtype=np.int64)
    energy = np.maximum(power[starts + window] - power[starts], 0.0)
    return starts, np.sqrt(energy / window)


def cut_at_pause(audio: np.ndarray, max_seconds: float = MAX_VOICE_SECONDS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Shorten a clip longer than `max_seconds` at its quietest 50 ms in the last seconds before the limit.

    The cut falls in the middle of that window (a pause between words, not a word),
    with a 10 ms fade-out. Clips within the limit are returned unchanged.
    """
    audio = np.asarray(audio, dtype=np.float32)
    limit = int(max_seconds * sr)
    if len(audio) <= limit:
        return audio
    window = max(1, int(ANALYSIS_WINDOW_S * sr))
    search_from = max(0, limit - int(CUT_SEARCH_SECONDS * sr))
    region = audio[search_from:limit]
    starts, rms = _window_rms(region, window, max(1, int(ANALYSIS_HOP_S * sr)))
    quietest = int(np.argmin(rms))
    cut = search_from + int(starts[quietest]) + min(window, len(region)) // 2
    out = audio[:cut].copy()
    fade = min(int(CUT_FADE_S * sr), len(out))
    if fade > 0:
        out[len(out) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def check_voice_clip(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[str]:
    """Refuse clips that cannot make a voice; return warnings for usable but poor ones.

    Raises VoiceError for an empty, silent or too short (< 1 s of sound) clip.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise VoiceError("the voice clip is empty: record 5-15 seconds of clear speech")
    if not np.all(np.isfinite(audio)):
        raise VoiceError("the voice clip contains invalid samples (NaN/inf): re-export it as wav or flac")
    _, rms = _window_rms(audio, max(1, int(ANALYSIS_WINDOW_S * sr)), max(1, int(ANALYSIS_HOP_S * sr)))
    with np.errstate(divide="ignore"):
        rms_db = 20.0 * np.log10(rms)
    loudest = float(np.max(rms_db))
    if loudest < SILENT_PEAK_DB:
        raise VoiceError(
            "the voice clip is silent (no signal): check the file and the microphone level, "
            "then record 5-15 seconds of clear speech"
        )
    signal_seconds = float(np.count_nonzero(rms_db >= loudest - SIGNAL_BELOW_LOUDEST_DB)) * ANALYSIS_HOP_S
    if signal_seconds < MIN_SIGNAL_SECONDS:
        raise VoiceError(
            f"the voice clip has only {signal_seconds:.1f} s of sound; it needs at least "
            f"{MIN_SIGNAL_SECONDS:.0f} s (5-15 seconds of clear speech works best)"
        )
    warnings: list[str] = []
    clipped = float(np.mean(np.abs(audio) >= CLIPPED_LEVEL))
    if clipped > CLIPPED_FRACTION_WARN:
        warnings.append(
            f"the voice clip is clipped ({clipped:.1%} of samples at full scale); the voice may sound harsh"
        )
    return warnings
