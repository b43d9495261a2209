"""Loading the speech models a run needs: the Llasa language model (under the out-of-memory
back-off, and as a branching generator for search) and the X-Codec2 codec, on one device.

`load_speech_models` is what a run calls; `load_generator` and `load_codec` load one model each.
torch and transformers are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelLoadError
from ..options import EngineOptions, SamplingOptions
from .devices import pick_device, resolve_dtype
from .hub import ModelNeed, hub_need, load_pretrained, resolve_spec
from .protocols import CandidateGenerator, SpeechCodec, SpeechGenerator

if TYPE_CHECKING:
    import torch

    from .codec import XCodec
    from .generator import LlasaGenerator

CODEC_MODEL_TYPE = "xcodec2"


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
    """The Llasa LM on the chosen device, ready to `generate`."""
    from .generator import LlasaGenerator

    device, _ = pick_device(options.device)
    model, tokenizer = load_lm(options.model, device, resolve_dtype(options.dtype, device))
    return LlasaGenerator(model, tokenizer, sampling)


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


def speech_model_needs(engine: EngineOptions) -> list[ModelNeed]:
    """The language model and the codec, where they come from the hub (see `hub.require_available`)."""
    needs = [hub_need(engine.model, "Llasa language model"), hub_need(engine.codec, "X-Codec2 codec", aliases={})]
    return [need for need in needs if need is not None]


@dataclass(frozen=True)
class SpeechModels:
    """The models a run speaks with, loaded on one device.

    `generator` is the language model under the out-of-memory back-off; `candidates` is the same
    model as a branching generator for `--beam` / `--best-of` (None where the generator cannot
    branch, e.g. a test's fake). `batch_size` is what `--batch-size auto` resolved to (None: the
    run's own number); `notice` is a line for the user (the CPU fallback, the size auto chose)."""

    generator: SpeechGenerator
    codec: SpeechCodec
    device: str
    candidates: CandidateGenerator | None = None
    notice: str | None = None
    batch_size: int | None = None


def load_speech_models(engine: EngineOptions, sampling: SamplingOptions) -> SpeechModels:
    """The LM (under the out-of-memory back-off, and as a candidate generator) and the codec.
    `--batch-size auto` is resolved here, once both are loaded, so their weights are already out of
    the free memory it is sized from."""
    from .batch_size import auto_batch_size
    from .candidates import LmCandidateGenerator
    from .oom import OomBackoffGenerator

    device, notice = pick_device(engine.device)
    language_model = load_generator(engine, sampling)
    codec = load_codec(engine.codec, device)
    batch_size: int | None = None
    if engine.auto_batch_size:
        # The device the weights landed on, with its index ("cuda:0").
        batch_size, chosen = auto_batch_size(language_model.shape, str(language_model.device))
        notice = f"{notice}; {chosen}" if notice else chosen
    return SpeechModels(
        # A batch that runs out of accelerator memory is halved and retried instead of ending the run.
        generator=OomBackoffGenerator(language_model),
        codec=codec,
        device=device,
        candidates=LmCandidateGenerator(language_model),
        notice=notice,
        batch_size=batch_size,
    )
