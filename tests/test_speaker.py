"""Speaker embeddings: the tiny random WavLM x-vector model through the user's loader, cosine
similarity, batching that never changes an embedding, the optional ECAPA backend, and the real
resemblyzer (GE2E) weights: its front end against a reference mel filter bank, and on espeak-ng
speech another voice and a pitch-shifted voice told apart from the narrator."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.errors import InvalidOptionError, ModelLoadError, ModelNotFoundError
from llasa_cli.verify import speaker


@pytest.fixture
def wavlm(tiny_models, one_torch_thread):
    return speaker.load_embedder("wavlm", str(tiny_models.wavlm), "cpu", batch_size=4)


def clip(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16_000))).astype(np.float32)


def test_cosine_similarity_numbers():
    reference = np.array([1.0, 0.0])
    rows = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert speaker.cosine_similarity(rows, reference).tolist() == pytest.approx([1.0, 0.0, -1.0, 2**-0.5, 0.0])


def test_wavlm_embeds_a_batch_in_order(wavlm):
    clips = [clip(1.0, 1), clip(2.0, 2), np.zeros(0, dtype=np.float32), clip(0.01, 3), clip(1.0, 4)]
    embeddings = wavlm.embed(clips)
    assert embeddings.shape == (5, 32)  # the tiny model's xvector_output_dim
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()  # empty and very short clips are padded to MIN_EMBED_SECONDS
    assert wavlm.embed([]).shape == (0, 32)


def test_an_embedding_does_not_depend_on_its_batch(wavlm):
    a, b = clip(1.0, 1), clip(3.0, 2)
    together = wavlm.embed([a, b, a])
    np.testing.assert_allclose(together[0], wavlm.embed([a])[0], atol=1e-5)
    np.testing.assert_allclose(together[1], wavlm.embed([b])[0], atol=1e-5)
    np.testing.assert_allclose(together[0], together[2], atol=1e-6)


def test_group_norm_models_batch_only_equal_lengths(wavlm):
    assert not wavlm.pads_safely  # the tiny model, like wavlm-base-plus, normalises over time
    assert wavlm._batches([5, 3, 5, 5, 1, 5, 5, 5]) == [[4], [1], [0, 2, 3, 5], [6, 7]]


def test_wrong_model_kind_and_offline_hub_id(tiny_models):
    with pytest.raises(ModelLoadError, match="not a WavLM"):
        speaker.load_embedder("wavlm", str(tiny_models.llasa), "cpu")
    with pytest.raises(ModelNotFoundError, match="hf download"):
        speaker.load_embedder("wavlm", None, "cpu")  # microsoft/wavlm-base-plus-sv is not cached here
    with pytest.raises(InvalidOptionError, match="--speaker-backend"):
        speaker.load_embedder("titanet", None, "cpu")


def test_ecapa_backend_is_refused_cleanly_where_speechbrain_cannot_import():
    try:
        import speechbrain.inference.speaker  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("speechbrain imports here; the refusal path cannot be exercised")
    with pytest.raises(ModelLoadError, match="needs speechbrain") as caught:
        speaker.load_embedder("ecapa", None, "cpu")
    assert "--speaker-backend wavlm" in str(caught.value)


# -- resemblyzer: real GE2E weights from the PyPI wheel --------------------------------------

needs_resemblyzer = pytest.mark.skipif(
    not __import__("llasa_cli.verify.resemblyzer_speaker", fromlist=["is_installed"]).is_installed(),
    reason="resemblyzer is not installed (pip install --no-deps resemblyzer)",
)


def test_resemblyzer_mel_filters_match_librosas_slaney_filters():
    from transformers.audio_utils import mel_filter_bank

    from llasa_cli.verify.resemblyzer_speaker import MEL_BANDS, WINDOW_SAMPLES, mel_filters

    reference = mel_filter_bank(
        num_frequency_bins=WINDOW_SAMPLES // 2 + 1, num_mel_filters=MEL_BANDS, min_frequency=0.0,
        max_frequency=8000.0, sampling_rate=16_000, norm="slaney", mel_scale="slaney",
    )  # fmt: skip
    np.testing.assert_allclose(mel_filters(), reference.T, atol=1e-12)


def test_resemblyzer_windows_follow_the_packages_slicing():
    from llasa_cli.verify.resemblyzer_speaker import partial_mels, partial_starts

    assert partial_starts(8_000) == [0]  # shorter than one window: one, zero-padded
    assert partial_starts(16_000 * 4) == [0, 77, 154, 231]  # 1.3 a second; a last one under 75% full is dropped
    mels = partial_mels(clip(2.0, 1))
    assert mels.shape[1:] == (160, 40) and np.isfinite(mels).all()


def test_resemblyzer_is_refused_cleanly_when_missing(monkeypatch, tmp_path):
    from llasa_cli.verify import resemblyzer_speaker

    monkeypatch.setattr(resemblyzer_speaker.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps resemblyzer"):
        speaker.load_embedder("resemblyzer", None, "cpu")
    need = speaker.speaker_need("resemblyzer", None)
    assert need is not None and not need.present and "resemblyzer" in need.fetch
    with pytest.raises(ModelNotFoundError, match="no such resemblyzer weights file"):
        speaker.load_embedder("resemblyzer", str(tmp_path / "nope.pt"), "cpu")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_resemblyzer_refuses_a_weights_file_that_would_run_code(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"model_state": Payload()}))
    with pytest.raises(ModelLoadError, match="cannot load resemblyzer speaker weights"):
        speaker.load_embedder("resemblyzer", str(bad), "cpu")


@needs_resemblyzer
def test_resemblyzer_loads_offline_and_embeds_in_order(one_torch_thread):
    embedder = speaker.load_embedder("resemblyzer", None, "cpu")
    clips = [clip(2.0, 1), np.zeros(0, dtype=np.float32), clip(0.3, 2), clip(3.5, 3)]
    together = embedder.embed(clips)
    assert together.shape == (4, 256) and together.dtype == np.float32 and np.isfinite(together).all()
    np.testing.assert_allclose(np.linalg.norm(together[[0, 2, 3]], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together[3], embedder.embed([clips[3]])[0], atol=1e-5)  # the batch changes nothing
    assert embedder.embed([]).shape == (0, 256)


@pytest.fixture(scope="module")
def voices():
    """The narrator's reference and three readings of another sentence: the narrator, another
    espeak-ng voice, and the narrator pitched up 400 cents by sox."""
    from .realspeech import MATRIX, MATRIX_MISSING

    if MATRIX_MISSING:
        pytest.skip(MATRIX_MISSING)
    text = MATRIX.CALIBRATION[0].text
    return {
        "reference": MATRIX.espeak(MATRIX.REFERENCE),
        "same": MATRIX.espeak(text),
        "other": MATRIX.espeak(text, voice=MATRIX.OTHER_VOICE),
        "pitched": MATRIX.pitch_shifted(text),
    }


@pytest.mark.slow
def test_resemblyzer_tells_another_voice_and_a_pitch_shift_from_the_narrator(voices, one_torch_thread):
    from llasa_cli.options import VerifyOptions

    embedder = speaker.load_embedder("resemblyzer", None, "cpu")
    reference = embedder.embed([voices["reference"]])[0]
    names = ("same", "other", "pitched")
    values = speaker.cosine_similarity(embedder.embed([voices[n] for n in names]), reference)
    similarity = dict(zip(names, values, strict=True))
    threshold = VerifyOptions(speaker_backend="resemblyzer").similarity_threshold
    assert similarity["same"] >= threshold + 0.05, similarity
    assert similarity["other"] < threshold - 0.05, similarity
    assert similarity["pitched"] < threshold - 0.03, similarity
