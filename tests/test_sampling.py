"""Seeds are stable and per-row sampling ignores the rest of the batch; the filters do what they say."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from llasa_cli.engine import sampling
from llasa_cli.engine.sampling import (
    apply_repetition_penalty,
    apply_top_k,
    row_uniform,
    sample_next,
    segment_seed,
    step_seed,
    top_p_drop_mask,
)
from llasa_cli.options import SamplingOptions

NEG_INF = float("-inf")


def test_segment_seed_is_pinned() -> None:
    # A changed value would change every saved run's audio: bump the domain string on purpose only.
    assert segment_seed(0, "Hello.") == segment_seed(0, "Hello.", 0)
    assert segment_seed(0, "Hello.") == 6484874993332110019


def test_segment_seed_is_stable_across_processes() -> None:
    code = "from llasa_cli.engine.sampling import segment_seed; print(segment_seed(42, 'Chapter one.', 2))"
    env = {"PYTHONHASHSEED": "123", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == segment_seed(42, "Chapter one.", 2)
    assert "torch" not in subprocess.run(
        [sys.executable, "-c", "import sys, llasa_cli.engine.sampling; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_segment_seed_depends_on_each_input() -> None:
    seeds = {segment_seed(0, "a"), segment_seed(1, "a"), segment_seed(0, "b"), segment_seed(0, "a", 1)}
    assert len(seeds) == 4
    assert all(0 <= s < 2**63 for s in seeds)
    assert step_seed(5, 0) != step_seed(5, 1) != step_seed(6, 1)


def test_row_uniform_is_pinned_and_depends_on_each_input() -> None:
    # A changed value changes every new run's audio: change it on purpose only.
    assert row_uniform(11, 3, 0) == 0.4288771856094802
    values = {row_uniform(11, 3, 0), row_uniform(12, 3, 0), row_uniform(11, 4, 0), row_uniform(11, 3, 1)}
    assert len(values) == 4
    assert all(0.0 <= v < 1.0 for v in values)


def test_a_row_draws_the_same_alone_or_in_any_batch() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 500, generator=g)
    options = SamplingOptions(temperature=0.9, top_p=0.9)
    seeds = [7, 11, 13, 17]
    batch = sample_next(logits, options, seeds, step=3)
    for row in range(4):
        assert sample_next(logits[row : row + 1], options, [seeds[row]], step=3).item() == batch[row].item()
    shuffled = sample_next(logits[[2, 0]], options, [13, 7], step=3)
    assert shuffled.tolist() == [batch[2].item(), batch[0].item()]


def test_rows_at_their_own_steps_draw_as_at_a_shared_step() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 300, generator=g)
    options = SamplingOptions(temperature=1.0, top_p=0.95)
    per_row = sample_next(logits, options, [1, 2, 3], step=[5, 9, 5])
    assert per_row[0] == sample_next(logits[:1], options, [1], step=5)[0]
    assert per_row[1] == sample_next(logits[1:2], options, [2], step=9)[0]
    draws_over_steps = {int(sample_next(logits[:1], options, [1], step=s)[0]) for s in range(40)}
    assert len(draws_over_steps) > 10  # the step changes the draw
    with pytest.raises(ValueError):
        sample_next(logits, options, [1, 2, 3], step=[1, 2])


def test_top_k_keeps_the_k_best() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
    out = apply_top_k(logits, 2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False], [False, False, False, True, True]]
    assert torch.equal(apply_top_k(logits, 0), logits)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()
    assert (~top_p_drop_mask(logits, 0.8)).tolist() == [[False, True, False, True]]
    assert (~top_p_drop_mask(logits, 0.81)).tolist() == [[False, True, True, True]]
    assert (~top_p_drop_mask(logits, 0.1)).tolist() == [[False, True, False, False]]


def test_repetition_penalty_lowers_seen_ids_only() -> None:
    logits = torch.tensor([[2.0, -2.0, 2.0]])
    seen = torch.tensor([[True, True, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 2.0]]


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


# --- top-p by rejection: the draws follow the renormalised top-p set ------------------------

V_SPEECH = 65_537  # speech tokens + end: the width the generator samples over
DRAWS = 4_000


def _frequencies(logits_row: torch.Tensor, options: SamplingOptions, draws: int = DRAWS) -> torch.Tensor:
    logits = logits_row.expand(draws, -1)
    picks = sample_next(logits, options, list(range(draws)), step=0)
    return torch.bincount(picks, minlength=logits_row.shape[-1]).double() / draws


def test_top_p_draws_follow_the_renormalised_set() -> None:
    probs = torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04])  # top-p 0.85 keeps the first three
    freq = _frequencies(probs.log(), SamplingOptions(temperature=1.0, top_p=0.85))
    assert freq[3:].sum() == 0
    assert torch.allclose(freq[:3], (probs[:3] / probs[:3].sum()).double(), atol=0.03)


def test_low_top_p_takes_the_exact_path_with_the_same_distribution() -> None:
    probs = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1])  # top-p 0.4 keeps the first two
    assert sampling.MIN_REJECTION_TOP_P > 0.4
    freq = _frequencies(probs.log(), SamplingOptions(temperature=1.0, top_p=0.4))
    assert freq[2:].sum() == 0
    assert torch.allclose(freq[:2], (probs[:2] / probs[:2].sum()).double(), atol=0.03)


def test_rows_rejected_every_draw_fall_back_to_the_exact_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # 60% of the mass on id 0, the rest spread thin: top-p 0.55 keeps id 0 alone, so 40% of the
    # draws are rejected and about DRAWS * 0.4**TOP_P_DRAWS (16) rows reach the fallback.
    probs = torch.cat([torch.tensor([0.6]), torch.full((1000,), 0.4 / 1000)])
    options = SamplingOptions(temperature=1.0, top_p=0.55)
    assert sampling.MIN_REJECTION_TOP_P <= 0.55
    fallback_rows: list[int] = []
    exact = sampling._draw_exact

    def counting(filtered: torch.Tensor, *args: object) -> torch.Tensor:
        fallback_rows.append(filtered.shape[0])
        return exact(filtered, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sampling, "_draw_exact", counting)
    picks = sample_next(probs.log().expand(DRAWS, -1), options, list(range(DRAWS)), step=0)
    assert picks.eq(0).all()
    assert 1 <= sum(fallback_rows) <= 60


def _logit_sets(rows: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    gauss = torch.randn(rows, V_SPEECH, generator=g)
    peaked = gauss * 2
    peaked[:, :5] += 12.0
    masked = gauss.clone()
    masked[:, 50:] = NEG_INF  # what top-k leaves
    return {
        "flat-ish": gauss,
        "wide": gauss * 4,
        "peaked": peaked,
        "all-equal": torch.zeros(rows, V_SPEECH),
        "integer-ties": torch.randint(0, 6, (rows, V_SPEECH), generator=g).float(),
        "one-hot": torch.full((rows, V_SPEECH), -1e4).index_fill_(1, torch.tensor([7]), 0.0),
        "top-k-masked": masked,
    }


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.95, 1.0])
def test_every_draw_lies_in_the_top_p_set(top_p: float) -> None:
    options = SamplingOptions(temperature=1.0, top_p=top_p)
    for name, logits in _logit_sets().items():
        for step in range(4):
            picks = sample_next(logits, options, list(range(100, 106)), step=step)
            probs = torch.softmax(logits.double(), dim=-1)
            picked = probs.gather(-1, picks.unsqueeze(-1))
            mass_above = torch.where(probs > picked, probs, 0.0).sum(dim=-1)
            assert (picked.squeeze(-1) > 0).all(), name
            # The set: ids whose more likely ids hold less than top_p (ties at the cut all kept).
            assert (mass_above < top_p + 1e-6).all(), (name, step, mass_above.max().item())


def test_top_p_set_matches_the_sorted_rule_without_ties() -> None:
    logits = _logit_sets()["wide"]
    kept = ~top_p_drop_mask(logits, 0.9)
    picks = sample_next(logits, SamplingOptions(temperature=1.0, top_p=0.9), list(range(6)), step=0)
    assert kept.gather(-1, picks.unsqueeze(-1)).all()


def test_odd_rows_do_not_break_the_batch() -> None:
    g = torch.Generator().manual_seed(7)
    odd = torch.randn(4, V_SPEECH, generator=g)
    odd[0] = NEG_INF  # nothing allowed: some id, no crash
    odd[1, 5] = float("inf")
    odd[2, 9] = float("nan")
    options = SamplingOptions(temperature=1.0, top_p=0.95)
    picks = sample_next(odd, options, [1, 2, 3, 4], step=0)
    assert picks.shape == (4,) and ((picks >= 0) & (picks < V_SPEECH)).all()
    assert picks[1] == 5
    assert picks[3] == sample_next(odd[3:], options, [4], step=0)[0]


@pytest.mark.parametrize("width", [5, 256, 257, V_SPEECH])
def test_two_level_inverse_cdf_matches_one_running_sum(width: int) -> None:
    g = torch.Generator().manual_seed(width)
    weights = torch.rand(8, width, generator=g) * (torch.rand(8, width, generator=g) > 0.3)
    weights[:, 0] = 0.0  # a zero-weight id is never picked, even at uniform 0
    uniforms = torch.tensor([0.0, 1e-9, 0.25, 0.5, 0.75, 0.999, 0.999999, 1.0 - 2**-53], dtype=torch.float64)
    picked = sampling._invert_cdf(weights, uniforms)
    flat_cdf = weights.double().cumsum(dim=-1)
    expected = torch.searchsorted(flat_cdf, (uniforms * flat_cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    close = (
        flat_cdf.gather(-1, expected.clamp(max=width - 1).unsqueeze(-1)).squeeze(-1) - uniforms * flat_cdf[:, -1]
    ).abs()
    agree = (picked == expected.clamp(max=width - 1)) | (close < 1e-6)  # a target on a float boundary may go either way
    assert agree.all()
    assert (weights.gather(-1, picked.unsqueeze(-1)) > 0).all()


def test_rows_sampled_in_cpu_chunks_draw_as_alone() -> None:
    rows = 2 * sampling.CPU_SAMPLE_CHUNK_ROWS + 5
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(rows, 2_000, generator=g)
    options = SamplingOptions(temperature=0.9, top_p=0.9, repetition_penalty=1.2)
    seen = torch.rand(rows, 2_000, generator=g) < 0.1
    steps = list(range(rows))
    batch = sample_next(logits, options, list(range(rows)), steps, seen)
    alone = [int(sample_next(logits[r : r + 1], options, [r], [r], seen[r : r + 1])[0]) for r in range(rows)]
    assert batch.tolist() == alone


def test_mass_above_equals_the_masked_sum() -> None:
    g = torch.Generator().manual_seed(10)
    probs = torch.softmax(torch.randn(6, V_SPEECH, generator=g) * 2, dim=-1)
    picked = probs[:, [0, 5, 9, 100, 7, 3]].diagonal().unsqueeze(-1).contiguous()
    expected = torch.where(probs > picked, probs, 0.0).double().sum(dim=-1)
    assert torch.allclose(sampling._mass_above(probs, picked).double(), expected, atol=1e-6)
