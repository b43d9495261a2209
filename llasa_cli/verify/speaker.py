"""Speaker embeddings, to check that every segment keeps the narrator's voice.

Backends behind `SpeakerEmbedder.embed(clips) -> [N, D]`:

- `wavlm` (default): transformers' `WavLMForXVector` with its feature extractor,
  `microsoft/wavlm-base-plus-sv` unless another hub id or local folder is given. Clips are
  sorted by length and batched. Padding would change an embedding when the convolutional front
  end normalises over time (`feat_extract_norm="group"`, as in wavlm-base-plus): such models batch
  only clips of equal length, so a clip's embedding never depends on its batch. Models with
  per-frame layer norm batch any lengths, padded, with an attention mask.
- `resemblyzer`: the GE2E speaker encoder whose weights ship in the PyPI wheel `resemblyzer`
  (resemblyzer_speaker.py): a real speaker model that works offline with nothing to download.
- `ecapa`: speechbrain's ECAPA-TDNN (`speechbrain/spkrec-ecapa-voxceleb`), only where speechbrain
  imports; elsewhere choosing it is a ModelLoadError saying why. speechbrain builds whatever Python
  objects a model's `hyperparams.yaml` names, so only the known ids in `ECAPA_KNOWN_IDS` or a local
  folder the user points at are loaded (`ecapa_source`).

Similarity is the cosine of an embedding with the reference clip's embedding (-1..1).
torch, transformers and speechbrain are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import InvalidOptionError, ModelLoadError, first_line

if TYPE_CHECKING:
    from ..engine.hub import ModelNeed

WAVLM = "wavlm"
ECAPA = "ecapa"
RESEMBLYZER = "resemblyzer"
SPEAKER_BACKENDS = (WAVLM, ECAPA, RESEMBLYZER)
DEFAULT_WAVLM_MODEL = "microsoft/wavlm-base-plus-sv"
DEFAULT_ECAPA_MODEL = "speechbrain/spkrec-ecapa-voxceleb"
# Hub ids whose hyperparams.yaml is speechbrain's stock ECAPA recipe: speechbrain's `from_hparams`
# instantiates any Python object such a file names, so other ids are refused.
ECAPA_KNOWN_IDS = (DEFAULT_ECAPA_MODEL,)
ECAPA_HPARAMS_FILE = "hyperparams.yaml"
WAVLM_MODEL_TYPE = "wavlm"
DEFAULT_EMBED_BATCH_SIZE = 8
# The x-vector TDNN needs a few dozen frames; shorter clips (and empty ones) are zero-padded to this.
MIN_EMBED_SECONDS = 0.5
MIN_EMBED_SAMPLES = int(MIN_EMBED_SECONDS * SAMPLE_RATE)
# Below this much voiced speech a similarity is measured but not judged: it falls with the clip's
# length (resemblyzer, the narrator against its reference on espeak-ng: 0.69-0.84 on 1 s windows,
# 0.84-0.94 on 2 s, 0.88-0.95 on 3 s), so a short title would fail a threshold set on sentences.
MIN_JUDGED_SECONDS = 2.0


class SpeakerEmbedder(Protocol):
    def embed(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings [N, D] (float32) of N 16 kHz mono clips, in order."""
        ...


def cosine_similarity(embeddings: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine of each row of `embeddings` [N, D] with `reference` [D]; 0.0 where a vector is all zeros."""
    matrix = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(ref)
    dots = matrix @ ref
    with np.errstate(divide="ignore", invalid="ignore"):
        cosines = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return np.clip(np.nan_to_num(cosines, nan=0.0), -1.0, 1.0)


def prepare_clip(clip: np.ndarray) -> np.ndarray:
    """Float32 mono, non-finite values zeroed, zero-padded to MIN_EMBED_SAMPLES."""
    audio = np.nan_to_num(np.asarray(clip, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    if audio.size < MIN_EMBED_SAMPLES:
        audio = np.pad(audio, (0, MIN_EMBED_SAMPLES - audio.size))
    return audio


class WavLMEmbedder:
    """x-vectors of `WavLMForXVector`, batched by similar length."""

    def __init__(self, model: Any, extractor: Any, device: str, batch_size: int = DEFAULT_EMBED_BATCH_SIZE) -> None:
        self.model = model
        self.extractor = extractor
        self.device = device
        self.batch_size = batch_size

    def embed(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        clips = [prepare_clip(clip) for clip in audio]
        if not clips:
            return np.zeros((0, int(self.model.config.xvector_output_dim)), dtype=np.float32)
        out: list[np.ndarray | None] = [None] * len(clips)
        for batch in self._batches([clip.size for clip in clips]):
            for index, vector in zip(batch, self._embed_batch([clips[i] for i in batch]), strict=True):
                out[index] = vector
        return np.stack(out).astype(np.float32)

    @property
    def pads_safely(self) -> bool:
        """Whether zero padding leaves the other frames alone (per-frame norm in the conv front end)."""
        return getattr(self.model.config, "feat_extract_norm", "group") == "layer"

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices sorted by length, in batches of at most batch_size (of one length unless padding is safe)."""
        batches: list[list[int]] = []
        for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            last = batches[-1] if batches else None
            fits = last is not None and len(last) < self.batch_size
            if fits and (self.pads_safely or lengths[last[0]] == lengths[index]):
                last.append(index)
            else:
                batches.append([index])
        return batches

    def _embed_batch(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch

        padded = len({clip.size for clip in clips}) > 1
        inputs = self.extractor(
            clips, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        kwargs = {"input_values": inputs["input_values"].to(self.device)}
        if padded:
            kwargs["attention_mask"] = inputs["attention_mask"].to(self.device)
        with torch.inference_mode():
            output = self.model(**kwargs)
        return output.embeddings.float().cpu().numpy()


def load_embedder(
    backend: str, spec: str | None, device: str, batch_size: int = DEFAULT_EMBED_BATCH_SIZE
) -> SpeakerEmbedder:
    """The speaker embedder of `backend` (`wavlm`, `ecapa` or `resemblyzer`) on a resolved device."""
    if backend == WAVLM:
        return load_wavlm_embedder(spec or DEFAULT_WAVLM_MODEL, device, batch_size)
    if backend == ECAPA:
        return load_ecapa_embedder(spec or DEFAULT_ECAPA_MODEL, device)
    if backend == RESEMBLYZER:
        from .resemblyzer_speaker import load_resemblyzer_embedder

        return load_resemblyzer_embedder(spec, device)
    raise InvalidOptionError(f"--speaker-backend must be one of {SPEAKER_BACKENDS}, not {backend!r}")


def speaker_need(backend: str, spec: str | None) -> ModelNeed | None:
    """Whether the speaker model `load_embedder` would load is in the hub cache, and how to fetch
    it; None for a local folder. An ECAPA id off the allow-list is refused here already."""
    from ..engine.hub import ModelNeed, hub_need

    if backend == WAVLM:
        return hub_need(spec or DEFAULT_WAVLM_MODEL, "speaker model", aliases={})
    if backend == ECAPA:
        source = ecapa_source(spec or DEFAULT_ECAPA_MODEL)
        return hub_need(source, "ECAPA speaker model", aliases={}, marker=ECAPA_HPARAMS_FILE)
    if backend == RESEMBLYZER and spec is None:
        from .resemblyzer_speaker import INSTALL_HINT, is_installed

        return ModelNeed("resemblyzer speaker model", RESEMBLYZER, is_installed(), INSTALL_HINT)
    return None


def load_wavlm_embedder(spec: str, device: str, batch_size: int = DEFAULT_EMBED_BATCH_SIZE) -> WavLMEmbedder:
    """`WavLMForXVector` + feature extractor from a hub id or local folder (never remote code)."""
    from transformers import AutoConfig, AutoFeatureExtractor, WavLMForXVector

    from ..engine.hub import load_pretrained, resolve_spec

    source = resolve_spec(spec, aliases={})
    config = load_pretrained(AutoConfig.from_pretrained, source, "speaker model")
    if getattr(config, "model_type", None) != WAVLM_MODEL_TYPE:
        raise ModelLoadError(f"{spec!r} is a {config.model_type!r} model, not a WavLM x-vector speaker model")
    extractor = load_pretrained(AutoFeatureExtractor.from_pretrained, source, "speaker feature extractor")
    model = load_pretrained(WavLMForXVector.from_pretrained, source, "WavLM x-vector speaker model")
    return WavLMEmbedder(model.to(device).eval(), extractor, device, batch_size)


class EcapaEmbedder:
    """speechbrain's ECAPA-TDNN speaker encoder (optional backend)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def embed(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        vectors = []
        for clip in audio:  # one at a time: speechbrain's relative lengths would need sorting too
            wave = torch.from_numpy(prepare_clip(clip)).unsqueeze(0)
            with torch.inference_mode():
                vectors.append(self.encoder.encode_batch(wave).reshape(-1).float().cpu().numpy())
        return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), dtype=np.float32)


def ecapa_source(spec: str) -> str:
    """What speechbrain may load for `spec`: a local folder holding hyperparams.yaml, or a known hub id.

    Raises ModelNotFoundError (a path that does not exist), ModelLoadError (a folder without
    hyperparams.yaml) or InvalidOptionError (any other hub id), before speechbrain is imported."""
    from ..engine.hub import resolve_spec

    source = resolve_spec(spec, aliases={})
    if source.is_local:
        if not (Path(source.location) / ECAPA_HPARAMS_FILE).is_file():
            raise ModelLoadError(f"{spec!r} is not a speechbrain ECAPA folder: it has no {ECAPA_HPARAMS_FILE}")
        return source.location
    if spec not in ECAPA_KNOWN_IDS:
        raise InvalidOptionError(
            f"--speaker-backend ecapa loads only {', '.join(ECAPA_KNOWN_IDS)} or a local folder, not {spec!r}: "
            f"speechbrain builds whatever Python objects a model's {ECAPA_HPARAMS_FILE} names, so an unknown "
            "repository could run code; download it, read its hyperparams.yaml, and pass the folder"
        )
    return spec


def load_ecapa_embedder(spec: str, device: str) -> EcapaEmbedder:
    source = ecapa_source(spec)
    try:
        from speechbrain.inference.speaker import EncoderClassifier
    except Exception as exc:  # ImportError, or torchaudio failing to load its native library
        raise ModelLoadError(
            "--speaker-backend ecapa needs speechbrain (and a torchaudio matching torch), which cannot be "
            f"imported here ({type(exc).__name__}: {first_line(exc)}); use --speaker-backend wavlm"
        ) from exc
    try:
        encoder = EncoderClassifier.from_hparams(source=source, run_opts={"device": device})
    except Exception as exc:
        raise ModelLoadError(f"cannot load the ECAPA speaker model {spec!r}: {exc}") from exc
    if encoder is None:
        raise ModelLoadError(f"cannot load the ECAPA speaker model {spec!r}")
    return EcapaEmbedder(encoder)
