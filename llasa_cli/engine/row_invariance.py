"""Batch-independent arithmetic for the language model on the CPU: each row of a batch computes,
bit for bit, what it would compute alone, so a segment's codes do not depend on the batch size.

Per-row noise (`sampling`) is not enough: the noise only picks a point on each row's cumulative
distribution, and that distribution is computed from the LM's float logits. Two things made a
row's logits differ in the last bits with what else was in the batch:

- The BLAS picks its matrix-multiply kernel by the number of rows. With torch's MKL (measured on
  an x86-64 AMD EPYC) a row multiplied in a call of 1, 2 or 3 rows, or in the short tail of a
  threaded call (5, 6, 7, 9... rows), is summed in another order than a row of a call whose row
  count is a multiple of four.
  Decoding multiplies one row per live segment, so a batch of 1, 2 or 5 rounds differently.
- Left padding moves a row's keys along the attention's reduction axis, which the kernel sums in
  blocks, so a padded row's attention rounds differently from the same row unpadded.

The differences are ~1e-5 in the logits, but speech codes are drawn from 65,537 ids: once in a few
thousand tokens the draw lands within that distance of a boundary and picks the neighbouring id;
from there the row's codes go their own way. Measured with the tiny test models: 7 of 29
segments changed between batch sizes 1, 2 and 5 (after 4 to 701 codes).

`make_row_invariant(model)` removes both causes for the CPU path: inside `row_invariant_calls()`,
every linear layer (and the speech head, `tiled_linear`) multiplies a row count rounded up to a
multiple of ROW_TILE (zero rows are appended and their results dropped), and attention runs row by
row over each row's own unpadded keys (`row_wise_attention`, told where each row's real tokens
start by `row_starts`). Other callers of the model (the benchmark's `model.generate`) get plain
linear layers and SDPA with its usual masks.
Rounding the logits or sampling in float64 would not do: the hidden states already differ, and any
rounding rule has boundaries that a 1e-5 difference can cross.

What holds: on the CPU, on one machine with the same torch, transformers and number of threads, a
row's logits are identical alone and in any batch, at any position, whichever rows leave the batch
(tests/test_lm.py checks it; the thread count does change the rounding of some kernels). GPUs keep
their batched kernels (a per-row attention loop would cost a kernel launch per row and layer, and
cuBLAS too picks its kernels by shape, which nothing here controls), so there codes can differ
between batch sizes; each is an equally valid sample.

The price: a decoding step with fewer than ROW_TILE live rows multiplies ROW_TILE rows. With the
tiny test models (whose cost is the 65,537-wide speech head) batch 1 took about 2.5x as long,
batch 4 about 10% and batch 8 about 5% longer.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

# Matmuls are fed row counts that are a multiple of this: MKL's kernels sum every row of such a
# call in one order, wherever the row sits (measured with torch 2.13's MKL on x86-64 at 1 to 16
# threads, for float32, bfloat16 and float16; tests/test_lm.py checks it on the machine at hand).
ROW_TILE = 4
ROW_WISE_ATTENTION = "llasa_row_wise"
_TILED = ContextVar("llasa_row_tiled_linear", default=False)


@contextmanager
def row_invariant_calls() -> Iterator[None]:
    """Within this block, the linear layers of models passed to `make_row_invariant` are row-tiled."""
    token = _TILED.set(True)
    try:
        yield
    finally:
        _TILED.reset(token)


def tiled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`torch.nn.functional.linear`, computed on a row count rounded up to a multiple of ROW_TILE."""
    width = x.shape[-1]
    rows = x.numel() // width
    short = -rows % ROW_TILE
    if not short:
        return torch.nn.functional.linear(x, weight, bias)
    flat = x.reshape(rows, width)
    padded = torch.cat([flat, flat.new_zeros((short, width))])
    out = torch.nn.functional.linear(padded, weight, bias)[:rows]
    return out.reshape(*x.shape[:-1], out.shape[-1])


def _linear_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    linear = tiled_linear if _TILED.get() else torch.nn.functional.linear
    return linear(x, self.weight, self.bias)


def row_wise_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    row_starts: list[int] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function: each row attends over its own keys from `row_starts[row]`
    on (its left padding left out), in a call of its own, so it sees the shapes it would see alone.

    Handles the two calls the decode loop makes: a prefill (as many queries as keys, causal) and
    one new token per row. Without `row_starts` (a caller other than the generator) it is SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if row_starts is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)
    rows, heads, queries, head_dim = query.shape
    keys = key.shape[2]
    if queries not in (1, keys):
        raise ValueError(f"row-wise attention runs a prefill or one new token, not {queries} queries on {keys} keys")
    out = query.new_zeros((rows, queries, heads, head_dim))
    for row, start in enumerate(row_starts):
        first_query = start if queries == keys else 0
        attended = torch.nn.functional.scaled_dot_product_attention(
            query[row : row + 1, :, first_query:],
            key[row : row + 1, :, start:],
            value[row : row + 1, :, start:],
            is_causal=queries > 1,
            scale=scaling,
            enable_gqa=True,
        )
        out[row, first_query:] = attended[0].transpose(0, 1)
    return out, None


def row_starts(mask: torch.Tensor) -> list[int]:
    """Where each row's real tokens start in a left-padded [B, L] attention mask (its count of pads)."""
    return (mask.shape[1] - mask.sum(dim=-1)).tolist()


def make_row_invariant(model: Any) -> None:
    """Switch a transformers causal LM, in place, to row-tiled linear layers (inside
    `row_invariant_calls()`) and row-wise attention (for forward calls given `row_starts=`).
    Other calls compute as before: plain linear layers and SDPA."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ROW_WISE_ATTENTION, row_wise_attention)
    # Callers without `row_starts` fall back to SDPA, which needs SDPA's padding and causal mask
    # (transformers builds no mask for an attention function it has no mask function for).
    AttentionMaskInterface.register(ROW_WISE_ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = types.MethodType(_linear_forward, module)
    model.set_attn_implementation(ROW_WISE_ATTENTION)
