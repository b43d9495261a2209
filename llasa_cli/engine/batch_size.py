"""How many segments a batch can hold: an estimate from free memory and the model's shape.

`suggest_batch_size` estimates how many rows fit in a given amount of free memory from the
model's config: the key/value cache of a full context per row, plus the sampling and prefill
work space. `auto_batch_size` feeds it the device's free memory (`devices.free_device_memory`)
to back `--batch-size auto`; the out-of-memory back-off (`oom.py`) catches an estimate that was
too bold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from ..options import DEFAULT_BATCH_SIZE
from .devices import free_device_memory

BF16_BYTES = 2
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


@dataclass(frozen=True)
class ModelShape:
    """What sizes a batch: the language model's config (layers, heads, widths) and the bytes of one
    element of its key/value cache (its dtype's size)."""

    config: Any
    dtype_bytes: int = BF16_BYTES


def auto_batch_size(
    shape: ModelShape | None,
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
    if free_bytes is None or shape is None:
        return DEFAULT_BATCH_SIZE, f"batch size auto: {DEFAULT_BATCH_SIZE} (free memory on {device} unknown)"
    size = suggest_batch_size(free_bytes, shape.config, dtype_bytes=shape.dtype_bytes)
    return size, f"batch size auto: {size} (from {free_bytes / GIB:.1f} GiB free on {device})"
