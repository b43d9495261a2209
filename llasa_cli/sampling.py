"""Seeds and per-row sampling that does not depend on what else is in the batch.

`segment_seed` turns (run seed, text, attempt) into a row seed, stable across processes and
machines. `sample_next` draws one token per row by Gumbel-max: argmax(filtered logits / T +
Gumbel noise), where each row's noise comes from a generator seeded with (row seed, step)
only, so a row gets the same tokens alone, in any batch, or resumed after a crash (on the
same kind of device: CPU and CUDA random streams differ).

The filters act on [B, V] float logits, row by row: repetition penalty, temperature, top-k,
top-p (SamplingOptions). `mask_disallowed` sets every id outside an allowed set to -inf;
the generator instead scores only the allowed ids (speech tokens + end), which is the same.
torch is imported inside the functions, so `segment_seed` costs no torch import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .options import SamplingOptions

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


def _generator(device: torch.device) -> torch.Generator:
    """A generator on `device` where torch has one there, else on the CPU."""
    import torch

    try:
        return torch.Generator(device=device)
    except RuntimeError:
        return torch.Generator(device="cpu")


def gumbel_noise(seeds: Sequence[int], step: int, size: int, device: torch.device | str) -> torch.Tensor:
    """[len(seeds), size] float32 standard Gumbel noise; row r depends on (seeds[r], step) only."""
    import torch

    device = torch.device(device)
    generator = _generator(device)
    rows = []
    for seed in seeds:
        generator.manual_seed(step_seed(seed, step))
        rows.append(torch.rand(size, generator=generator, device=generator.device, dtype=torch.float32))
    uniform = torch.stack(rows).to(device)
    tiny = torch.finfo(torch.float32).tiny
    uniform = uniform.clamp_(min=tiny, max=1.0 - torch.finfo(torch.float32).eps)
    return -torch.log(-torch.log(uniform))


def mask_disallowed(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Set every id where the [V] bool mask `allowed` is False to -inf."""
    return logits.masked_fill(~allowed.to(logits.device), float("-inf"))


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


def apply_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep each row's smallest set of most likely ids whose probability reaches `top_p` (always >= 1 id)."""
    import torch

    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(logits: torch.Tensor, options: SamplingOptions, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Repetition penalty, then (unless greedy) temperature, top-k and top-p, on float32 [B, V] logits."""
    logits = apply_repetition_penalty(logits.float(), seen, options.repetition_penalty)
    if options.greedy:
        return logits
    logits = logits / options.temperature
    logits = apply_top_k(logits, options.top_k)
    return apply_top_p(logits, options.top_p)


def sample_next(
    logits: torch.Tensor,
    options: SamplingOptions,
    seeds: Sequence[int],
    step: int,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """One index per row of [B, V] `logits`: argmax when greedy, else Gumbel-max with per-row seeded noise."""
    if len(seeds) != logits.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for {logits.shape[0]} rows")
    filtered = filter_logits(logits, options, seen)
    if options.greedy:
        return filtered.argmax(dim=-1)
    noise = gumbel_noise(seeds, step, filtered.shape[-1], filtered.device)
    return (filtered + noise).argmax(dim=-1)
