"""Speech recognition behind a small protocol (used to transcribe voice clips).

Backend: openai-whisper. A model is a Whisper name (`base`, `turbo`, ... fetched
by whisper into its cache on first use) or a local folder holding
`model.safetensors` and `dims.json`. Local `.pt` checkpoints are refused: they are
pickles, and this tool never unpickles a file a user hands it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelLoadError, ModelNotFoundError

WHISPER_WEIGHTS_FILE = "model.safetensors"
WHISPER_DIMS_FILE = "dims.json"
DEFAULT_ASR_CUDA = "turbo"
DEFAULT_ASR_CPU = "base"


class Transcriber(Protocol):
    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        """Transcripts of 16 kHz mono clips, in order."""
        ...


def default_asr_model(device: str) -> str:
    return DEFAULT_ASR_CUDA if device == "cuda" else DEFAULT_ASR_CPU


class WhisperTranscriber:
    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device

    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        fp16 = self.device == "cuda"
        texts = []
        for clip in audio:
            result = self.model.transcribe(
                np.asarray(clip, dtype=np.float32), language=language, fp16=fp16, temperature=0.0
            )
            texts.append(str(result["text"]).strip())
        return texts


def load_transcriber(spec: str | None, device: str) -> WhisperTranscriber:
    name = spec or default_asr_model(device)
    path = Path(name)
    if path.is_dir():
        return WhisperTranscriber(_load_whisper_folder(path, device), device)
    if path.suffix == ".pt" or path.is_file():
        raise ModelLoadError(
            f"{name}: local Whisper checkpoints must be a folder with {WHISPER_WEIGHTS_FILE} and {WHISPER_DIMS_FILE} "
            "(.pt files are pickles and are not loaded); or pass a model name such as 'base'"
        )
    return WhisperTranscriber(_load_whisper_named(name, device), device)


def _load_whisper_named(name: str, device: str) -> Any:
    import whisper

    if name not in whisper.available_models():
        raise ModelNotFoundError(
            f"ASR model {name!r} is neither a local folder nor a Whisper model name "
            f"({', '.join(whisper.available_models())})"
        )
    try:
        return whisper.load_model(name, device=device)
    except (OSError, RuntimeError) as exc:  # urllib's URLError is an OSError
        raise ModelNotFoundError(
            f"cannot load Whisper model {name!r} ({exc.__class__.__name__}); fetch it once while online "
            f"(python -c \"import whisper; whisper.load_model('{name}')\") or pass --asr-model FOLDER"
        ) from exc


def _load_whisper_folder(folder: Path, device: str) -> Any:
    import whisper
    from safetensors.torch import load_file

    weights, dims_file = folder / WHISPER_WEIGHTS_FILE, folder / WHISPER_DIMS_FILE
    if not weights.is_file() or not dims_file.is_file():
        raise ModelLoadError(
            f"{folder}: not a Whisper model folder (needs {WHISPER_WEIGHTS_FILE} and {WHISPER_DIMS_FILE})"
        )
    try:
        dims = whisper.model.ModelDimensions(**json.loads(dims_file.read_text()))
        model = whisper.model.Whisper(dims)
        model.load_state_dict(load_file(str(weights)))
    except (ValueError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{folder}: cannot load Whisper weights: {exc}") from exc
    return model.to(device)


def save_whisper_folder(model: Any, folder: Path) -> None:
    """Write a Whisper model in the folder format `load_transcriber` reads."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WHISPER_WEIGHTS_FILE))
    (folder / WHISPER_DIMS_FILE).write_text(json.dumps(asdict(model.dims)))
