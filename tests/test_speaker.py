"""Speaker embeddings: the tiny random WavLM x-vector model through the user's loader, cosine
similarity, batching that never changes an embedding, and the optional ECAPA backend."""

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
        speaker.load_embedder("resemblyzer", None, "cpu")


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
