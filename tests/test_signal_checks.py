"""Model-free segment checks on synthetic audio."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.options import VerifyOptions
from llasa_cli.verify import signal_checks as sc

OPTIONS = VerifyOptions()
TEXT = "The quick brown fox jumps over the lazy dog and runs away."  # 58 characters, about 3.9 s


def tone(seconds: float, amplitude: float = 0.3, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def speechlike(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """Tone bursts of 0.3 s with 0.1 s gaps: voiced throughout at the check's resolution, short pauses."""
    out = []
    while sum(len(x) for x in out) < seconds * SAMPLE_RATE:
        out += [tone(0.3, amplitude), silence(0.1)]
    return np.concatenate(out)[: int(seconds * SAMPLE_RATE)]


def failures(audio: np.ndarray, text: str = TEXT, hit_cap: bool = False, options: VerifyOptions = OPTIONS):
    return set(sc.check_signal(audio, text, options, hit_cap).failures)


def test_normal_segment_passes_every_check():
    audio = np.concatenate([silence(0.2), speechlike(3.9), silence(0.3)])
    report = sc.check_signal(audio, TEXT, OPTIONS)
    assert report.passed, report.failures
    assert report.metrics["lead_silence_s"] == pytest.approx(0.2, abs=0.021)
    assert report.metrics["trail_silence_s"] == pytest.approx(0.3, abs=0.021)
    assert report.metrics["seconds_per_char"] == pytest.approx(3.9 / 58, rel=0.05)
    assert report.metrics["rms_dbfs"] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)
    assert report.metrics["hit_cap"] == 0.0
    assert {c.name for c in report.checks} == {
        "empty", "too_short", "too_long", "lead_silence", "trail_silence", "inner_silence", "clipping",
        "too_quiet", "hit_cap",
    }  # fmt: skip


def test_empty_and_silent_audio():
    assert {"empty", "too_short", "too_quiet"} <= failures(np.zeros(0, dtype=np.float32))
    assert {"empty", "too_short", "too_quiet", "lead_silence"} <= failures(silence(3.0))
    report = sc.check_signal(silence(3.0), TEXT, OPTIONS)
    assert report.metrics["rms_dbfs"] == sc.DB_FLOOR  # finite, for JSON


def test_early_stop_is_too_short_and_babble_is_too_long():
    assert failures(speechlike(1.0)) == {"too_short"}  # 58 characters in 1 s: 0.017 s/char
    assert failures(speechlike(14.0)) == {"too_long"}  # 0.24 s/char
    assert failures(speechlike(3.9)) == set()


def test_rate_band_has_slack_for_short_titles():
    # "Chapter One." is 12 characters: 0.35 s is below 12 * 0.035 = 0.42 s but within the 0.25 s slack.
    assert "too_short" not in failures(speechlike(0.35), "Chapter One.")
    assert "too_short" in failures(speechlike(0.1), "Chapter One.")


def test_chinese_characters_weigh_more_in_the_rate():
    text = "今天天气很好我们去公园散步吧"  # 14 characters, about 3.1 s at 4.5 per second
    assert sc.text_chars(text) == pytest.approx(14 * 15.0 / 4.5)
    assert failures(speechlike(3.1), text) == set()
    assert "too_short" in failures(speechlike(0.6), text)


def test_lead_trail_and_inner_silence_limits():
    body = speechlike(3.9)
    assert failures(np.concatenate([silence(2.0), body])) == {"lead_silence"}
    assert failures(np.concatenate([body, silence(2.0)])) == {"trail_silence"}
    inner = np.concatenate([speechlike(2.0), silence(2.5), speechlike(1.9)])
    report = sc.check_signal(inner, TEXT, OPTIONS)
    assert report.failures == ("inner_silence",)
    assert report.metrics["inner_silence_s"] == pytest.approx(2.6, abs=0.03)  # speechlike(2.0) ends in a 0.1 s gap


def test_quiet_low_level_noise_counts_as_silence():
    floor = (np.random.default_rng(0).standard_normal(int(2.0 * SAMPLE_RATE)) * 1e-4).astype(np.float32)
    assert failures(np.concatenate([floor, speechlike(3.9)])) == {"lead_silence"}


def test_clipping_share():
    audio = speechlike(3.9, amplitude=1.5).clip(-1.0, 1.0)
    report = sc.check_signal(audio, TEXT, OPTIONS)
    assert "clipping" in report.failures
    assert report.metrics["clipping_share"] > 0.3
    assert sc.clipping_share(np.array([0.5, 1.0, -1.0, 0.2])) == 0.5


def test_too_quiet():
    assert failures(speechlike(3.9, amplitude=0.003)) == {"too_quiet"}  # about -53 dBFS
    assert failures(speechlike(3.9, amplitude=0.03)) == set()  # about -33 dBFS


def test_hit_cap_is_a_failure():
    report = sc.check_signal(speechlike(3.9), TEXT, OPTIONS, hit_cap=True)
    assert report.failures == ("hit_cap",)
    assert report.metrics["hit_cap"] == 1.0


def test_thresholds_come_from_options():
    strict = VerifyOptions(max_lead_silence=0.1, min_rms_dbfs=-10.0)
    audio = np.concatenate([silence(0.2), speechlike(3.9)])
    assert failures(audio, options=strict) == {"lead_silence", "too_quiet"}


def test_frame_rms_handles_partial_frames():
    rms = sc.frame_rms(np.ones(330, dtype=np.float32))  # one full 320-sample frame, one of 10
    assert rms.tolist() == pytest.approx([1.0, 1.0])
    assert sc.frame_rms(np.zeros(0)).size == 0
