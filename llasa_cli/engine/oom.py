"""Out-of-memory back-off for batched generation, and a batch size estimate from free memory.

`OomBackoffGenerator` wraps any `SpeechGenerator`. When a batch runs out of accelerator memory
it frees the allocator's cache and runs the batch again in two halves, recursively, down to one
request; a single request that still does not fit raises `DeviceUnavailableError` (exit code
22: the device cannot serve this model and segment, whatever the batch size). The size that
worked is remembered, so later batches are cut to it up front instead of failing again. Results
come back complete and in request order, as from the wrapped generator; since every row draws
its noise from its own seed (`sampling`), the halves give the same codes the whole batch would.

`suggest_batch_size` estimates how many rows fit in a given amount of free memory from the
model's config: the key/value cache of a full context per row, plus the sampling and prefill
work space. `auto_batch_size` feeds it the device's free memory (`free_device_memory`) to back
`--batch-size auto`; the back-off catches an estimate that was too bold.

torch is never imported at module import: an out-of-memory error can only come from torch when
torch is already loaded, so it is looked up in `sys.modules`; `free_device_memory` imports it
inside (it only runs once the models are loaded).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from ..errors import DeviceUnavailableError
from ..options import DEFAULT_BATCH_SIZE
from .protocols import GenerationRequest, GenerationResult, SpeechGenerator, VoicePrompt

# Lower-case fragments of the messages allocators raise when memory runs out: CUDA and MPS
# ("CUDA out of memory", "MPS backend out of memory"), the CPU allocator ("DefaultCPUAllocator:
# can't allocate memory" / "not enough memory"), and MPS buffers above the device's limit.
OOM_MESSAGE_MARKERS = (
    "out of memory",
    "can't allocate memory",
    "not enough memory",
    "invalid buffer size",
)
BF16_BYTES = 2
FLOAT32_BYTES = 4
INT64_BYTES = 8
KV_TENSORS = 2  # a key and a value per layer, head and position
# Sampling holds about this many [rows, CODEBOOK_SIZE + 1] float32 / int64 tensors at once
# (logits, filtered logits, probabilities, the rejection check's mask and product, and the
# fallback's full sort of values + order for rows top-p rejected every draw).
SAMPLING_TENSORS = 10
# Prefill: the MLP holds gate, up and their product ([prompt, intermediate]) per row.
PREFILL_MLP_TENSORS = 3
DEFAULT_PROMPT_TOKENS = 512  # a voice prompt of ~8 s (400 codes) plus its text and the segment's
USABLE_FRACTION = 0.8  # of the free memory: room for fragmentation, the codec and stray buffers
MAX_SUGGESTED_BATCH = 256
# --batch-size auto on the CPU: no memory query, a fixed size. CPU matmuls are compute-bound already
# at a few rows, so larger batches add little throughput, while each batch takes longer (Ctrl-C
# waits for the batch in flight, progress moves in bigger steps). RAM is rarely the limit there,
# and the back-off still catches the CPU allocator's out-of-memory errors.
CPU_AUTO_BATCH_SIZE = DEFAULT_BATCH_SIZE
GIB = 1 << 30


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocator's out-of-memory error (CUDA, MPS, CPU) or Python's MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    message = str(exc).lower()
    return any(marker in message for marker in OOM_MESSAGE_MARKERS)


def free_accelerator_memory() -> None:
    """Drop unreachable tensors, then give cached blocks back to the CUDA / MPS driver."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    if mps is not None and backend is not None and backend.is_available():
        mps.empty_cache()


class OomBackoffGenerator:
    """`SpeechGenerator` that halves a batch that runs out of memory and remembers the size that fits.

    `batch_limit` is None until the first out-of-memory error, then the largest batch size run
    since (requests beyond it are run in further batches). `on_backoff(failed, next_size)` is
    called at each halving, e.g. to log it."""

    def __init__(
        self,
        inner: SpeechGenerator,
        *,
        on_backoff: Callable[[int, int], None] | None = None,
        free_memory: Callable[[], None] = free_accelerator_memory,
    ) -> None:
        self.inner = inner
        self.batch_limit: int | None = None
        self.backoffs = 0
        self._on_backoff = on_backoff
        self._free_memory = free_memory

    def __getattr__(self, name: str) -> Any:
        # Anything else (notice, model, tokenizer, sampling...) is the wrapped generator's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return self.inner.prompt_tokens(text, voice)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order; batches larger than `batch_limit` are split first."""
        pending = list(requests)
        results: list[GenerationResult] = []
        start = 0
        while start < len(pending):
            size = len(pending) - start if self.batch_limit is None else min(self.batch_limit, len(pending) - start)
            results.extend(self._attempt(pending[start : start + size]))
            start += size
        return results

    def _attempt(self, batch: list[GenerationRequest]) -> list[GenerationResult]:
        results = self._try(batch)
        if results is not None:
            return results
        # Outside the `except` block: the error's traceback (and the tensors its frames hold) is gone.
        self._free_memory()
        half = (len(batch) + 1) // 2
        self.batch_limit = half if self.batch_limit is None else min(self.batch_limit, half)
        self.backoffs += 1
        if self._on_backoff is not None:
            self._on_backoff(len(batch), half)
        return self.generate(batch)

    def _try(self, batch: list[GenerationRequest]) -> list[GenerationResult] | None:
        """The batch's results, or None when it ran out of memory."""
        try:
            results = list(self.inner.generate(batch))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if len(batch) == 1:
                raise DeviceUnavailableError(
                    "out of memory with a single segment: the device cannot hold this model and segment; "
                    "try --dtype bfloat16 (or float16), a smaller --model, shorter segments "
                    "(--max-segment-seconds) or a shorter voice clip"
                ) from exc
            return None
        if len(results) != len(batch):
            raise RuntimeError(f"the generator returned {len(results)} results for {len(batch)} requests")
        return results


# -- batch size from free memory ------------------------------------------------------


def _config_value(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def kv_bytes_per_token(model_config: Any, dtype_bytes: int = BF16_BYTES) -> int:
    """Key/value cache bytes one token takes: 2 * layers * kv_heads * head_dim * dtype size."""
    layers = int(_config_value(model_config, "num_hidden_layers"))
    heads = int(_config_value(model_config, "num_attention_heads"))
    kv_heads = int(_config_value(model_config, "num_key_value_heads") or heads)
    head_dim = _config_value(model_config, "head_dim") or int(_config_value(model_config, "hidden_size")) // heads
    return KV_TENSORS * layers * kv_heads * int(head_dim) * dtype_bytes


def bytes_per_row(
    model_config: Any,
    dtype_bytes: int = BF16_BYTES,
    context_tokens: int = CONTEXT_TOKENS,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
) -> int:
    """Memory one batch row needs at most: a full context's cache, sampling tensors, prefill activations."""
    cache = kv_bytes_per_token(model_config, dtype_bytes) * context_tokens
    sampling = SAMPLING_TENSORS * (CODEBOOK_SIZE + 1) * INT64_BYTES
    intermediate = int(_config_value(model_config, "intermediate_size") or 0)
    heads = int(_config_value(model_config, "num_attention_heads"))
    prefill = prompt_tokens * (PREFILL_MLP_TENSORS * intermediate + heads * prompt_tokens) * dtype_bytes
    return cache + sampling + prefill


def suggest_batch_size(
    free_bytes: int,
    model_config: Any,
    *,
    dtype_bytes: int = BF16_BYTES,
    context_tokens: int = CONTEXT_TOKENS,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    max_batch: int = MAX_SUGGESTED_BATCH,
) -> int:
    """Rows that fit in USABLE_FRACTION of `free_bytes` (memory left after the weights are loaded),
    between 1 and `max_batch`. `model_config` is a transformers config or a mapping of its fields."""
    per_row = bytes_per_row(model_config, dtype_bytes, context_tokens, prompt_tokens)
    fitting = int(max(0, free_bytes) * USABLE_FRACTION) // per_row
    return max(1, min(max_batch, fitting))


# -- --batch-size auto ------------------------------------------------------------------


def free_device_memory(device: str) -> int | None:
    """Bytes free for new tensors on `device` ("cuda", "cuda:1", "mps"); None on the CPU, or on
    an MPS build of torch that cannot say (older than 2.5)."""
    import torch

    where = torch.device(device)
    if where.type == "cuda":
        free, _total = torch.cuda.mem_get_info(where)
        return int(free)
    if where.type == "mps":
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        allocated = getattr(torch.mps, "driver_allocated_memory", None)
        if recommended is None or allocated is None:
            return None
        return max(0, int(recommended()) - int(allocated()))
    return None


def _model_shape(generator: Any) -> tuple[Any, int]:
    """(config, bytes per cache element) of the generator's language model, unwrapping the back-off."""
    language_model = getattr(generator, "inner", generator)
    model = getattr(language_model, "model", None)
    dtype_bytes = getattr(getattr(model, "dtype", None), "itemsize", BF16_BYTES)
    return getattr(model, "config", None), int(dtype_bytes)


def auto_batch_size(
    generator: Any,
    device: str,
    free_memory: Callable[[str], int | None] | None = None,
) -> tuple[int, str]:
    """The batch size for `--batch-size auto` and a line telling the user how it was chosen.

    Call it with the models loaded, so their weights are already out of the free memory. On the
    CPU, or where the free memory or the model's shape is unknown, it is CPU_AUTO_BATCH_SIZE /
    DEFAULT_BATCH_SIZE. `free_memory(device)` (default `free_device_memory`) is the query, for tests."""
    if device.startswith("cpu"):
        return CPU_AUTO_BATCH_SIZE, f"batch size auto: {CPU_AUTO_BATCH_SIZE} (fixed on the CPU)"
    free_bytes = (free_memory or free_device_memory)(device)
    config, dtype_bytes = _model_shape(generator)
    if free_bytes is None or config is None:
        return DEFAULT_BATCH_SIZE, f"batch size auto: {DEFAULT_BATCH_SIZE} (free memory on {device} unknown)"
    size = suggest_batch_size(free_bytes, config, dtype_bytes=dtype_bytes)
    return size, f"batch size auto: {size} (from {free_bytes / GIB:.1f} GiB free on {device})"
