"""X-Codec2: decode lengths and batching, encode rate, the torch fbank against references, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llasa_cli.constants import CODEBOOK_SIZE, CODES_PER_SECOND, SAMPLE_RATE, SAMPLES_PER_CODE
from llasa_cli.engine.codec import ExtractorSettings, kaldi_fbank, semantic_features
from llasa_cli.engine.loading import load_codec
from llasa_cli.errors import ModelLoadError, ModelNotFoundError, VoiceError


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + 0.02 * noise).astype(np.float32)


def random_codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CODEBOOK_SIZE, n, dtype=np.int64)


def test_decode_gives_320_samples_per_code(tiny_codec) -> None:
    codes = [random_codes(n, seed=n) for n in (50, 7, 120, 50)] + [np.zeros(0, dtype=np.int64)]
    audio = tiny_codec.decode(codes)
    assert [a.shape[0] for a in audio] == [c.size * SAMPLES_PER_CODE for c in codes]
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in audio)


def test_batched_decode_equals_decoding_alone(tiny_codec) -> None:
    codes = [random_codes(40, 1), random_codes(64, 2), random_codes(40, 3)]
    together = tiny_codec.decode(codes)
    for code, audio in zip(codes, together, strict=True):
        np.testing.assert_allclose(tiny_codec.decode([code])[0], audio, rtol=1e-4, atol=1e-5)


def test_decode_rejects_invalid_codes(tiny_codec) -> None:
    with pytest.raises(ValueError):
        tiny_codec.decode([np.array([CODEBOOK_SIZE])])
    with pytest.raises(ValueError):
        tiny_codec.decode([np.zeros((2, 3), dtype=np.int64)])
    with pytest.raises(ValueError):
        tiny_codec.decode([np.zeros(3, dtype=np.float32)])


@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.7])
def test_encode_gives_50_codes_per_second(tiny_codec, seconds: float) -> None:
    codes = tiny_codec.encode(tone(seconds))
    assert codes.dtype == np.int64 and codes.ndim == 1
    assert abs(codes.size - seconds * CODES_PER_SECOND) <= 1
    assert ((codes >= 0) & (codes < CODEBOOK_SIZE)).all()
    assert tiny_codec.decode([codes])[0].size == codes.size * SAMPLES_PER_CODE


def test_encode_rejects_unusable_audio(tiny_codec) -> None:
    with pytest.raises(VoiceError):
        tiny_codec.encode(np.zeros(0, dtype=np.float32))
    with pytest.raises(VoiceError):
        tiny_codec.encode(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(VoiceError):
        tiny_codec.encode(np.full(1000, np.nan, dtype=np.float32))


def test_feature_shapes_line_up_with_codes() -> None:
    settings = ExtractorSettings()
    for samples in (1, 319, 320, 16_000, 16_321):
        values, features = semantic_features(np.zeros(samples, dtype=np.float32) + 0.01, settings)
        codes = values.shape[-1] // settings.hop_length
        assert values.shape[-1] % settings.hop_length == 0 and values.shape[-1] > samples
        assert features.shape == (1, codes, settings.num_mel_bins * settings.stride)


def test_fbank_matches_kaldi_native_fbank() -> None:
    knf = pytest.importorskip("kaldi_native_fbank")
    wave = tone(1.3, seed=4)
    ours = kaldi_fbank(torch.from_numpy(wave), ExtractorSettings()).numpy()
    opts = knf.FbankOptions()
    frame = opts.frame_opts
    frame.dither, frame.samp_freq, frame.window_type, frame.snip_edges = 0.0, SAMPLE_RATE, "povey", True
    frame.preemph_coeff, frame.remove_dc_offset = 0.97, True
    opts.mel_opts.num_bins, opts.mel_opts.low_freq, opts.mel_opts.high_freq = 80, 20.0, SAMPLE_RATE / 2
    opts.use_energy, opts.use_log_fbank, opts.use_power = False, True, True
    online = knf.OnlineFbank(opts)
    online.accept_waveform(SAMPLE_RATE, (wave * 2**15).tolist())
    online.input_finished()
    reference = np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_features_match_the_transformers_extractor(tiny_models) -> None:
    pytest.importorskip("torchaudio")
    from transformers import Xcodec2FeatureExtractor

    extractor = Xcodec2FeatureExtractor.from_pretrained(tiny_models.xcodec2)
    wave = tone(1.1, seed=5)
    reference = extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    values, features = semantic_features(wave, ExtractorSettings())
    torch.testing.assert_close(values, reference["input_values"])
    torch.testing.assert_close(features, reference["input_features"], atol=1e-3, rtol=1e-3)


def test_codec_loader_errors(tiny_models, tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_codec(str(tmp_path / "missing"), "cpu")
    with pytest.raises(ModelNotFoundError, match="hf download"):
        load_codec("llasa-cli-tests/no-such-codec", "cpu")
    with pytest.raises(ModelLoadError, match="not an X-Codec2"):
        load_codec(str(tiny_models.llasa), "cpu")
    with pytest.raises(ModelLoadError):
        load_codec(str(tmp_path), "cpu")
