"""Finding, loading and placing the models: the only place that calls `from_pretrained`.

A model spec is a short name (`1b`, `3b`, `8b`), a Hugging Face id or a local folder. Errors
are domain errors: a missing path or an id that cannot be fetched is ModelNotFoundError (with
how to download ahead of time), files that are not a model of the expected kind are
ModelLoadError. torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DeviceUnavailableError, ModelLoadError, ModelNotFoundError
from ..options import EngineOptions, SamplingOptions

if TYPE_CHECKING:
    import torch

    from .codec import XCodec
    from .generator import LlasaGenerator

MODEL_ALIASES = {
    "1b": "HKUSTAudio/Llasa-1B",
    "3b": "HKUSTAudio/Llasa-3B",
    "8b": "HKUSTAudio/Llasa-8B",
}
CODEC_MODEL_TYPE = "xcodec2"
CPU_FALLBACK_NOTICE = "no GPU found (CUDA or MPS): running on the CPU, which is much slower"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local folder, or a hub id (fetched or taken from the cache)."""

    spec: str  # as the user wrote it
    location: str  # the folder or the hub id
    is_local: bool


def resolve_spec(spec: str, aliases: dict[str, str] | None = None) -> ModelSource:
    """Short name, hub id or local path; ModelNotFoundError for a path that does not exist."""
    aliases = MODEL_ALIASES if aliases is None else aliases
    cleaned = spec.strip()
    if cleaned.lower() in aliases:
        return ModelSource(spec=spec, location=aliases[cleaned.lower()], is_local=False)
    path = Path(cleaned).expanduser()
    if path.exists():
        return ModelSource(spec=spec, location=str(path.resolve()), is_local=True)
    looks_like_path = path.is_absolute() or cleaned.startswith((".", "~")) or "\\" in cleaned
    if looks_like_path or not _HUB_ID.match(cleaned):
        raise ModelNotFoundError(f"model path {spec!r} does not exist")
    return ModelSource(spec=spec, location=cleaned, is_local=False)


def download_hint(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is not in the local Hugging Face cache and cannot be fetched now (offline?): "
        f"download it ahead of time with `hf download {repo_id}` (or `huggingface-cli download {repo_id}`), "
        "or pass a local path"
    )


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_pretrained(
    loader: Callable[..., _T], source: ModelSource, what: str, *, needs_config: bool = True, **kwargs: Any
) -> _T:
    """Call a `from_pretrained` and turn its failures into ModelNotFoundError / ModelLoadError."""
    if source.is_local:
        folder = Path(source.location)
        if not folder.is_dir():
            raise ModelLoadError(f"{what} path {source.spec!r} is a file, not a model folder")
        if needs_config and not (folder / "config.json").is_file():
            raise ModelLoadError(f"{source.spec!r} is not a {what} folder: it has no config.json")
    _quiet_loading()
    try:
        return loader(source.location, local_files_only=source.is_local, **kwargs)
    except Exception as exc:
        if not source.is_local and not _in_hub_cache(source.location):
            raise ModelNotFoundError(download_hint(source.location)) from exc
        raise ModelLoadError(f"cannot load {what} from {source.spec!r}: {_first_line(exc)}") from exc


def _quiet_loading() -> None:
    """transformers' per-file progress bars would interleave with our own progress on stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


# -- devices and dtypes -----------------------------------------------------------


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str) -> tuple[str, str | None]:
    """The device to run on and a notice when `auto` falls back to the CPU.

    auto: CUDA, then MPS, then CPU. Asking for cuda or mps where it is missing is an error,
    never a silent fallback."""
    if requested == "auto":
        if _cuda_available():
            return "cuda", None
        if _mps_available():
            return "mps", None
        return "cpu", CPU_FALLBACK_NOTICE
    if requested == "cuda" and not _cuda_available():
        raise DeviceUnavailableError("--device cuda was asked for, but torch sees no CUDA GPU")
    if requested == "mps" and not _mps_available():
        raise DeviceUnavailableError("--device mps was asked for, but torch sees no Apple MPS device")
    if requested not in ("cuda", "mps", "cpu"):
        raise DeviceUnavailableError(f"unknown device {requested!r}")
    return requested, None


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """auto: bfloat16 on CUDA, float32 on CPU and MPS."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]


# -- loaders ----------------------------------------------------------------------


def load_lm(spec: str, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """(causal LM on `device` in eval mode, tokenizer) for a Llasa spec.

    The tokenizer is checked for the Llasa vocabulary before the (large) model loads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .prompt import SpeechVocab

    source = resolve_spec(spec)
    if source.is_local and Path(source.location).is_dir() and not (Path(source.location) / "config.json").is_file():
        # Checked before the tokenizer, whose own error for a non-model folder trails off unhelpfully.
        raise ModelLoadError(f"{spec!r} is not a Llasa model folder: it has no config.json")
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, source, "Llasa tokenizer", needs_config=False)
    SpeechVocab.from_tokenizer(tokenizer)
    model = load_pretrained(AutoModelForCausalLM.from_pretrained, source, "Llasa language model", dtype=dtype)
    return model.to(device).eval(), tokenizer


def load_generator(options: EngineOptions, sampling: SamplingOptions) -> LlasaGenerator:
    """The Llasa LM on the chosen device, ready to `generate`; a CPU fallback is in `.notice`."""
    from .generator import LlasaGenerator

    device, notice = pick_device(options.device)
    model, tokenizer = load_lm(options.model, device, resolve_dtype(options.dtype, device))
    return LlasaGenerator(model, tokenizer, sampling, notice=notice)


def load_codec(spec: str, device: str) -> XCodec:
    """X-Codec2 (transformers port) in float32 on `device` (`auto` allowed), with its extractor settings."""
    import torch
    from transformers import AutoConfig, Xcodec2Model

    from .codec import XCodec, load_extractor_settings

    if device == "auto":
        device, _ = pick_device(device)
    else:
        pick_device(device)
    source = resolve_spec(spec, aliases={})
    config = load_pretrained(AutoConfig.from_pretrained, source, "X-Codec2 codec")
    if getattr(config, "model_type", None) != CODEC_MODEL_TYPE:
        raise ModelLoadError(f"{spec!r} is a {config.model_type!r} model, not an X-Codec2 codec")
    model = load_pretrained(Xcodec2Model.from_pretrained, source, "X-Codec2 codec", dtype=torch.float32)
    settings = load_pretrained(load_extractor_settings, source, "X-Codec2 feature extractor", needs_config=False)
    return XCodec(model.to(device).eval(), settings)
