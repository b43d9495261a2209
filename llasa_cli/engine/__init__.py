"""The speech engine: the Llasa language model and the X-Codec2 codec behind small protocols.

Everything above the engine talks to `SpeechGenerator`, `CandidateGenerator` and `SpeechCodec`
(protocols.py) with NumPy arrays. `load_speech_models` loads the real models; the classes that
hold torch tensors (`LlasaGenerator`, `LmCandidateGenerator`, `XCodec`) are imported on first use,
so importing this package costs no torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch_size import ModelShape, auto_batch_size, suggest_batch_size
from .devices import pick_device, resolve_dtype
from .hub import ModelSource, load_pretrained, resolve_spec
from .loading import SpeechModels, load_codec, load_generator, load_speech_models
from .oom import OomBackoffGenerator, is_out_of_memory
from .prompt import SpeechVocab, build_prompt_ids, speech_token
from .protocols import (
    Branch,
    CandidateGenerator,
    Extension,
    GenerationRequest,
    GenerationResult,
    SpeechCodec,
    SpeechGenerator,
    Started,
    VoicePrompt,
)
from .sampling import sample_next, segment_seed

if TYPE_CHECKING:
    from .candidates import LmCandidateGenerator
    from .codec import XCodec
    from .generator import LlasaGenerator

# Public classes whose modules import torch: loaded when first asked for.
_TORCH_CLASSES = {
    "LlasaGenerator": "generator",
    "LmCandidateGenerator": "candidates",
    "XCodec": "codec",
}

__all__ = [
    "Branch",
    "CandidateGenerator",
    "Extension",
    "GenerationRequest",
    "GenerationResult",
    "LlasaGenerator",
    "LmCandidateGenerator",
    "ModelShape",
    "ModelSource",
    "OomBackoffGenerator",
    "SpeechCodec",
    "SpeechGenerator",
    "SpeechModels",
    "SpeechVocab",
    "Started",
    "VoicePrompt",
    "XCodec",
    "auto_batch_size",
    "build_prompt_ids",
    "is_out_of_memory",
    "load_codec",
    "load_generator",
    "load_pretrained",
    "load_speech_models",
    "pick_device",
    "resolve_dtype",
    "resolve_spec",
    "sample_next",
    "segment_seed",
    "speech_token",
    "suggest_batch_size",
]


def __getattr__(name: str) -> Any:
    if name not in _TORCH_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_TORCH_CLASSES[name]}", __name__), name)
