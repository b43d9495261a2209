"""The verifier policy: signal + ASR + speaker checks combined, with fake models; options; ranking."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.errors import InvalidOptionError
from llasa_cli.options import VerifyOptions
from llasa_cli.verify.composite import CompositeVerifier, load_verifier
from llasa_cli.verify.verdict import Verdict, VerifyItem, best_attempt, verdict_checks

TEXT = "The quick brown fox jumps over the lazy dog and runs away."  # 58 characters
VOICE_A, VOICE_B = 220.0, 440.0


def speech(seconds: float = 3.9, voice: float = VOICE_A, seed: int = 0) -> np.ndarray:
    """Tone bursts standing in for speech; the fake embedder hears the pitch as the speaker."""
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    burst = 0.3 * np.sin(2 * np.pi * voice * t)
    gap = np.zeros(int(0.1 * SAMPLE_RATE))
    audio = np.tile(np.concatenate([burst, gap]), int(seconds / 0.4) + 1)[: int(seconds * SAMPLE_RATE)]
    return (audio + 1e-4 * np.random.default_rng(seed).standard_normal(audio.size)).astype(np.float32)


class FakeTranscriber:
    """Hears what `say` registered for a clip (by content); records each batch."""

    def __init__(self) -> None:
        self.heard: dict[bytes, str] = {}
        self.calls: list[tuple[int, str]] = []

    def say(self, audio: np.ndarray, text: str) -> np.ndarray:
        self.heard[np.asarray(audio).tobytes()] = text
        return audio

    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        self.calls.append((len(audio), language))
        return [self.heard.get(np.asarray(clip).tobytes(), "") for clip in audio]


class FakeEmbedder:
    """One-hot of the dominant pitch (in 50 Hz bins): same pitch -> similarity 1, other -> 0."""

    BINS = 40

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(audio))
        out = np.zeros((len(audio), self.BINS), dtype=np.float32)
        for row, clip in enumerate(audio):
            if clip.size == 0:
                continue  # all zeros: similarity 0
            spectrum = np.abs(np.fft.rfft(clip))
            pitch = np.argmax(spectrum) * SAMPLE_RATE / max(clip.size, 1)
            out[row, min(int(pitch // 50), self.BINS - 1)] = 1.0
        return out


@pytest.fixture
def fakes():
    return FakeTranscriber(), FakeEmbedder()


def verifier(fakes, reference=None, options=None, lang="en"):
    transcriber, embedder = fakes
    ref = speech(2.0, VOICE_A, seed=99) if reference is None else reference
    return CompositeVerifier(options or VerifyOptions(), transcriber, embedder, ref, lang)


def test_good_segment_passes_with_all_metrics(fakes):
    transcriber, _ = fakes
    audio = transcriber.say(speech(), TEXT.upper().replace(".", "!"))
    [verdict] = verifier(fakes).verify([VerifyItem(TEXT, audio)])
    assert verdict.passed, verdict.failures
    assert verdict.failures == ()
    assert verdict.metrics["wer"] == 0.0
    assert verdict.metrics["similarity"] == pytest.approx(1.0)
    assert verdict.score == pytest.approx(1.0)
    assert verdict.transcript == TEXT.upper().replace(".", "!")


def test_each_kind_of_bad_segment_is_flagged_for_its_reason(fakes):
    transcriber, embedder = fakes
    items = [
        VerifyItem(TEXT, transcriber.say(speech(seed=1), TEXT)),  # good
        VerifyItem(TEXT, transcriber.say(speech(seed=2), "The quick brown fox jumps.")),  # dropped words
        VerifyItem(TEXT, transcriber.say(speech(voice=VOICE_B, seed=3), TEXT)),  # a different speaker
        VerifyItem(TEXT, np.zeros(3 * SAMPLE_RATE, dtype=np.float32)),  # silence
        VerifyItem(TEXT, transcriber.say(speech(seed=4), TEXT), hit_cap=True),  # runaway
    ]
    verdicts = verifier(fakes).verify(items)
    assert [v.passed for v in verdicts] == [True, False, False, False, False]
    assert verdicts[1].failures == ("wer", "omission")  # 7 of 12 words missing, in one run
    assert verdicts[1].metrics["wer"] == pytest.approx(7 / 12)
    assert verdicts[1].metrics["omitted_words"] == 7
    assert verdicts[2].failures == ("speaker",)
    assert verdicts[2].metrics["similarity"] == pytest.approx(0.0)
    assert {"empty", "too_quiet", "wer"} <= set(verdicts[3].failures)
    assert verdicts[3].transcript == ""
    assert verdicts[4].failures == ("hit_cap",)
    # the reference once (for the narrator's pace), then one ASR batch for the audible items (silence
    # is not transcribed); one embedding batch + the reference
    assert transcriber.calls == [(1, "en"), (4, "en")]
    assert embedder.calls == [1, 5]


LOOPED = "The quick brown fox jumps over the lazy, over the lazy dog and runs away."
BABBLED = TEXT + " And so on."


@pytest.mark.parametrize(
    ("heard", "failure", "metric", "value"),
    [
        (LOOPED, "loop", "repeated_words", 3),  # WER 3/12 passes; the loop does not
        (BABBLED, "babble", "words_after_end", 3),
        ("The quick brown fox jumps over the dog and runs away.", None, "omitted_words", 1),
    ],
)
def test_alignment_failures_are_their_own(fakes, heard, failure, metric, value):
    transcriber, _ = fakes
    [verdict] = verifier(fakes).verify([VerifyItem(TEXT, transcriber.say(speech(), heard))])
    assert verdict.metrics["wer"] <= VerifyOptions().max_wer
    assert verdict.failures == ((failure,) if failure else ())
    assert verdict.metrics[metric] == value


def test_speech_buried_in_noise_is_flagged_even_when_heard_right(fakes):
    transcriber, _ = fakes
    clean = speech()
    noisy = clean + np.sqrt(10 * np.mean(clean**2)) * np.random.default_rng(0).standard_normal(clean.size)
    items = [VerifyItem(TEXT, transcriber.say(a.astype(np.float32), TEXT)) for a in (clean, noisy)]
    good, bad = verifier(fakes).verify(items)
    assert good.passed and good.metrics["snr_db"] > 30
    assert "noisy" in bad.failures and bad.metrics["snr_db"] < 0
    assert "wer" not in bad.failures


def test_pace_is_the_narrators_from_the_reference_transcript(fakes):
    transcriber, _ = fakes
    reference = speech(4.0, seed=98)  # 58 characters in 4 s: the narrator's pace
    checker = CompositeVerifier(VerifyOptions(), transcriber, None, reference, "en", reference_text=TEXT)
    clips = {seconds: transcriber.say(speech(seconds, seed=int(seconds * 10)), TEXT) for seconds in (1.6, 4.4, 8.0)}
    rushed, usual, dragged = checker.verify([VerifyItem(TEXT, clips[s]) for s in (1.6, 4.4, 8.0)])
    assert usual.passed and usual.metrics["pace_ratio"] == pytest.approx(1.1, abs=0.05)
    assert "too_fast" in rushed.failures and rushed.metrics["pace_ratio"] < 1 / 1.5
    assert dragged.failures == ("too_slow",)  # inside the fixed band (0.14 s per character), not the narrator's
    rows = {row.check: row for row in verdict_checks(dragged, VerifyOptions())}
    assert (rows["too_slow"].comparison, rows["too_slow"].limit, rows["too_fast"].limit) == ("<=", 1.5, 0.6667)
    heard = CompositeVerifier(VerifyOptions(), transcriber, None, transcriber.say(reference, TEXT), "en")
    assert heard.pace.seconds_per_char == pytest.approx(3.9 / 58)  # no text given: the reference is transcribed


def test_without_a_reference_transcript_the_pace_is_learnt_from_passed_segments(fakes):
    transcriber, _ = fakes
    checker = verifier(fakes)
    assert checker.pace.seconds_per_char is None
    [first] = checker.verify([VerifyItem(TEXT, transcriber.say(speech(4.0, seed=1), TEXT))])
    assert first.passed and "pace_ratio" not in first.metrics  # not judged: nothing known yet
    [second] = checker.verify([VerifyItem(TEXT, transcriber.say(speech(5.0, seed=2), TEXT))])
    assert second.passed and second.metrics["pace_ratio"] == pytest.approx(5.0 / 3.9, abs=0.03)  # 3.9 s voiced
    assert checker.pace.seconds_per_char == pytest.approx(8.9 / 116, rel=0.02)  # pooled over both
    failed = transcriber.say(speech(8.0, seed=3), "Nothing like it.")
    checker.verify([VerifyItem(TEXT, failed)])
    assert checker.pace.seconds_per_char == pytest.approx(8.9 / 116, rel=0.02)  # a failed segment teaches nothing
    partial = checker.for_partial_speech()
    assert partial.pace is checker.pace
    [stalled] = partial.verify([VerifyItem(TEXT, speech(3.0), spoken_seconds=8.0)])  # 4.5 s expected
    [going] = partial.verify([VerifyItem(TEXT, speech(3.0), spoken_seconds=5.0)])
    assert stalled.failures == ("too_slow",) and going.passed
    assert checker.pace.seconds_per_char == pytest.approx(8.9 / 116, rel=0.02)  # partial speech teaches nothing
    off = verifier(fakes, options=VerifyOptions(check_pace=False))
    off.verify([VerifyItem(TEXT, transcriber.say(speech(4.0, seed=2), TEXT))] * 3)
    assert off.pace.seconds_per_char is None


def test_a_short_clip_has_its_similarity_measured_but_not_judged(fakes):
    transcriber, _ = fakes
    short, long = speech(1.2, VOICE_B, seed=1), speech(3.9, VOICE_B, seed=2)
    text = "Chapter one."
    verdicts = verifier(fakes, options=VerifyOptions(check_pace=False)).verify(
        [VerifyItem(text, transcriber.say(short, text)), VerifyItem(TEXT, transcriber.say(long, TEXT))]
    )
    assert verdicts[0].metrics["similarity"] == 0.0 and "speaker" not in verdicts[0].failures
    assert verdicts[1].failures == ("speaker",)


def test_every_failure_has_a_limit_and_a_help_line():
    from llasa_cli.verify.verdict import FAILURE_HELP, RULE_FAILURES, failure_limits

    limits = failure_limits(VerifyOptions())
    assert set(limits) == set(FAILURE_HELP)
    assert RULE_FAILURES | {"wer", "cer", "speaker"} == set(FAILURE_HELP)
    assert {"omission", "loop", "babble", "too_fast", "too_slow", "noisy"} <= RULE_FAILURES


def test_scores_rank_attempts_by_how_close_they_are(fakes):
    transcriber, _ = fakes
    texts = [TEXT, "The quick brown fox jumps over the lazy cat and runs away.", "Nothing alike at all."]
    items = [VerifyItem(TEXT, transcriber.say(speech(seed=i), heard)) for i, heard in enumerate(texts)]
    scores = [v.score for v in verifier(fakes).verify(items)]
    assert scores[0] > scores[1] > scores[2]


def test_without_reference_or_with_speaker_check_off_there_is_no_speaker_metric(fakes):
    transcriber, embedder = fakes
    audio = transcriber.say(speech(voice=VOICE_B), TEXT)
    no_reference = CompositeVerifier(VerifyOptions(), transcriber, embedder, None, "en")
    switched_off = verifier(fakes, options=VerifyOptions(check_speaker=False))
    for candidate in (no_reference, switched_off):
        [verdict] = candidate.verify([VerifyItem(TEXT, audio)])
        assert verdict.passed
        assert "similarity" not in verdict.metrics
    assert embedder.calls == []  # the reference is not even embedded


def test_the_partial_speech_verifier_drops_asr_and_shares_the_reference(fakes):
    transcriber, embedder = fakes
    whole = verifier(fakes)
    embedded = len(embedder.calls)
    partial = whole.for_partial_speech()
    [verdict] = partial.verify([VerifyItem(TEXT, transcriber.say(speech(), "The quick brown"))])
    assert verdict.transcript is None and "wer" not in verdict.metrics  # half a sentence is not judged by ASR
    assert "similarity" in verdict.metrics
    assert len(embedder.calls) == embedded + 1  # the clip only: the reference was embedded once, by `whole`
    assert whole.options.check_asr and whole.transcriber is transcriber  # the original is unchanged
    signal_only = CompositeVerifier.signal_only("en")
    [plain] = signal_only.verify([VerifyItem(TEXT, speech())])
    assert plain.transcript is None and "similarity" not in plain.metrics and "seconds_per_char" in plain.metrics


def test_asr_check_off_leaves_no_transcript(fakes):
    [verdict] = verifier(fakes, options=VerifyOptions(check_asr=False)).verify([VerifyItem(TEXT, speech())])
    assert verdict.transcript is None
    assert "wer" not in verdict.metrics
    assert verdict.passed


def test_chinese_uses_cer_and_its_limit(fakes):
    transcriber, _ = fakes
    text = "今天天气很好我们去公园散步吧"
    close = transcriber.say(speech(3.1, seed=1), "今天天气很好我们去公园散步")  # 1 of 14 missing
    far = transcriber.say(speech(3.1, seed=2), "今天天气")
    verdicts = verifier(fakes, lang="zh").verify([VerifyItem(text, close), VerifyItem(text, far)])
    assert verdicts[0].passed and verdicts[0].metrics["cer"] == pytest.approx(1 / 14)
    assert verdicts[1].failures == ("cer", "omission")
    assert verdicts[1].metrics["omitted_words"] == 5  # 10 characters: two count as a word
    assert "wer" not in verdicts[0].metrics
    assert fakes[0].calls == [(1, "zh"), (2, "zh")]  # the reference, then both clips


def test_thresholds_are_the_options(fakes):
    transcriber, _ = fakes
    audio = transcriber.say(speech(), "The quick brown cat jumps over a lazy dog and runs off.")  # WER 3/12
    item = VerifyItem(TEXT, audio)
    assert verifier(fakes).verify([item])[0].passed
    [strict] = verifier(fakes, options=VerifyOptions(max_wer=0.2)).verify([item])
    assert strict.failures == ("wer",)
    rows = verdict_checks(strict, VerifyOptions(max_wer=0.2))
    [wer] = [row for row in rows if not row.passed]
    assert (wer.check, wer.value, wer.comparison, wer.limit) == ("wer", 0.25, "<=", 0.2)
    assert wer.help == "transcript differs from the text"
    assert {row.check for row in rows if row.passed} >= {"empty", "too_short", "too_long", "clipping"}


def test_verdict_json_is_finite_and_serialisable(fakes):
    [verdict] = verifier(fakes).verify([VerifyItem(TEXT, np.zeros(0, dtype=np.float32))])
    data = verdict.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["passed"] is False
    assert data["rms_dbfs"] == -120.0


def test_a_stored_verdict_reads_back_with_its_metrics(fakes):
    transcriber, _ = fakes
    audio = transcriber.say(speech(), "The quick brown fox jumps over the lazy dog.")
    [verdict] = verifier(fakes, options=VerifyOptions(max_wer=0.2)).verify([VerifyItem(TEXT, audio)])
    stored = json.loads(json.dumps(verdict.to_dict()))
    again = Verdict.from_dict(stored)
    assert (again.passed, again.failures, again.transcript) == (verdict.passed, verdict.failures, verdict.transcript)
    assert again.metrics.keys() == verdict.metrics.keys() and "wer" in again.metrics
    assert again.metrics == pytest.approx({k: float(v) for k, v in verdict.metrics.items()}, abs=1e-6)


def test_empty_batch(fakes):
    assert verifier(fakes).verify([]) == []


def test_best_attempt_prefers_passing_then_score_then_earliest():
    fail_high = Verdict(False, 0.9)
    pass_low = Verdict(True, 0.5)
    pass_high = Verdict(True, 0.8)
    assert best_attempt([fail_high, pass_low, pass_high]) == 2
    assert best_attempt([fail_high, pass_low]) == 1
    assert best_attempt([Verdict(False, 0.2), Verdict(False, 0.7), Verdict(False, 0.7)]) == 1
    with pytest.raises(ValueError):
        best_attempt([])


def test_load_verifier_builds_real_models_offline(tiny_models):
    if tiny_models.whisper is None:
        pytest.skip("openai-whisper is not installed")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        options = VerifyOptions(asr_model=str(tiny_models.whisper), speaker_model=str(tiny_models.wavlm))
        checker = load_verifier(options, "cpu", speech(2.0, seed=5), "en")
        [verdict] = checker.verify([VerifyItem(TEXT, speech(seed=6))])
    finally:
        torch.set_num_threads(threads)
    assert {"wer", "similarity", "seconds_per_char"} <= set(verdict.metrics)
    assert isinstance(verdict.transcript, str)
    assert -1.0 <= verdict.metrics["similarity"] <= 1.0


# -- VerifyOptions -------------------------------------------------------------------


def test_verify_options_defaults():
    options = VerifyOptions()
    assert (options.enabled, options.strict, options.retries) == (True, False, 3)
    assert (options.asr_backend, options.asr_model, options.speaker_backend) == ("openai-whisper", None, "wavlm")
    assert options.similarity_threshold == 0.80
    assert VerifyOptions(speaker_backend="ecapa").similarity_threshold == 0.40
    assert VerifyOptions(speaker_backend="resemblyzer").similarity_threshold == 0.80
    assert VerifyOptions(min_similarity=0.6).similarity_threshold == 0.6


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"retries": -1}, "--retries"),
        ({"retries": 21}, "--retries"),
        ({"strict": True, "enabled": False}, "--strict and --no-verify"),
        ({"asr_backend": "kaldi"}, "--asr-backend"),
        ({"speaker_backend": "titanet"}, "--speaker-backend"),
        ({"pace_factor": 1.0}, "--pace-factor"),
        ({"pace_factor": float("nan")}, "--pace-factor"),
        ({"max_omitted_words": -1}, "--max-omitted-words"),
        ({"max_repeated_words": 1.5}, "--max-repeated-words"),
        ({"max_words_after_end": -2}, "--max-words-after-end"),
        ({"min_snr_db": 200.0}, "--min-snr"),
        ({"batch_size": 0}, "--verify-batch-size"),
        ({"max_wer": -0.1}, "--max-wer"),
        ({"max_cer": -1.0}, "--max-cer"),
        ({"min_similarity": 1.5}, "--min-similarity"),
        ({"min_seconds_per_char": 0.3}, "speech-rate band"),
        ({"max_inner_silence": -1.0}, "--max-inner-silence"),
        ({"max_clipping": 2.0}, "--max-clipping"),
        ({"min_rms_dbfs": 3.0}, "--min-rms-dbfs"),
    ],
)
def test_verify_options_name_the_bad_flag(kwargs, flag):
    with pytest.raises(InvalidOptionError, match=flag):
        VerifyOptions(**kwargs)
