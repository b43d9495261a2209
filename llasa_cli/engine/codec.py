"""X-Codec2 through the transformers port: speech codes <-> 16 kHz mono audio.

Decoding batches only codes of equal length. The decoder normalises with GroupNorm over
the time axis and attends over the whole sequence, so padding a short row to a longer one
changes every sample of it, not just its end (measured with the tiny random codec: padding
100 codes to 160 changed the row's audio by 18% RMS with random pad codes, 45% with code 0,
and as much in its first 80 codes as overall). Equal-length groups give exactly the audio a
row gets alone, and beam search decodes many prefixes of one length at once anyway.

Encoding computes the semantic encoder's input like `Xcodec2FeatureExtractor` (Kaldi
log-mel filter banks, per-utterance normalisation, frame pairs stacked), but in plain torch:
the extractor itself calls torchaudio, which pins its own torch build. The extractor's saved
settings are read with its own `from_pretrained`. This module imports torch: import it only
when synthesising.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import CODEBOOK_SIZE, SAMPLE_RATE, SAMPLES_PER_CODE
from ..errors import VoiceError

DEFAULT_DECODE_BATCH = 16
# Kaldi fbank settings that Xcodec2FeatureExtractor passes to torchaudio (not saved in its config).
_PREEMPHASIS = 0.97
_POVEY_POWER = 0.85
_LOW_FREQ_HZ = 20.0
_WAVE_SCALE = 2**15  # Kaldi works on 16-bit sample values
_NORM_EPS = 1e-7


@dataclass(frozen=True)
class ExtractorSettings:
    """The parts of the saved Xcodec2FeatureExtractor config that shape the features."""

    sampling_rate: int = SAMPLE_RATE
    hop_length: int = SAMPLES_PER_CODE
    padding_value: float = 1.0
    num_mel_bins: int = 80
    frame_length: int = 400
    frame_shift: int = 160
    stride: int = 2


def load_extractor_settings(location: str, **kwargs: Any) -> ExtractorSettings:
    """Read a saved Xcodec2FeatureExtractor (preprocessor_config.json) without needing torchaudio."""
    # Imported from its module: transformers exports a placeholder for it where torchaudio is missing.
    from transformers.models.xcodec2.feature_extraction_xcodec2 import Xcodec2FeatureExtractor

    extractor = Xcodec2FeatureExtractor.from_pretrained(location, **kwargs)
    return ExtractorSettings(
        sampling_rate=int(extractor.sampling_rate),
        hop_length=int(extractor.hop_length),
        padding_value=float(extractor.padding_value),
        num_mel_bins=int(extractor.num_mel_bins),
        frame_length=int(extractor.frame_length),
        frame_shift=int(extractor.frame_shift),
        stride=int(extractor.stride),
    )


def _kaldi_mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def mel_banks(settings: ExtractorSettings, fft_size: int) -> torch.Tensor:
    """[num_mel_bins, fft_size // 2] triangular Kaldi mel filters (the Nyquist bin gets no weight)."""
    bins = settings.num_mel_bins
    mel_low = _kaldi_mel(torch.tensor(_LOW_FREQ_HZ, dtype=torch.float64))
    mel_high = _kaldi_mel(torch.tensor(settings.sampling_rate / 2, dtype=torch.float64))
    delta = (mel_high - mel_low) / (bins + 1)
    left = mel_low + delta * torch.arange(bins, dtype=torch.float64).unsqueeze(1)
    center, right = left + delta, left + 2 * delta
    fft_mel = _kaldi_mel(torch.arange(fft_size // 2, dtype=torch.float64) * settings.sampling_rate / fft_size)
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def kaldi_fbank(wave: torch.Tensor, settings: ExtractorSettings) -> torch.Tensor:
    """[frames, num_mel_bins] log mel energies of a 1-D float waveform, as Kaldi's fbank (snip edges, no dither)."""
    size, shift = settings.frame_length, settings.frame_shift
    frames = (wave.float() * _WAVE_SCALE).unfold(0, size, shift)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - _PREEMPHASIS * previous
    window = torch.hann_window(size, periodic=False, dtype=torch.float64).pow(_POVEY_POWER).float()
    fft_size = 1 << math.ceil(math.log2(size))
    spectrum = torch.fft.rfft(F.pad(frames * window, (0, fft_size - size)), dim=-1).abs().pow(2)
    energies = spectrum[:, : fft_size // 2] @ mel_banks(settings, fft_size).T
    return torch.log(torch.clamp(energies, min=torch.finfo(torch.float32).eps))


def semantic_features(audio: np.ndarray, settings: ExtractorSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_values [1, 1, N'], input_features [1, frames / stride, mel * stride]) for one clip."""
    hop = settings.hop_length
    wave = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    padded_len = -(-(wave.numel() + 1) // hop) * hop  # one appended zero, then up to a whole hop
    wave = F.pad(wave, (0, padded_len - wave.numel()))
    fbank = kaldi_fbank(F.pad(wave, (hop // 2, hop // 2)), settings)
    fbank = (fbank - fbank.mean(0)) / torch.sqrt(fbank.var(0, unbiased=True) + _NORM_EPS)
    extra = (-fbank.shape[0]) % settings.stride
    fbank = F.pad(fbank, (0, 0, 0, extra), value=settings.padding_value)
    stacked = fbank.reshape(fbank.shape[0] // settings.stride, settings.num_mel_bins * settings.stride)
    return wave.view(1, 1, -1), stacked.unsqueeze(0)


def _check_codes(codes: np.ndarray) -> np.ndarray:
    array = np.asarray(codes)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"codes must be a 1-D integer array, not {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= CODEBOOK_SIZE):
        raise ValueError(f"codes must be in 0..{CODEBOOK_SIZE - 1}")
    return array.astype(np.int64, copy=False)


class XCodec:
    """`SpeechCodec` over `transformers.Xcodec2Model` (float32, on the model's device)."""

    def __init__(self, model: Any, settings: ExtractorSettings, max_batch: int = DEFAULT_DECODE_BATCH) -> None:
        self.model = model.eval()
        self.settings = settings
        self.max_batch = max_batch
        self.device = next(model.parameters()).device

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Float32 audio for each code array, len(codes) * SAMPLES_PER_CODE samples each."""
        arrays = [_check_codes(c) for c in codes]
        audio: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(arrays)
        groups: dict[int, list[int]] = defaultdict(list)
        for row, array in enumerate(arrays):
            if array.size:
                groups[array.size].append(row)
        with torch.inference_mode():
            for length, rows in groups.items():
                for start in range(0, len(rows), self.max_batch):
                    chunk = rows[start : start + self.max_batch]
                    batch = torch.as_tensor(np.stack([arrays[r] for r in chunk])).unsqueeze(1).to(self.device)
                    values = self.model.decode(audio_codes=batch).audio_values[:, 0, : length * SAMPLES_PER_CODE]
                    for row, wave in zip(chunk, values.float().cpu().numpy(), strict=True):
                        audio[row] = np.ascontiguousarray(wave, dtype=np.float32)
        return audio

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Codes (1-D int64, about 50 per second) of 16 kHz mono float audio."""
        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim == 2 and 1 in wave.shape:
            wave = wave.reshape(-1)
        if wave.ndim != 1 or wave.size == 0:
            raise VoiceError(f"audio to encode must be non-empty mono, not shape {wave.shape}")
        if not np.isfinite(wave).all():
            raise VoiceError("audio to encode contains NaN or infinite samples")
        input_values, input_features = semantic_features(wave, self.settings)
        with torch.inference_mode():
            out = self.model.encode(
                input_values=input_values.to(self.device), input_features=input_features.to(self.device)
            )
        return out.audio_codes[0, 0].cpu().numpy().astype(np.int64)
