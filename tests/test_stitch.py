"""Chapter stitching: trimming, exact lengths, click-free joins, loudness and true peak."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from llasa_cli.audio.stitch import (
    TRIM_MARGIN_MS,
    apply_fades,
    assemble_chapter,
    normalize_loudness,
    pause_seconds,
    render_chapter,
    trim_silence,
    true_peak,
)
from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.options import StitchOptions
from llasa_cli.text.plan import MarkedPause, Pause

SR = SAMPLE_RATE
LOUDNESS_TOLERANCE_LU = 0.5
TRUE_PEAK_TOLERANCE_DB = 0.1
JOIN_JUMP_BOUND = 0.02


def speech_like(seconds: float, seed: int, level: float = 0.1) -> np.ndarray:
    """A voiced buzz (harmonics of ~120 Hz) plus breath noise, in ~4 syllables/s with word gaps.

    Its peak-to-loudness ratio (~15 dB) is like narration's.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 110.0 + 20.0 * rng.random()
    voiced = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 25))
    breath = 0.3 * rng.standard_normal(n)
    syllables = np.sin(np.pi * ((4.0 * t + rng.random()) % 1.0)) ** 2
    words = (np.sin(2 * np.pi * 0.7 * t) > -0.6).astype(float)
    return (level * (voiced + breath) * syllables * words).astype(np.float32)


def padded(audio: np.ndarray, before_s: float, after_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * SR)), audio, np.zeros(int(after_s * SR))]).astype(np.float32)


def measured_lufs(audio: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(audio.astype(np.float64)))


def independent_true_peak_db(audio: np.ndarray) -> float:
    up = resample_poly(audio.astype(np.float64), 4, 1)
    return float(20 * np.log10(max(np.max(np.abs(up)), np.max(np.abs(audio)))))


# --- trimming and fades --------------------------------------------------------


def test_trim_silence_keeps_margin() -> None:
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR)).astype(np.float32)
    trimmed = trim_silence(padded(tone, 0.4, 0.7), -45.0)
    margin = int(TRIM_MARGIN_MS * SR / 1000)
    assert abs(len(trimmed) - (len(tone) + 2 * margin)) <= 2


def test_trim_silence_all_quiet_is_empty() -> None:
    assert trim_silence(np.full(SR, 1e-4, dtype=np.float32), -45.0).size == 0
    assert trim_silence(np.zeros(0, dtype=np.float32), -45.0).size == 0


def test_trim_silence_without_silence_is_unchanged() -> None:
    audio = speech_like(1.0, 1) + np.float32(0.05)
    assert len(trim_silence(audio, -45.0)) == len(audio)


def test_fades_reach_zero_at_both_ends() -> None:
    out = apply_fades(np.ones(1000, dtype=np.float32), 160)
    assert out[0] == 0.0 and abs(out[-1]) < 1e-3
    assert np.all(out[160:-160] == 1.0)
    assert apply_fades(np.ones(3, dtype=np.float32), 160).shape == (3,)


# --- assembly --------------------------------------------------------------------


PAUSES = [Pause.SENTENCE, Pause.PARAGRAPH, Pause.TITLE, Pause.SENTENCE, Pause.CHAPTER, Pause.SENTENCE]


def make_pieces() -> list[tuple[np.ndarray, Pause]]:
    return [(padded(speech_like(0.5 + 0.3 * i, i), 0.05 * i, 0.1), pause) for i, pause in enumerate(PAUSES)]


def test_total_length_is_exact() -> None:
    options = StitchOptions(sentence_pause=0.33333, paragraph_pause=0.71, title_pause=1.1, chapter_pause=1.7)
    pieces = make_pieces()
    chapter = assemble_chapter(pieces, options)
    trimmed = sum(len(trim_silence(audio, options.trim_db)) for audio, _ in pieces)
    pauses = [round(pause_seconds(p, options) * SR) for _, p in pieces[:-1]] + [round(options.chapter_pause * SR)]
    assert len(chapter.audio) == round(options.lead_in * SR) + trimmed + sum(pauses)
    assert chapter.audio.dtype == np.float32


def test_offsets_and_pauses() -> None:
    options = StitchOptions()
    pieces = make_pieces()
    chapter = assemble_chapter(pieces, options)
    assert chapter.starts[0] == round(options.lead_in * SR)
    for i, (start, end) in enumerate(zip(chapter.starts, chapter.ends, strict=True)):
        assert end - start == len(trim_silence(pieces[i][0], options.trim_db))
        gap_end = chapter.starts[i + 1] if i + 1 < len(pieces) else len(chapter.audio)
        expected = options.chapter_pause if i == len(pieces) - 1 else pause_seconds(pieces[i][1], options)
        assert gap_end - end == round(expected * SR)
        assert not np.any(chapter.audio[end:gap_end])
    assert not np.any(chapter.audio[: chapter.starts[0]])
    assert chapter.starts[0] / chapter.sample_rate == pytest.approx(options.lead_in)


def test_last_piece_gets_chapter_pause_and_empty_pieces_are_fine() -> None:
    options = StitchOptions(lead_in=0.0, chapter_pause=1.0, sentence_pause=0.2)
    silent = np.zeros(SR, dtype=np.float32)
    chapter = assemble_chapter([(silent, Pause.SENTENCE), (speech_like(1, 3), Pause.SENTENCE)], options)
    assert chapter.starts[0] == chapter.ends[0] == 0
    assert len(chapter.audio) - chapter.ends[1] == SR
    assert len(assemble_chapter([], options).audio) == 0


def test_a_marked_pause_is_as_long_as_it_says() -> None:
    options = StitchOptions(lead_in=0.0, sentence_pause=0.2)
    pieces = [(speech_like(1, 4), MarkedPause(1.5)), (speech_like(1, 5), Pause.SENTENCE)]
    chapter = assemble_chapter(pieces, options)
    assert chapter.starts[1] - chapter.ends[0] == round(1.5 * SR)
    assert pause_seconds(MarkedPause(0.0), options) == 0.0


@pytest.mark.parametrize("sentence_pause", [0.0, 0.3])
def test_joins_have_no_clicks_even_at_full_amplitude(sentence_pause: float) -> None:
    options = StitchOptions(sentence_pause=sentence_pause, lead_in=0.0, chapter_pause=0.0)
    t = np.arange(SR // 2) / SR
    square = np.sign(np.cos(2 * np.pi * 2 * t)).astype(np.float32)  # full scale, edges only mid-piece
    loud_up = np.ones(SR // 2, dtype=np.float32)
    loud_down = -np.ones(SR // 2, dtype=np.float32)
    chapter = assemble_chapter(
        [(loud_up, Pause.SENTENCE), (loud_down, Pause.SENTENCE), (square, Pause.SENTENCE)], options
    )
    audio = np.concatenate([[0.0], chapter.audio, [0.0]])  # the file's edges count as joins too
    fade = round(options.fade_ms * SR / 1000)
    for boundary in (*chapter.starts, *chapter.ends):
        b = boundary + 1
        window = audio[max(0, b - fade - 2) : b + fade + 2]
        assert np.max(np.abs(np.diff(window))) < JOIN_JUMP_BOUND, boundary


def test_without_fades_the_join_test_would_fail() -> None:
    options = StitchOptions(sentence_pause=0.0, lead_in=0.0, chapter_pause=0.0, fade_ms=0.0)
    ones = np.ones(SR // 4, dtype=np.float32)
    chapter = assemble_chapter([(ones, Pause.SENTENCE), (-ones, Pause.SENTENCE)], options)
    assert np.max(np.abs(np.diff(chapter.audio))) > 1.0


# --- loudness ---------------------------------------------------------------------


@pytest.mark.parametrize("target", [-18.0, -20.0, -23.0])
def test_chapter_reaches_loudness_target(target: float) -> None:
    levels = [0.05, 0.06, 0.045, 0.055]  # within 3 dB, like consistent narration
    pieces = [(padded(speech_like(1.5, i, level), 0.1, 0.1), Pause.SENTENCE) for i, level in enumerate(levels)]
    options = StitchOptions(loudness_lufs=target, true_peak_dbtp=-1.0)
    chapter, result = render_chapter(pieces, options)
    assert result is not None and result.normalized and not result.limited
    assert abs(measured_lufs(chapter.audio) - target) < LOUDNESS_TOLERANCE_LU
    assert independent_true_peak_db(chapter.audio) <= options.true_peak_dbtp + TRUE_PEAK_TOLERANCE_DB
    assert chapter.starts == assemble_chapter(pieces, options).starts


def test_true_peak_ceiling_lowers_gain() -> None:
    audio = speech_like(4.0, 7, 0.05)
    audio[SR :: SR // 2] = 0.9  # isolated spikes: high crest factor
    result = normalize_loudness(audio, SR, target_lufs=-12.0, true_peak_dbtp=-1.0)
    assert result.normalized and result.limited
    assert independent_true_peak_db(result.audio) <= -1.0 + TRUE_PEAK_TOLERANCE_DB
    assert result.output_lufs is not None and result.output_lufs < -12.0
    assert abs(measured_lufs(result.audio) - result.output_lufs) < LOUDNESS_TOLERANCE_LU


def test_true_peak_sees_intersample_peaks() -> None:
    # A sine at fs/4 sampled at 45 degrees: samples peak at 0.707 of the true peak.
    n = np.arange(4000)
    audio = np.sin(2 * np.pi * n / 4 + np.pi / 4).astype(np.float32)
    assert np.max(np.abs(audio)) == pytest.approx(0.7071, abs=1e-3)
    assert true_peak(audio, SR) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("audio", [np.zeros(SR, dtype=np.float32), speech_like(0.2, 1)])
def test_too_short_or_silent_is_unchanged(audio: np.ndarray) -> None:
    result = normalize_loudness(audio, SR, -18.0, -1.0)
    assert not result.normalized
    assert np.array_equal(result.audio, audio)


def test_no_normalisation_when_disabled() -> None:
    pieces = [(speech_like(1.0, 2, 0.3), Pause.SENTENCE)]
    chapter, result = render_chapter(pieces, StitchOptions(loudness_lufs=None))
    assert result is None
    assert np.array_equal(chapter.audio, assemble_chapter(pieces, StitchOptions(loudness_lufs=None)).audio)
