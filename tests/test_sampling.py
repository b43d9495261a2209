"""Seeds are stable and per-row sampling ignores the rest of the batch; the filters do what they say."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from llasa_cli import sampling
from llasa_cli.options import SamplingOptions
from llasa_cli.sampling import (
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    gumbel_noise,
    mask_disallowed,
    sample_next,
    segment_seed,
    step_seed,
)

NEG_INF = float("-inf")


def test_segment_seed_is_pinned() -> None:
    # A changed value would change every saved run's audio: bump the domain string on purpose only.
    assert segment_seed(0, "Hello.") == segment_seed(0, "Hello.", 0)
    assert segment_seed(0, "Hello.") == 6484874993332110019


def test_segment_seed_is_stable_across_processes() -> None:
    code = "from llasa_cli.sampling import segment_seed; print(segment_seed(42, 'Chapter one.', 2))"
    env = {"PYTHONHASHSEED": "123", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == segment_seed(42, "Chapter one.", 2)
    assert "torch" not in subprocess.run(
        [sys.executable, "-c", "import sys, llasa_cli.sampling; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_segment_seed_depends_on_each_input() -> None:
    seeds = {segment_seed(0, "a"), segment_seed(1, "a"), segment_seed(0, "b"), segment_seed(0, "a", 1)}
    assert len(seeds) == 4
    assert all(0 <= s < 2**63 for s in seeds)
    assert step_seed(5, 0) != step_seed(5, 1) != step_seed(6, 1)


def test_noise_of_a_row_ignores_the_other_rows() -> None:
    alone = gumbel_noise([11], step=3, size=1000, device="cpu")
    batch = gumbel_noise([7, 11, 13], step=3, size=1000, device="cpu")
    assert torch.equal(alone[0], batch[1])
    assert not torch.equal(batch[0], batch[1])
    assert not torch.equal(gumbel_noise([11], step=4, size=1000, device="cpu")[0], alone[0])
    assert torch.isfinite(batch).all()


def test_top_k_keeps_the_k_best() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
    out = apply_top_k(logits, 2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False], [False, False, False, True, True]]
    assert torch.equal(apply_top_k(logits, 0), logits)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()
    assert torch.isfinite(apply_top_p(logits, 0.8)).tolist() == [[False, True, False, True]]
    assert torch.isfinite(apply_top_p(logits, 0.81)).tolist() == [[False, True, True, True]]
    assert torch.isfinite(apply_top_p(logits, 0.1)).tolist() == [[False, True, False, False]]
    assert torch.equal(apply_top_p(logits, 1.0), logits)


def test_repetition_penalty_lowers_seen_ids_only() -> None:
    logits = torch.tensor([[2.0, -2.0, 2.0]])
    seen = torch.tensor([[True, True, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 2.0]]


def test_mask_disallowed() -> None:
    out = mask_disallowed(torch.zeros(2, 3), torch.tensor([True, False, True]))
    assert out[:, 1].eq(NEG_INF).all() and out[:, 0].eq(0).all()


def test_greedy_is_argmax_and_ignores_seeds() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 1.0]])
    greedy = SamplingOptions(temperature=0.0)
    assert sample_next(logits, greedy, [1, 2], step=0).tolist() == [1, 0]
    assert sample_next(logits, greedy, [9, 9], step=5).tolist() == [1, 0]


def test_sampling_follows_the_softmax() -> None:
    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    logits = probs.clamp(min=1e-12).log().expand(2000, 4)
    options = SamplingOptions(temperature=1.0, top_p=1.0)
    draws = sample_next(logits, options, list(range(2000)), step=0)
    freq = torch.bincount(draws, minlength=4).float() / 2000
    assert freq[3] == 0
    assert torch.allclose(freq[:3], probs[:3], atol=0.04)


def test_sampling_respects_filters() -> None:
    logits = torch.tensor([[0.0, 0.1, 0.2, 5.0]]).expand(50, 4)
    options = SamplingOptions(temperature=1.0, top_p=1.0, top_k=1)
    assert sample_next(logits, options, list(range(50)), step=0).eq(3).all()


def test_seed_count_must_match_rows() -> None:
    with pytest.raises(ValueError):
        sample_next(torch.zeros(2, 3), SamplingOptions(), [1], step=0)


# --- top-p: the band search gives the full sort's result -----------------------------------

V_SPEECH = 65_537  # speech tokens + end: the width the generator samples over


def _reference_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """apply_top_p as it was: a full sort of every row (kept here to pin the fast path to it)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _logit_sets(rows: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    gauss = torch.randn(rows, V_SPEECH, generator=g)
    peaked = gauss * 2
    peaked[:, :5] += 12.0
    masked = gauss.clone()
    masked[:, 50:] = float("-inf")  # what top-k leaves
    return {
        "flat-ish": gauss,
        "wide": gauss * 4,
        "peaked": peaked,
        "all-equal": torch.zeros(rows, V_SPEECH),
        "integer-ties": torch.randint(0, 6, (rows, V_SPEECH), generator=g).float(),
        "bf16-ties": (gauss * 3).bfloat16().float(),
        "one-hot": torch.full((rows, V_SPEECH), -1e4).index_fill_(1, torch.tensor([7]), 0.0),
        "top-k-masked": masked,
    }


def _rounding_only(logits: torch.Tensor, fast: torch.Tensor, ref: torch.Tensor, top_p: float) -> None:
    """Any id kept by one and not the other lies where the mass before it is top_p to float rounding.

    The reference's float32 softmax sums 65k terms in sorted order and is itself off by ~1e-5,
    so no method without that same sort can match it closer than that at the cut."""
    probs = torch.softmax(logits.double(), dim=-1)
    for row, col in (torch.isfinite(fast) != torch.isfinite(ref)).nonzero().tolist():
        before = float(probs[row][logits[row] > logits[row, col]].sum())
        assert abs(before - top_p) < 1e-4, (row, col, before)


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.95, 0.999])
def test_top_p_band_matches_the_full_sort(top_p: float) -> None:
    for name, logits in _logit_sets().items():
        fast, ref = apply_top_p(logits, top_p), _reference_top_p(logits, top_p)
        kept = torch.isfinite(fast)
        assert torch.equal(fast[kept], logits[kept]), name  # what is kept is untouched
        assert kept.any(dim=-1).all(), name
        if name in ("all-equal", "integer-ties", "bf16-ties", "one-hot", "top-k-masked"):
            assert torch.equal(fast, ref), name  # ties split by the cut go to the reference itself
        else:
            _rounding_only(logits, fast, ref, top_p)


@pytest.mark.parametrize("top_k", [0, 50])
def test_top_p_band_gives_the_same_tokens(monkeypatch: pytest.MonkeyPatch, top_k: int) -> None:
    options = SamplingOptions(temperature=0.9, top_p=0.95, top_k=top_k)
    seeds = list(range(40, 52))
    logit_sets = _logit_sets(rows=len(seeds))
    fast = {(name, step): sample_next(x, options, seeds, step) for name, x in logit_sets.items() for step in range(3)}
    monkeypatch.setattr(sampling, "apply_top_p", _reference_top_p)
    for (name, step), tokens in fast.items():
        assert torch.equal(tokens, sample_next(logit_sets[name], options, seeds, step)), (name, step)


def test_top_p_band_keeps_shape_and_odd_rows() -> None:
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 3, V_SPEECH, generator=g)
    out = apply_top_p(logits, 0.9)
    assert out.shape == logits.shape
    assert torch.equal(out[1, 2], apply_top_p(logits[1, 2], 0.9))  # 1-D and batched agree
    strided = logits[:, 0].t().contiguous().t()
    assert not strided.is_contiguous() and torch.equal(apply_top_p(strided, 0.9), apply_top_p(logits[:, 0], 0.9))
    odd = torch.randn(3, V_SPEECH, generator=g)
    odd[0] = float("-inf")  # nothing allowed
    odd[1, 5] = float("inf")
    odd[2, 9] = float("nan")
    fast, ref = apply_top_p(odd, 0.9), _reference_top_p(odd, 0.9)
    assert torch.equal(fast.nan_to_num(nan=1.5), ref.nan_to_num(nan=1.5))
