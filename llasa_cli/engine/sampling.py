"""Seeds and per-row sampling that does not depend on what else is in the batch.

`segment_seed` turns (run seed, text, attempt) into a row seed, stable across processes and
machines. `sample_next` draws one token per row from the filtered softmax by inverting its
cumulative mass at a uniform number hashed from (row seed, step) only, so a row given the same
logits gets the same tokens alone, in any batch, or resumed after a crash. (The logits themselves
are the same bits in any batch only where the generator makes them so: `row_invariance`.)

The filters act on [B, V] float logits, row by row: repetition penalty, temperature, top-k
(`filter_logits`); top-p is applied by the sampler itself, by rejection, which needs no sort of
the 65,537 speech ids (see TOP_P_DRAWS). The generator scores only the allowed ids (speech tokens
+ end), so nothing else can be drawn. torch is imported inside the functions, so `segment_seed` costs no torch import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..options import SamplingOptions

if TYPE_CHECKING:
    import torch

SEED_BITS = 63
_SEED_MASK = (1 << SEED_BITS) - 1
_MASK64 = (1 << 64) - 1
_SEED_DOMAIN = b"llasa-cli/segment-seed/v1"


def segment_seed(run_seed: int, text: str, attempt: int = 0) -> int:
    """A 63-bit seed for one segment: a pure function of the run seed, the text and the retry number."""
    payload = b"\x00".join([_SEED_DOMAIN, str(int(run_seed)).encode(), str(int(attempt)).encode(), text.encode()])
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & _SEED_MASK


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def step_seed(row_seed: int, step: int) -> int:
    """The seed of one row's noise at one decoding step."""
    return _splitmix64(_splitmix64(row_seed & _MASK64) ^ (step & _MASK64)) & _SEED_MASK


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """CTRL-style penalty on ids already in the row ([B, V] bool `seen`): divide positive logits, multiply negative."""
    import torch

    if seen is None or penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def apply_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep each row's `top_k` highest logits (ties at the boundary kept); 0 keeps all."""
    import torch

    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_drop_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """[..., V] bool: the ids top-p drops, by its definition: a full sort, dropping each id whose more
    likely ids already hold `top_p` of the mass (the likeliest id is always kept). The sampler's
    exact fallback; its rejection path draws from the same set without sorting."""
    import torch

    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    return torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)


def filter_logits(logits: torch.Tensor, options: SamplingOptions, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Repetition penalty, then (unless greedy) temperature and top-k on float32 [B, V] logits.

    Top-p is left to the sampler, which applies it without sorting (`sample_next`)."""
    logits = apply_repetition_penalty(logits.float(), seen, options.repetition_penalty)
    if options.greedy:
        return logits
    return apply_top_k(logits / options.temperature, options.top_k)


# Top-p by rejection: draw from the whole softmax, keep the draw if it lies in the top-p set,
# else draw again. That is exactly a draw from the renormalised top-p set, and checking one id
# ("is the mass of the ids more likely than it below top_p?") is one pass over the row, where
# finding the set takes a sort of 65,537 ids. A draw is rejected with probability below
# 1 - top_p, so at the default 0.95 a row needs a 7th draw once in about 6e10 tokens; the rows
# left after TOP_P_DRAWS take the exact sorting path.
TOP_P_DRAWS = 6
# Below this top_p most draws would be rejected: sorting is cheaper.
MIN_REJECTION_TOP_P = 0.5
_UNIFORM_BITS = 53  # a float64 mantissa


def row_uniform(row_seed: int, step: int, draw: int) -> float:
    """A uniform number in [0, 1) that depends on (row seed, step, draw number) only."""
    bits = _splitmix64(step_seed(row_seed, step) ^ _splitmix64(draw))
    return (bits >> (64 - _UNIFORM_BITS)) / float(1 << _UNIFORM_BITS)


def sample_next(
    logits: torch.Tensor,
    options: SamplingOptions,
    seeds: Sequence[int],
    step: int | Sequence[int],
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """One index per row of [B, V] `logits`: argmax when greedy, else a draw from the filtered softmax.

    Row r's draw depends on its logits, `seeds[r]` and its step (`step`, or `step[r]` when rows
    are at different positions) only, never on the other rows: a segment gets the same codes
    alone, in any batch, or resumed after a crash. Uniforms come from a hash, not from a torch
    generator, so a step costs no per-row generator calls and the stream is the same on every
    device (the logits themselves still differ slightly between devices)."""
    rows = logits.shape[0]
    if len(seeds) != rows:
        raise ValueError(f"{len(seeds)} seeds for {rows} rows")
    steps = [int(step)] * rows if isinstance(step, int) else [int(s) for s in step]
    if len(steps) != rows:
        raise ValueError(f"{len(steps)} steps for {rows} rows")
    if logits.device.type == "cpu" and rows > CPU_SAMPLE_CHUNK_ROWS:
        return _sample_in_chunks(logits, options, seeds, steps, seen)
    filtered = filter_logits(logits, options, seen)
    if options.greedy:
        return filtered.argmax(dim=-1)
    return _draw(filtered, options.top_p, seeds, steps)


# On a CPU, rows are sampled this many at a time: the half-dozen [rows, 65,537] float tensors a
# draw passes over then stay in the cache (16 rows: 4 MiB each); 40 rows at once measured 2.5x
# slower than the same rows in chunks. Rows never depend on each other, so the result is the same.
CPU_SAMPLE_CHUNK_ROWS = 16


def _sample_in_chunks(
    logits: torch.Tensor,
    options: SamplingOptions,
    seeds: Sequence[int],
    steps: list[int],
    seen: torch.Tensor | None,
) -> torch.Tensor:
    import torch

    chunks = []
    for start in range(0, logits.shape[0], CPU_SAMPLE_CHUNK_ROWS):
        rows = slice(start, start + CPU_SAMPLE_CHUNK_ROWS)
        chunk_seen = None if seen is None else seen[rows]
        chunks.append(sample_next(logits[rows], options, seeds[rows], steps[rows], chunk_seen))
    return torch.cat(chunks)


def _draw(filtered: torch.Tensor, top_p: float, seeds: Sequence[int], steps: list[int]) -> torch.Tensor:
    """Top-p draws by rejection (see TOP_P_DRAWS); the rows still pending take `_draw_exact`."""
    import torch

    probs = torch.softmax(filtered, dim=-1)
    choice = torch.zeros(probs.shape[0], dtype=torch.long, device=probs.device)
    pending = list(range(probs.shape[0]))
    draws = 0 if top_p < MIN_REJECTION_TOP_P else 1 if top_p >= 1.0 else TOP_P_DRAWS
    for draw in range(draws):
        index = torch.as_tensor(pending, device=probs.device)
        row_probs = probs if len(pending) == probs.shape[0] else probs[index]
        picked = _invert_cdf(row_probs, _uniforms(seeds, steps, pending, draw, row_probs.device))
        picked_prob = row_probs.gather(-1, picked.unsqueeze(-1))
        accept = picked_prob.squeeze(-1) > 0  # false only when rounding lands past the last likely id
        if top_p < 1.0:
            accept &= _mass_above(row_probs, picked_prob) < top_p
        choice[index[accept]] = picked[accept]
        pending = [row for row, ok in zip(pending, accept.tolist(), strict=True) if not ok]
        if not pending:
            return choice
    index = torch.as_tensor(pending, device=probs.device)
    uniforms = _uniforms(seeds, steps, pending, draws, probs.device)
    choice[index] = _draw_exact(filtered[index], probs[index], top_p, uniforms)
    return choice


def _mass_above(probs: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
    """[B] total probability of the ids more likely than each row's pick ([B, 1]).

    Written as sum(relu(p - q)) + q * count(p > q): float arithmetic only, which runs several
    times faster on a CPU than summing p under a boolean mask (that converts the mask to float)."""
    above = probs - picked  # the one temporary: both sums below work on it in place
    excess = above.clamp_(min=0).sum(dim=-1)
    count = above.sign_().sum(dim=-1)
    return excess + picked.squeeze(-1) * count


def _draw_exact(filtered: torch.Tensor, probs: torch.Tensor, top_p: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws over each row's sorted top-p set; a row with no finite logit gets its argmax."""
    import torch

    weights = probs if top_p >= 1.0 else probs.masked_fill(top_p_drop_mask(filtered, top_p), 0.0)
    weights = weights.nan_to_num(nan=0.0)
    picked = _invert_cdf(weights, uniforms)
    usable = weights.gather(-1, picked.unsqueeze(-1)).squeeze(-1) > 0
    return torch.where(usable, picked, filtered.argmax(dim=-1))


# The inverse CDF runs in two levels: the running mass of blocks of CDF_BLOCK ids finds the
# block, then a running mass inside that block finds the id. A cumulative sum over all 65,537
# ids in float64 costs ten times the softmax on a CPU; in float32 it rounds away rare ids' share.
CDF_BLOCK = 256


def _invert_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row of [B, V] non-negative `weights`, the id where the running mass first exceeds uniform x total."""
    import torch

    dtype = _cdf_dtype(weights.device)
    block_cdf = _block_sums(weights).to(dtype).cumsum(dim=-1)
    targets = uniforms.to(dtype).unsqueeze(-1) * block_cdf[:, -1:]
    block = _first_exceeding(block_cdf, targets)
    before = torch.nn.functional.pad(block_cdf, (1, 0)).gather(-1, block)
    ids = block * CDF_BLOCK + torch.arange(CDF_BLOCK, device=weights.device)
    inside = ids < weights.shape[-1]  # the last block may be short
    inner = weights.gather(-1, ids.clamp(max=weights.shape[-1] - 1)).masked_fill(~inside, 0.0)
    step_in = _first_exceeding(inner.to(dtype).cumsum(dim=-1), (targets - before).contiguous())
    return ids.gather(-1, step_in).squeeze(-1).clamp_(max=weights.shape[-1] - 1)


def _first_exceeding(cdf: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B, 1] first index whose running mass exceeds the target; where rounding puts the target at
    or past the total, the last index with any mass (never an id of zero weight after it)."""
    import torch

    found = torch.searchsorted(cdf, targets, right=True)
    last_with_mass = torch.searchsorted(cdf, cdf[:, -1:].contiguous(), right=False)
    return torch.minimum(found, last_with_mass).clamp_(max=cdf.shape[-1] - 1)  # NaN mass: stay in range


def _block_sums(weights: torch.Tensor) -> torch.Tensor:
    """[B, ceil(V / CDF_BLOCK)] mass of each block of ids (no padded copy of the row)."""
    import torch

    rows, width = weights.shape
    whole = width // CDF_BLOCK * CDF_BLOCK
    sums = weights[:, :whole].reshape(rows, -1, CDF_BLOCK).sum(dim=-1)
    if whole == width:
        return sums
    return torch.cat([sums, weights[:, whole:].sum(dim=-1, keepdim=True)], dim=-1)


def _uniforms(seeds: Sequence[int], steps: list[int], rows: list[int], draw: int, device: torch.device) -> torch.Tensor:
    import torch

    values = [row_uniform(seeds[row], steps[row], draw) for row in rows]
    return torch.tensor(values, dtype=_cdf_dtype(device)).to(device)


def _cdf_dtype(device: torch.device) -> torch.dtype:
    """float64 for the running mass where the device has it (MPS does not), so tiny ids keep their share."""
    import torch

    return torch.float32 if device.type == "mps" else torch.float64
