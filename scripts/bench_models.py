"""The random-weight models `scripts/bench.py` times, built from configs (no download).

Each model is saved to a folder and loaded back through llasa-cli's own loaders
(`load_generator`, `load_codec`, `verify.load_verifier`), so the code users run is what is timed.

- `tiny`: the test models' shapes (`llasa_cli.testing.tiny_models`).
- `1b`: Llasa-1B (Llama hidden 2048, 16 layers, 32 heads, 8 KV heads, MLP 8192, tied embeddings,
  vocabulary 193,800), a default-size X-Codec2, Whisper in the whisper-large-v3-turbo shape
  (openai-whisper's `turbo`: 128 mel bins, 1280 wide, 20 heads, 32 encoder and 4 decoder layers,
  vocabulary 51,866) and WavLMForXVector in the wavlm-base-plus(-sv) shape (transformers'
  WavLMConfig defaults: 768 wide, 12 layers, 12 heads, group-norm front end, x-vector TDNN
  512-512-512-512-1500 into 512-d embeddings).

Whisper is saved as the folder (`model.safetensors` + `dims.json`) that the openai-whisper backend
loads. Random weights never emit end-of-text, so every transcript would run to Whisper's cap of
n_text_ctx // 2 = 224 decoder steps; a real transcript of a segment is its text in ~4-character
tokens. Unless `--asr-tokens-per-second 0`, the text context is shrunk so that the cap is the
transcript length of the longest segment (every other size stays the model's): the decoder runs
as many steps as it would on real speech. The decoder's positional table is the only weight that
changes size, and its size costs no time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llasa_cli.constants import CHARS_PER_SECOND, CODEBOOK_SIZE, CODES_PER_SECOND

# Llasa-1B is Llama-3.2-1B's shape; speed does not depend on the weights' values.
LLASA_1B_LM = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32}
LLASA_1B_LM |= {"num_key_value_heads": 8, "rope_theta": 500_000.0, "max_position_embeddings": 131_072}
LLASA_1B_LM["tie_word_embeddings"] = True
LLASA_1B_VOCAB = 193_800
# whisper-large-v3-turbo as openai-whisper's ModelDimensions (transformers: d_model 1280,
# encoder_layers 32, decoder_layers 4, 20 heads, ffn 5120 = 4 x 1280, max_target_positions 448).
WHISPER_TURBO = {"n_mels": 128, "n_audio_ctx": 1500, "n_audio_state": 1280, "n_audio_head": 20, "n_audio_layer": 32}
WHISPER_TURBO |= {"n_vocab": 51_866, "n_text_ctx": 448, "n_text_state": 1280, "n_text_head": 20, "n_text_layer": 4}
WHISPER_CHARS_PER_TOKEN = 4.0  # English text in Whisper's byte-level BPE
DEFAULT_ASR_TOKENS_PER_SECOND = CHARS_PER_SECOND / WHISPER_CHARS_PER_TOKEN
# <|startoftranscript|><|en|><|transcribe|><|notimestamps|>: the decoder's prompt before the transcript.
WHISPER_PROMPT_TOKENS = 4
REFERENCE_SECONDS = 3.0  # the narrator clip the speaker check compares with


@dataclass(frozen=True)
class BenchModels:
    """The loaded models; `verifier` (a CompositeVerifier) and `reference` are None with --no-verify."""

    generator: Any
    codec: Any
    device: str
    verifier: Any | None = None
    reference: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what the verifiers are: shapes, parameters, caps


def whisper_text_ctx(full_ctx: int, max_seconds: float, tokens_per_second: float) -> int:
    """Whisper's n_text_ctx for transcripts of `max_seconds` of speech (its cap is n_text_ctx // 2
    decoder steps: the transcript and its end token); `full_ctx` when tokens_per_second <= 0."""
    if tokens_per_second <= 0:
        return full_ctx
    tokens = max(WHISPER_PROMPT_TOKENS, math.ceil(max_seconds * tokens_per_second))
    return min(full_ctx, 2 * (tokens + 1))


def build_lm(out: Path, size: str, device: str) -> None:
    """The Llasa LM of `size`, random, saved to `out` (bfloat16 on CUDA, as the engine loads it)."""
    from llasa_cli.testing.tiny_models import TINY_LM, build_llama

    if size == "tiny":
        build_llama(out, TINY_LM, device=device)
    else:
        build_llama(out, LLASA_1B_LM, LLASA_1B_VOCAB, device, bfloat16=device.startswith("cuda"))


def _build_codec(out: Path, size: str, device: str) -> None:
    from llasa_cli.testing.tiny_models import TINY_XCODEC2, build_xcodec2

    build_xcodec2(out, TINY_XCODEC2 if size == "tiny" else None, device)


def _build_wavlm(out: Path, size: str, device: str) -> None:
    """WavLMForXVector + the feature extractor the tiny models ship (what `load_wavlm_embedder` reads)."""
    from llasa_cli.testing.tiny_models import TINY_WAVLM, build_wavlm

    build_wavlm(out, TINY_WAVLM if size == "tiny" else None, device)


def _build_whisper(out: Path, size: str, device: str, max_seconds: float, tokens_per_second: float) -> dict:
    """An openai-whisper model in the folder format `load_transcriber` reads; returns its dims."""
    from llasa_cli.testing.tiny_models import TINY_WHISPER, build_whisper

    dims = dict(TINY_WHISPER if size == "tiny" else WHISPER_TURBO)
    dims["n_text_ctx"] = whisper_text_ctx(dims["n_text_ctx"], max_seconds, tokens_per_second)
    if not build_whisper(out, dims, device):
        raise SystemExit("bench: the verifiers need openai-whisper (pip install openai-whisper), or use --no-verify")
    return dims


def _logged(label: str, call: Callable[[], Any]) -> Any:
    """call()'s value; how long it took goes to stderr (building the 1b models on a CPU takes minutes)."""
    begin = time.perf_counter()
    value = call()
    print(f"bench: {label}: {time.perf_counter() - begin:.1f} s", file=sys.stderr, flush=True)
    return value


def _parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _reference_audio(codec: Any, seed: int) -> np.ndarray:
    """The narrator's clip, as the pipeline makes it: the codec's decode of (here random) voice codes."""
    codes = np.random.default_rng(seed).integers(0, CODEBOOK_SIZE, round(REFERENCE_SECONDS * CODES_PER_SECOND))
    return codec.decode([codes])[0]


def _load_verifier(folder: Path, args: argparse.Namespace, device: str, codec: Any) -> tuple[Any, np.ndarray, dict]:
    """Build the verifier models and load them through `verify.load_verifier` (ASR + speaker + signal)."""
    from llasa_cli.options import VerifyOptions
    from llasa_cli.verify.composite import load_verifier

    whisper = folder / "whisper"
    dims = _logged(
        "built Whisper",
        lambda: _build_whisper(whisper, args.size, device, args.max_seconds, args.asr_tokens_per_second),
    )
    _logged("built WavLM", lambda: _build_wavlm(folder / "wavlm", args.size, device))
    options = VerifyOptions(
        asr_model=str(folder / "whisper"), speaker_model=str(folder / "wavlm"), batch_size=args.verify_batch_size
    )
    reference = _reference_audio(codec, args.seed)
    verifier = _logged("loaded the verifiers", lambda: load_verifier(options, device, reference, "en"))
    info = {
        "asr": "openai-whisper, " + ("tiny" if args.size == "tiny" else "whisper-large-v3-turbo") + " shape",
        "asr_parameters": _parameters(verifier.transcriber.model),
        "asr_decoder_steps": dims["n_text_ctx"] // 2,  # per batch at most: transcript tokens + the end token
        "speaker": "WavLMForXVector, " + ("tiny" if args.size == "tiny" else "wavlm-base-plus-sv") + " shape",
        "speaker_parameters": _parameters(verifier.embedder.model),
        "verify_batch_size": args.verify_batch_size,
        "reference_seconds": REFERENCE_SECONDS,
    }
    return verifier, reference, info


def load_models(folder: Path, args: argparse.Namespace) -> BenchModels:
    """Build random models of `args.size` in `folder` and load them through the user's loaders."""
    from transformers.utils import logging as hf_logging

    from llasa_cli.engine.devices import pick_device
    from llasa_cli.engine.loading import load_codec, load_generator
    from llasa_cli.options import EngineOptions, SamplingOptions

    hf_logging.disable_progress_bar()
    device, _ = pick_device(args.device)
    _logged("built the LM", lambda: build_lm(folder / "llasa", args.size, device))
    _logged("built X-Codec2", lambda: _build_codec(folder / "xcodec2", args.size, device))
    engine = EngineOptions(model=str(folder / "llasa"), device=device, dtype=args.dtype)
    generator = _logged("loaded the LM", lambda: load_generator(engine, SamplingOptions(seed=args.seed)))
    codec = _logged("loaded X-Codec2", lambda: load_codec(str(folder / "xcodec2"), device))
    if not args.verify:
        return BenchModels(generator, codec, device)
    verifier, reference, info = _load_verifier(folder, args, device, codec)
    return BenchModels(generator, codec, device, verifier, reference, info)
