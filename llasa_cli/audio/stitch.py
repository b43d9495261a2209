"""Segment audio -> one chapter: trim, fade, pause, then loudness-normalise.

NumPy only. Every piece is trimmed of leading/trailing silence, faded in and out with
a short raised-cosine ramp (so joins never click, even when a piece starts or ends at
full amplitude) and followed by the silence its `Pause` asks for. The sample offsets
of every piece are kept so subtitles and timing can be derived later.

Loudness: integrated loudness (ITU-R BS.1770-4, via pyloudnorm) is brought to a
target, then a true-peak ceiling is enforced by measuring the 4x-oversampled peak
(soxr) and, if it is over the ceiling, lowering the whole chapter's gain. That
"limiter" is a plain gain reduction, not a dynamic limiter: a chapter with a single
loud spike ends up quieter than the loudness target (the result reports by how much).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr

from ..constants import SAMPLE_RATE
from ..options import StitchOptions
from ..text.plan import MarkedPause, Pause

# Audio kept either side of the detected sound when trimming, so soft onsets and
# decays are not clipped and the fade runs mostly over near-silence.
TRIM_MARGIN_MS = 25.0
# BS.1770 gating block: pyloudnorm cannot measure anything shorter.
LOUDNESS_BLOCK_SECONDS = 0.4
# True peak: measured on a 4x oversampled signal (BS.1770-4 Annex 2), in chunks.
TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_CHUNK_SAMPLES = 1 << 20
# Headroom kept under the true-peak ceiling, absorbing float32 rounding.
TRUE_PEAK_SAFETY_DB = 0.01
MS_PER_SECOND = 1000.0


@dataclass(frozen=True)
class ChapterAudio:
    """A stitched chapter: its audio and where each piece (segment) starts and ends, in samples."""

    audio: np.ndarray
    sample_rate: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class LoudnessResult:
    """Outcome of `normalize_loudness`.

    `normalized` is False when the audio was too short or too quiet to measure; the
    audio is then returned unchanged. `limited` is True when the true-peak ceiling
    forced the gain down (so `output_lufs` is below the target).
    """

    audio: np.ndarray
    normalized: bool
    input_lufs: float | None = None
    output_lufs: float | None = None
    gain_db: float = 0.0
    true_peak_dbtp: float | None = None
    limited: bool = False


def _db_to_amplitude(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _amplitude_to_db(amplitude: float) -> float:
    return float(20.0 * np.log10(amplitude)) if amplitude > 0.0 else float("-inf")


def _ms_to_samples(ms: float, sr: int) -> int:
    return int(round(ms * sr / MS_PER_SECOND))


def _seconds_to_samples(seconds: float, sr: int) -> int:
    return int(round(seconds * sr))


def trim_silence(
    audio: np.ndarray, threshold_db: float, sr: int = SAMPLE_RATE, margin_ms: float = TRIM_MARGIN_MS
) -> np.ndarray:
    """Cut leading and trailing audio quieter than `threshold_db` dBFS, keeping `margin_ms` either side.

    Returns a float32 view/copy; all-silent (or empty) audio gives an empty array.
    """
    audio = np.asarray(audio, dtype=np.float32)
    loud = np.flatnonzero(np.abs(audio) > _db_to_amplitude(threshold_db))
    if loud.size == 0:
        return audio[:0]
    margin = _ms_to_samples(margin_ms, sr)
    start = max(0, int(loud[0]) - margin)
    stop = min(len(audio), int(loud[-1]) + 1 + margin)
    return audio[start:stop]


def apply_fades(audio: np.ndarray, fade_samples: int) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of `fade_samples` each (shortened for short audio).

    The first and last samples end up exactly at zero, so butt joins are click-free.
    """
    out = np.array(audio, dtype=np.float32, copy=True)
    n = min(int(fade_samples), len(out) // 2)
    if n <= 0:
        return out
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return out


def pause_seconds(pause: Pause | MarkedPause, options: StitchOptions) -> float:
    """The silence (seconds) that follows a piece ending with `pause` (a marked one is as long as it says)."""
    if isinstance(pause, MarkedPause):
        return pause.seconds
    return {
        Pause.SENTENCE: options.sentence_pause,
        Pause.PARAGRAPH: options.paragraph_pause,
        Pause.TITLE: options.title_pause,
        Pause.CHAPTER: options.chapter_pause,
    }[Pause(pause)]


def assemble_chapter(
    pieces: Sequence[tuple[np.ndarray, Pause | MarkedPause]], options: StitchOptions, sr: int = SAMPLE_RATE
) -> ChapterAudio:
    """Lead-in silence, then each trimmed and faded piece followed by its pause.

    The last piece is always followed by `options.chapter_pause`. The length is exactly
    lead_in + sum(trimmed pieces) + sum(pauses), in samples (each duration rounded to
    whole samples on its own). No loudness processing happens here.
    """
    fade = _ms_to_samples(options.fade_ms, sr)
    trimmed = [apply_fades(trim_silence(audio, options.trim_db, sr), fade) for audio, _ in pieces]
    pauses = [_seconds_to_samples(pause_seconds(pause, options), sr) for _, pause in pieces]
    if pauses:
        pauses[-1] = _seconds_to_samples(options.chapter_pause, sr)
    lead_in = _seconds_to_samples(options.lead_in, sr)
    total = lead_in + sum(len(t) for t in trimmed) + sum(pauses)
    out = np.zeros(total, dtype=np.float32)
    starts: list[int] = []
    ends: list[int] = []
    pos = lead_in
    for piece, pause in zip(trimmed, pauses, strict=True):
        starts.append(pos)
        out[pos : pos + len(piece)] = piece
        pos += len(piece)
        ends.append(pos)
        pos += pause
    return ChapterAudio(audio=out, sample_rate=sr, starts=tuple(starts), ends=tuple(ends))


def true_peak(audio: np.ndarray, sr: int) -> float:
    """Linear true peak: the max |sample| of the signal oversampled 4x with soxr (chunked)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        return 0.0
    peak = float(np.max(np.abs(audio)))
    stream = soxr.ResampleStream(sr, sr * TRUE_PEAK_OVERSAMPLING, 1, dtype="float32", quality="HQ")
    for begin in range(0, len(audio), TRUE_PEAK_CHUNK_SAMPLES):
        chunk = audio[begin : begin + TRUE_PEAK_CHUNK_SAMPLES]
        last = begin + TRUE_PEAK_CHUNK_SAMPLES >= len(audio)
        up = stream.resample_chunk(chunk, last=last)
        if up.size:
            peak = max(peak, float(np.max(np.abs(up))))
    return peak


def integrated_loudness(audio: np.ndarray, sr: int) -> float | None:
    """BS.1770-4 integrated loudness in LUFS; None when too short or too quiet to measure."""
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < LOUDNESS_BLOCK_SECONDS * sr or not np.any(audio):
        return None
    import pyloudnorm  # imports scipy.signal: most of a second, paid only when a chapter is levelled

    loudness = float(pyloudnorm.Meter(sr, block_size=LOUDNESS_BLOCK_SECONDS).integrated_loudness(audio))
    return loudness if np.isfinite(loudness) else None


def normalize_loudness(audio: np.ndarray, sr: int, target_lufs: float, true_peak_dbtp: float) -> LoudnessResult:
    """Gain `audio` to `target_lufs` integrated loudness, then cap its true peak at `true_peak_dbtp`.

    The cap is a simple whole-signal gain reduction (no dynamic limiting). Audio that is
    too short (< 0.4 s) or silent comes back unchanged with `normalized=False`.
    """
    audio = np.asarray(audio, dtype=np.float32)
    measured = integrated_loudness(audio, sr)
    if measured is None:
        return LoudnessResult(audio=audio, normalized=False)
    gain_db = target_lufs - measured
    peak_db = _amplitude_to_db(true_peak(audio, sr)) + gain_db
    ceiling_db = true_peak_dbtp - TRUE_PEAK_SAFETY_DB
    limited = peak_db > ceiling_db
    if limited:
        gain_db -= peak_db - ceiling_db
        peak_db = ceiling_db
    out = (audio.astype(np.float64) * _db_to_amplitude(gain_db)).astype(np.float32)
    return LoudnessResult(
        audio=out,
        normalized=True,
        input_lufs=measured,
        output_lufs=measured + gain_db,
        gain_db=gain_db,
        true_peak_dbtp=peak_db,
        limited=limited,
    )


def render_chapter(
    pieces: Sequence[tuple[np.ndarray, Pause | MarkedPause]], options: StitchOptions, sr: int = SAMPLE_RATE
) -> tuple[ChapterAudio, LoudnessResult | None]:
    """`assemble_chapter`, then `normalize_loudness` when `options.loudness_lufs` is set.

    Gain does not move samples, so the piece offsets stay valid. Returns the final
    chapter and the loudness outcome (None when normalisation is off).
    """
    chapter = assemble_chapter(pieces, options, sr)
    if options.loudness_lufs is None:
        return chapter, None
    result = normalize_loudness(chapter.audio, sr, options.loudness_lufs, options.true_peak_dbtp)
    final = ChapterAudio(audio=result.audio, sample_rate=sr, starts=chapter.starts, ends=chapter.ends)
    return final, result
