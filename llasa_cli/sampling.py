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
    """Keep each row's smallest set of most likely ids whose probability reaches `top_p` (always >= 1 id).

    The rule is `_top_p_by_sort`'s (sort, then drop every id whose mass before it reaches top_p).
    Large vocabularies on the CPU take `_top_p_drop_mask` instead, which sorts only a narrow band
    of ids around the cut and gives the same result, up to float rounding at the cut (see there).
    """
    if top_p >= 1.0:
        return logits
    if logits.device.type != "cpu" or logits.ndim == 0 or logits.shape[-1] < TOP_P_BAND_MIN_VOCAB:
        return _top_p_by_sort(logits, top_p)
    flat = logits.reshape(-1, logits.shape[-1])
    return logits.masked_fill(_top_p_drop_mask(flat, top_p).view(logits.shape), float("-inf"))


def _top_p_by_sort(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """The reference: a full descending sort, softmax, mass before each id, scattered back."""
    return logits.masked_fill(_sorted_drop_mask(logits, top_p), float("-inf"))


def _sorted_drop_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    import torch

    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    return torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)


# Band search for top-p: ids are binned by their distance below the row's best logit; the
# cumulative mass of the bins tells which ids are surely kept (mass before them is below
# top_p - margin), surely dropped (mass at or above top_p + margin) or in the band between,
# which is sorted and decided with the reference's own arithmetic.
TOP_P_BAND_MIN_VOCAB = 4_096  # below this a full sort is as quick
TOP_P_BINS = 4_096
TOP_P_BIN_RANGE = 64.0  # logit units below the best covered by bins; further down, one last bin
# Mass either side of top_p decided inside the band. Float rounding moves the reference's
# running mass by ~1e-5 at most (measured), so ids outside the band are decided as it decides them.
TOP_P_BAND_MARGIN = 1e-3


def _top_p_drop_mask(flat: torch.Tensor, top_p: float) -> torch.Tensor:
    """[B, V] bool: which ids top-p drops, equal to `_sorted_drop_mask` row by row.

    Inside the band the mass before each id is summed in float64 and rounded to float32 as the
    reference's cumsum does, so results match unless that mass lies within float rounding of
    top_p (the reference itself then depends on its summation order). Rows the band cannot
    decide exactly (NaN or +inf logits, nothing finite, equal logits split by the cut, whose
    order the reference's unstable sort picks) are handed to the reference.
    """
    import torch

    row_max = flat.amax(dim=-1, keepdim=True)
    if bool(torch.isnan(row_max).any()) or not bool(torch.isfinite(row_max).all()):
        return _sorted_drop_mask(flat, top_p)
    probs = torch.softmax(flat, dim=-1)
    bins = ((row_max - flat) * (TOP_P_BINS / TOP_P_BIN_RANGE)).clamp_(max=TOP_P_BINS).long()
    first, last, mass_above = _band_limits(bins, probs, top_p)
    band = (bins >= first) & (bins <= last)
    if bool((last == TOP_P_BINS).any()):
        band &= flat > float("-inf")  # -inf stays -inf whatever is decided; keep it out of the sort
    drop = bins > last
    undecided = _decide_band(flat, probs, band, first, mass_above, top_p, drop)
    for row in undecided:
        drop[row] = _sorted_drop_mask(flat[row : row + 1], top_p)[0]
    return drop


def _band_limits(
    bins: torch.Tensor, probs: torch.Tensor, top_p: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: the first and last bin of the band ([B, 1] long) and the float64 mass above it ([B, 1])."""
    import torch

    rows = bins.shape[0]
    hist = torch.zeros(rows, TOP_P_BINS + 1, dtype=torch.float64, device=bins.device)
    through = hist.scatter_add_(-1, bins, probs.double()).cumsum(dim=-1)  # mass of bins 0..b
    limits = torch.tensor([[top_p - TOP_P_BAND_MARGIN, top_p + TOP_P_BAND_MARGIN]], dtype=through.dtype)
    first, last = torch.searchsorted(through, limits.expand(rows, 2).contiguous()).clamp_(max=TOP_P_BINS).unbind(-1)
    padded = torch.nn.functional.pad(through, (1, 0))
    return first.unsqueeze(-1), last.unsqueeze(-1), padded.gather(-1, first.unsqueeze(-1))


def _decide_band(
    flat: torch.Tensor,
    probs: torch.Tensor,
    band: torch.Tensor,
    first: torch.Tensor,
    mass_above: torch.Tensor,
    top_p: float,
    drop: torch.Tensor,
) -> list[int]:
    """Sort each row's band, mark its dropped ids in `drop`; return the rows whose cut splits equal logits."""
    import torch

    rows, cols = band.nonzero(as_tuple=True)
    if not rows.numel():
        return []
    counts = band.sum(dim=-1)
    width = int(counts.max())
    starts = torch.cumsum(counts, dim=0) - counts
    slot = torch.arange(rows.numel(), device=flat.device) - starts[rows]
    values = flat.new_full((flat.shape[0], width), float("-inf"))
    values[rows, slot] = flat[rows, cols]
    ids = torch.zeros_like(values, dtype=torch.long)
    ids[rows, slot] = cols
    values, order = values.sort(dim=-1, descending=True)
    ids = ids.gather(-1, order)
    band_probs = probs.gather(-1, ids)
    mass_through = torch.cumsum(torch.cat([mass_above, band_probs.double()], dim=-1), dim=-1)[:, 1:]
    drop_sorted = (mass_through.float() - band_probs) >= top_p
    drop_sorted[:, 0] &= first.squeeze(-1) > 0  # the best id is always kept
    valid = torch.arange(width, device=flat.device) < counts.unsqueeze(-1)
    split_tie = (values[:, 1:] == values[:, :-1]) & (drop_sorted[:, 1:] != drop_sorted[:, :-1]) & valid[:, 1:]
    row_of = torch.arange(flat.shape[0], device=flat.device).unsqueeze(-1).expand_as(ids)
    drop[row_of[valid], ids[valid]] = drop_sorted[valid]
    return split_tie.any(dim=-1).nonzero().flatten().tolist()


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
