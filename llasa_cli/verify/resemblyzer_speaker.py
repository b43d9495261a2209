"""The `resemblyzer` speaker backend: the GE2E speaker encoder whose trained weights ship inside
the PyPI wheel `resemblyzer` (Apache-2.0, about 17 MB), so it works offline with no download.

Only the weights file is taken from the package, never its code: `import resemblyzer` pulls in
librosa and webrtcvad (whose import needs `pkg_resources`, gone from current setuptools), so the
package folder is found with `importlib.util.find_spec` (which imports nothing) and the weights are
read with `torch.load(weights_only=True)`, which builds tensors and plain containers only. Install
it without its dependencies: `pip install --no-deps resemblyzer`.

What the package's `VoiceEncoder.embed_utterance` does, rebuilt here in NumPy:

- volume raised (never lowered) to TARGET_DBFS, and silences longer than MAX_SILENCE_SECONDS cut
  out (resemblyzer uses webrtcvad; here the frame-level voicing of signal_checks.py decides);
- a 40-band mel power spectrogram (25 ms Hann window, 10 ms hop, Slaney mel scale and norm, as
  `librosa.feature.melspectrogram`, zero-padded at both ends as librosa >= 0.10 does);
- 1.6 s windows (160 frames) at PARTIALS_PER_SECOND, the last one kept when it is at least
  MIN_COVERAGE full; each window through a 3-layer LSTM (256 units), a linear layer, ReLU and L2
  norm; the clip's embedding is the L2-normed mean of its windows'.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import ModelLoadError, ModelNotFoundError, first_line
from . import signal_checks as sc

PACKAGE = "resemblyzer"
WEIGHTS_FILE = "pretrained.pt"
INSTALL_HINT = "pip install --no-deps resemblyzer"

MEL_BANDS = 40
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s per window
PARTIALS_PER_SECOND = 1.3
MIN_COVERAGE = 0.75
HIDDEN_SIZE = 256
EMBEDDING_SIZE = 256
LSTM_LAYERS = 3
TARGET_DBFS = -30.0
MAX_SILENCE_SECONDS = 0.2
# Windows per forward pass: 64 x 160 x 40 floats is small on any device.
PARTIALS_PER_BATCH = 64


def bundled_weights() -> Path:
    """The weights file inside the installed resemblyzer package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"--speaker-backend resemblyzer needs the speaker-encoder weights of the resemblyzer package, "
        f"which is not installed ({INSTALL_HINT})"
    )


def weights_path(spec: str | None) -> Path:
    """`spec` (a local weights file in the same format) or the bundled weights."""
    if spec is None:
        return bundled_weights()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"--speaker-model {spec!r}: no such resemblyzer weights file")
    return path


def is_installed() -> bool:
    try:
        bundled_weights()
    except ModelNotFoundError:
        return False
    return True


# -- the mel front end -----------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3))


@lru_cache(maxsize=1)
def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = WINDOW_SAMPLES, bands: int = MEL_BANDS) -> np.ndarray:
    """[bands, n_fft // 2 + 1] triangular filters, Slaney-normalised (area 1 per band), 0 .. sr/2."""
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), bands + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def mel_spectrogram(audio: np.ndarray) -> np.ndarray:
    """[frames, MEL_BANDS] mel power spectrogram (not log), one frame per HOP_SAMPLES, centred."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    padded = np.pad(audio, WINDOW_SAMPLES // 2)
    count = 1 + (padded.size - WINDOW_SAMPLES) // HOP_SAMPLES
    starts = np.arange(count)[:, None] * HOP_SAMPLES + np.arange(WINDOW_SAMPLES)[None, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)  # periodic Hann
    power = np.abs(np.fft.rfft(padded[starts] * window, axis=1)) ** 2
    return (power @ mel_filters().T).astype(np.float32)


# -- preprocessing and windows -----------------------------------------------------------


def normalize_volume(audio: np.ndarray) -> np.ndarray:
    """Raised to TARGET_DBFS RMS when quieter; never lowered (as resemblyzer's preprocess_wav)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms <= 0.0:
        return audio
    gain_db = TARGET_DBFS - 20.0 * np.log10(rms)
    return audio * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else audio


def trim_long_silences(audio: np.ndarray) -> np.ndarray:
    """The clip with every silence cut to at most about MAX_SILENCE_SECONDS (all of it when
    nothing is voiced)."""
    voiced = sc.voiced_frames(sc.to_dbfs(sc.frame_rms(audio)))
    if not voiced.any():
        return audio
    reach = round(MAX_SILENCE_SECONDS / 2 / sc.FRAME_SECONDS)
    kept = np.convolve(voiced.astype(np.int32), np.ones(2 * reach + 1, dtype=np.int32), mode="same") > 0
    frame = round(sc.FRAME_SECONDS * SAMPLE_RATE)
    mask = np.repeat(kept, frame)[: audio.size]
    return audio[mask]


def partial_starts(samples: int) -> list[int]:
    """First mel frame of each 1.6 s window over a clip of `samples` (resemblyzer's slicing)."""
    frames = int(np.ceil((samples + 1) / HOP_SAMPLES))
    step = round(SAMPLE_RATE / PARTIALS_PER_SECOND / HOP_SAMPLES)
    starts = list(range(0, max(1, frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP_SAMPLES
    coverage = (samples - last) / (PARTIAL_FRAMES * HOP_SAMPLES)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def partial_mels(clip: np.ndarray) -> np.ndarray:
    """[windows, PARTIAL_FRAMES, MEL_BANDS] of one clip (non-finite samples zeroed), after preprocessing."""
    audio = np.nan_to_num(np.asarray(clip, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    audio = trim_long_silences(normalize_volume(audio))
    starts = partial_starts(audio.size)
    needed = (starts[-1] + PARTIAL_FRAMES) * HOP_SAMPLES
    if needed > audio.size:
        audio = np.pad(audio, (0, needed - audio.size))
    mel = mel_spectrogram(audio)
    return np.stack([mel[start : start + PARTIAL_FRAMES] for start in starts])


# -- the encoder ------------------------------------------------------------------------


class ResemblyzerEmbedder:
    """GE2E embeddings (256 values, L2-normed, non-negative) of 16 kHz mono clips."""

    def __init__(self, encoder: Any, device: str) -> None:
        self.encoder = encoder
        self.device = device

    def embed(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        if not audio:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        windows = [partial_mels(clip) for clip in audio]
        owners = np.repeat(np.arange(len(windows)), [w.shape[0] for w in windows])
        partials = self._encode(np.concatenate(windows))
        out = np.zeros((len(windows), EMBEDDING_SIZE), dtype=np.float64)
        np.add.at(out, owners, partials)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _encode(self, mels: np.ndarray) -> np.ndarray:
        import torch

        vectors = []
        with torch.inference_mode():
            for start in range(0, mels.shape[0], PARTIALS_PER_BATCH):
                batch = torch.from_numpy(mels[start : start + PARTIALS_PER_BATCH]).to(self.device)
                _, (hidden, _) = self.encoder["lstm"](batch)
                raw = torch.relu(self.encoder["linear"](hidden[-1]))
                vectors.append(torch.nn.functional.normalize(raw, dim=1).float().cpu().numpy())
        return np.concatenate(vectors)


def load_resemblyzer_embedder(spec: str | None, device: str) -> ResemblyzerEmbedder:
    """The GE2E encoder with the bundled weights (or a weights file in the same format) on `device`."""
    import torch

    path = weights_path(spec)
    try:
        # weights_only: tensors and plain containers only, so a weights file cannot run code.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else checkpoint
        encoder = torch.nn.ModuleDict(
            {
                "lstm": torch.nn.LSTM(MEL_BANDS, HIDDEN_SIZE, LSTM_LAYERS, batch_first=True),
                "linear": torch.nn.Linear(HIDDEN_SIZE, EMBEDDING_SIZE),
            }
        )
        # The checkpoint also holds GE2E's training-only similarity scale and bias.
        encoder.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    except Exception as exc:  # torch.load's refusals (UnpicklingError), OSError, a state dict that does not fit
        raise ModelLoadError(f"cannot load resemblyzer speaker weights {str(path)!r}: {first_line(exc)}") from exc
    return ResemblyzerEmbedder(encoder.to(device).eval(), device)
