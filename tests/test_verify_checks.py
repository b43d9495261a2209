"""The model-free parts of the new checks on their own: transcript alignment (omission, loop,
babble), the WADA-SNR noise estimate, and the narrator's pace."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.verify import alignment as al
from llasa_cli.verify import noise, pace

# -- alignment ---------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


TEXT = words("she counted twelve ships before the storm arrived and then she went home")


def test_alignment_is_a_least_cost_edit_script():
    ops = al.align(words("a b c d"), words("a x c d e"))
    assert ops == ["=", "~", "=", "=", "+"]
    assert al.align([], ["a"]) == ["+"] and al.align(["a"], []) == ["-"]


@pytest.mark.parametrize(
    ("heard", "omitted", "repeated", "after"),
    [
        (TEXT, 0, 0, 0),
        (TEXT[:8], 5, 0, 0),  # the last clause dropped
        (TEXT[:2] + TEXT[4:], 2, 0, 0),  # two words skipped
        (TEXT[:3] + TEXT[4:9] + TEXT[10:], 1, 0, 0),  # two single words skipped: a run of one
        (TEXT[:8] + TEXT[5:8] + TEXT[8:], 0, 3, 0),  # "the storm arrived" said again
        (TEXT[:8] + words("oh") + TEXT[5:8] + TEXT[8:], 0, 3, 0),  # again, after a word between
        (TEXT + words("and so on and so on"), 0, 3, 6),  # babble past the end, looping
        # A restart: the second "she" aligns with the text's later one, the rest is one word past it.
        (words("she counted twelve ships") * 2, 6, 4, 1),
    ],
)
def test_alignment_counts(heard, omitted, repeated, after):
    report = al.check_alignment(TEXT, heard)
    assert (report.omitted_words, report.repeated_words, report.words_after_end) == (omitted, repeated, after)


def test_a_phrase_the_text_itself_repeats_is_no_loop():
    text = words("we walked and walked and walked until dark")
    assert al.check_alignment(text, text).repeated_words == 0
    # One "walked and" more than the text says: the copies overlap into a 5-word repeat.
    assert al.longest_extra_repeat(text, text[:3] + text[1:]) == 5


def test_a_pair_said_twice_far_apart_is_left_to_the_wer():
    text = words("out of a house full of noise we ran")
    heard = words("out of the house of the noise we ran")  # "of the" twice, a word apart
    assert al.check_alignment(text, heard).repeated_words == 0
    assert al.check_alignment(text, words("out of the of the house full of noise we ran")).repeated_words == 2


def test_chinese_counts_two_characters_as_a_word():
    text = list("今天天气很好我们去公园散步吧")
    report = al.check_alignment(text, text[:4], "zh")
    assert report.omitted_words == 5.0
    assert report.metrics() == {"omitted_words": 5.0, "repeated_words": 0.0, "words_after_end": 0.0}


def test_words_after_an_empty_text_are_not_babble():
    assert al.check_alignment([], ["thank", "you"]).words_after_end == 0


# -- noise ---------------------------------------------------------------------------------------


def test_wada_curve_meets_its_closed_forms_at_both_ends():
    from math import log, pi

    from numpy import euler_gamma

    snrs, curve = noise.wada_curve()
    assert snrs[0] == noise.MIN_SNR_DB and snrs[-1] == noise.MAX_SNR_DB
    assert np.all(np.diff(curve) >= 0)
    assert curve[0] == pytest.approx(0.5 * log(2 / pi) + (euler_gamma + log(2)) / 2, abs=0.01)  # Gaussian noise
    assert curve[-1] == pytest.approx(log(0.4) + 2.5613845, abs=0.03)  # log(k) - digamma(k), k = 0.4


def gamma_speech(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Samples of the estimator's own speech model: Gamma(0.4) amplitudes, random signs."""
    rng = np.random.default_rng(seed)
    size = int(seconds * 16_000)
    return 0.05 * rng.gamma(0.4, 1.0, size) * rng.choice((-1.0, 1.0), size)


def in_noise(speech: np.ndarray, snr: float) -> np.ndarray:
    power = np.mean(speech**2)
    return speech + np.random.default_rng(1).standard_normal(speech.size) * np.sqrt(power / 10 ** (snr / 10))


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0, 30.0])
def test_wada_snr_reads_back_the_snr_of_speech_in_white_noise(snr):
    mixed = in_noise(gamma_speech(), snr)
    assert noise.wada_snr(mixed) == pytest.approx(snr, abs=2.0)
    assert noise.wada_snr(10 * mixed) == pytest.approx(noise.wada_snr(mixed), abs=1e-6)  # any level


def test_wada_snr_below_zero_is_coarse_but_low():
    """Near the pure-noise end the curve is flat, so -10 dB reads somewhere from -20 to -5."""
    assert noise.wada_snr(in_noise(gamma_speech(), -10.0)) < -5.0


def test_wada_snr_does_not_judge_what_is_not_speech_in_noise():
    t = np.arange(16_000) / 16_000
    assert noise.wada_snr(np.sin(2 * np.pi * 220 * t)) is None  # a steady tone: flatter than noise
    assert noise.wada_snr(np.zeros(16_000)) is None
    assert noise.wada_snr(np.zeros(0)) is None
    assert noise.wada_snr(np.array([np.nan, 1.0])) is None
    assert noise.wada_snr(np.random.default_rng(0).standard_normal(16_000)) < -10  # pure noise


# -- pace ----------------------------------------------------------------------------------------


def test_pace_is_unknown_until_enough_text_is_pooled():
    narrator = pace.NarratorPace(1.5)
    narrator.add(1.0, "Short.")
    assert narrator.seconds_per_char is None and narrator.check(1.0, "Short.") is None
    narrator.add(3.5, "A sentence long enough to set the narrator's pace.")  # 50 characters
    assert narrator.seconds_per_char == pytest.approx(4.5 / 56)
    narrator.add(0.0, "Nothing heard.")  # nothing voiced: not pooled
    narrator.add(2.0, "")
    assert narrator.seconds_per_char == pytest.approx(4.5 / 56)


def test_pace_flags_beyond_the_factor_either_way_with_slack():
    narrator = pace.NarratorPace(1.5)
    narrator.add(10.0, "x" * 100)  # 0.1 s per character
    text = "y" * 40  # 4 s expected
    assert narrator.check(4.0, text).failures == ()
    assert narrator.check(6.2, text).failures == ()  # 6.0 + 0.25 s of slack
    assert narrator.check(6.3, text).failures == (pace.TOO_SLOW,)
    assert narrator.check(2.5, text).failures == ()  # 2.67 - 0.25
    assert narrator.check(2.3, text).failures == (pace.TOO_FAST,)
    assert narrator.check(6.3, text).ratio == pytest.approx(6.3 / 4.0)
    assert narrator.check_partial(5.0, text).failures == ()
    assert narrator.check_partial(6.5, text).failures == (pace.TOO_SLOW,)
    assert narrator.longest_seconds(text) == pytest.approx(6.25)
