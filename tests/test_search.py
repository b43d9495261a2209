"""The search loop over a synthetic language model and a synthetic verifier whose optimum is known."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pytest

from llasa_cli.constants import CODES_PER_SECOND
from llasa_cli.engine.protocols import Branch, Extension, GenerationRequest, Started
from llasa_cli.engine.sampling import step_seed
from llasa_cli.errors import InvalidOptionError
from llasa_cli.options import MODE_BEAM, MODE_BEST_OF, MODE_PLAIN, ScoreWeights, SearchOptions
from llasa_cli.search.segment_search import Candidate, best_of_seed, search_segments

TARGET_SYMBOL = 0


@dataclass
class _Row:
    codes: list[int]
    ended: bool = False


@dataclass
class _State:
    rows: list[_Row]


@dataclass
class SyntheticLM:
    """A known random source: at each position, the stop token with probability `end_prob` (from
    `min_len` on), else a uniform symbol of `alphabet`; the noise depends on (seed, position) only."""

    alphabet: int = 3
    end_prob: float = 0.25
    min_len: int = 4
    forward_calls: int = 0
    extend_calls: list[int] = field(default_factory=list)  # branches per call

    def start(self, requests: Sequence[GenerationRequest]) -> Started:
        self.forward_calls += 1
        return Started(_State([_Row([]) for _ in requests]), tuple(r.max_new_tokens for r in requests))

    def extend(self, state: _State, branches: Sequence[Branch], n_tokens: int) -> list[Extension]:
        self.extend_calls.append(len(branches))
        out, rows = [], []
        for branch in branches:
            parent = state.rows[branch.parent]
            assert not parent.ended and branch.limit <= n_tokens
            tokens, ended = self._grow(parent.codes, branch.seed, branch.limit)
            rows.append(_Row(parent.codes + tokens, ended))
            out.append(Extension(np.asarray(tokens, dtype=np.int64), ended))
        state.rows = rows
        self.forward_calls += n_tokens
        return out

    def _grow(self, prefix: list[int], seed: int, limit: int) -> tuple[list[int], bool]:
        tokens: list[int] = []
        while len(tokens) < limit:
            rng = np.random.default_rng(step_seed(seed, len(prefix) + len(tokens)))
            if len(prefix) + len(tokens) >= self.min_len and rng.random() < self.end_prob:
                return tokens, True
            tokens.append(int(rng.integers(self.alphabet)))
        return tokens, False


def target_length(request: GenerationRequest) -> int:
    return len(request.text)


def true_score(codes: np.ndarray, request: GenerationRequest) -> float:
    """The verifier's optimum is TARGET_SYMBOL repeated target_length times: 1.0."""
    matches = int(np.sum(codes[: target_length(request)] == TARGET_SYMBOL))
    return matches / max(codes.size, target_length(request))


@dataclass
class Verifier:
    """Synthetic PRM / ORM: counts its calls and what it saw."""

    final: bool
    calls: list[int] = field(default_factory=list)
    seen: list[Candidate] = field(default_factory=list)
    codec_seconds: float = 0.0  # it needs no audio

    def score(self, items: Sequence[Candidate]) -> list[float]:
        self.calls.append(len(items))
        self.seen.extend(items)
        if self.final:
            return [true_score(item.codes, item.request) for item in items]
        return [self._prefix(item) for item in items]

    @staticmethod
    def _prefix(item: Candidate) -> float:
        length = target_length(item.request)
        good = int(np.sum(item.codes[:length] == TARGET_SYMBOL)) - max(0, item.codes.size - length)
        if item.ended:  # a finished candidate is judged like the final verifier would
            return true_score(item.codes, item.request)
        return good / max(1, min(item.codes.size, length))


def options(mode: str, width: int, candidates: int = 2, step_tokens: int = 2) -> SearchOptions:
    seconds = step_tokens / CODES_PER_SECOND
    if mode == MODE_BEAM:
        return SearchOptions(beam=width, beam_candidates=candidates, beam_step_seconds=seconds)
    return SearchOptions(best_of=width)


def run(requests, lm=None, mode=MODE_BEAM, width=4, **kwargs):
    lm = lm or SyntheticLM()
    partial, final = Verifier(final=False), Verifier(final=True)
    results = search_segments(requests, lm, partial, final, options(mode, width, **kwargs))
    return results, lm, partial, final


def request(seed: int, text: str = "abcdefgh", cap: int = 24) -> GenerationRequest:
    return GenerationRequest(text=text, seed=seed, max_new_tokens=cap)


# -- options -----------------------------------------------------------------------------


def test_options_defaults_and_derived_values() -> None:
    plain = SearchOptions()
    assert (plain.mode, plain.width, plain.beam_candidates, plain.step_tokens) == (MODE_PLAIN, 1, 2, CODES_PER_SECOND)
    assert (SearchOptions(beam=5).mode, SearchOptions(beam=5).width) == (MODE_BEAM, 5)
    assert (SearchOptions(best_of=3).mode, SearchOptions(best_of=3).width) == (MODE_BEST_OF, 3)
    assert SearchOptions(beam_step_seconds=0.5).step_tokens == CODES_PER_SECOND // 2


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"beam": 2, "best_of": 2}, "--beam and --best-of"),
        ({"beam": 0}, "--beam"),
        ({"best_of": 1000}, "--best-of"),
        ({"beam_candidates": 0}, "--beam-candidates"),
        ({"beam_step_seconds": 0.0}, "--beam-step-seconds"),
        ({"beam_step_seconds": 100.0}, "--beam-step-seconds"),
    ],
)
def test_bad_options_name_the_flag(kwargs, flag) -> None:
    with pytest.raises(InvalidOptionError, match=flag):
        SearchOptions(**kwargs)


def test_score_weights() -> None:
    default = ScoreWeights()
    assert (default.asr, default.speaker, default.signal) == (0.5, 0.3, 0.2)  # the verdict's own weights
    assert default.combine(1.0, asr_error=0.0, similarity=1.0) == pytest.approx(1.0)
    assert default.combine(0.5, asr_error=0.2, similarity=0.7) == pytest.approx(0.2 * 0.5 + 0.5 * 0.8 + 0.3 * 0.7)
    assert default.combine(1.0, asr_error=None, similarity=None) == 1.0  # only the parts that ran
    weights = ScoreWeights.parse("asr=2, speaker=0.5")
    assert (weights.asr, weights.speaker, weights.signal) == (2.0, 0.5, 0.2)
    assert ScoreWeights.parse("signal=0").combine(0.0, 0.5, None) == pytest.approx(0.5)
    for bad in ("asr=-1", "asr=0,speaker=0,signal=0", "wer=1", "asr=x", "asr"):
        with pytest.raises(InvalidOptionError, match="--score-weights"):
            ScoreWeights.parse(bad)


# -- scaling -----------------------------------------------------------------------------

SEEDS = range(40)
WIDTHS = (1, 2, 4, 8)


def mean_true_score(mode: str, width: int) -> tuple[float, list[float]]:
    requests = [request(seed) for seed in SEEDS]
    results, *_ = run(requests, mode=mode, width=width)
    scores = [true_score(r.codes, q) for r, q in zip(results, requests, strict=True)]
    return float(np.mean(scores)), scores


@pytest.mark.parametrize("mode", [MODE_BEAM, MODE_BEST_OF])
def test_mean_score_does_not_decrease_with_width(mode: str) -> None:
    means = [mean_true_score(mode, width)[0] for width in WIDTHS]
    assert all(a <= b for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] > means[0] + 0.1, means


def test_best_of_is_monotone_for_every_seed() -> None:
    """Best-of candidates keep their seeds as N grows, so N=2k always holds N=k's candidates."""
    per_width = [mean_true_score(MODE_BEST_OF, width)[1] for width in WIDTHS]
    for smaller, larger in zip(per_width, per_width[1:], strict=False):
        assert all(a <= b for a, b in zip(smaller, larger, strict=True))


def test_beam_finds_the_optimum_that_sampling_misses() -> None:
    """All 8 positions must be symbol 0 of 4 (chance 4**-8 per sample): beam search, pruning
    on the prefix, finds it for every seed; plain sampling and best-of-8 never do."""
    lm = SyntheticLM(alphabet=4, end_prob=1.0, min_len=8)
    requests = [request(seed, text="x" * 8, cap=12) for seed in range(10)]
    plain, *_ = run(requests, lm=lm, mode=MODE_BEST_OF, width=1)
    best_of, *_ = run(requests, lm=lm, mode=MODE_BEST_OF, width=8)
    beam, *_ = run(requests, lm=lm, mode=MODE_BEAM, width=8, candidates=8, step_tokens=1)
    for q, p, b, s in zip(requests, plain, best_of, beam, strict=True):
        assert true_score(p.codes, q) < 1.0 and true_score(b.codes, q) < 1.0
        assert true_score(s.codes, q) == 1.0
        # Beams that all found the optimum end as one take: a lone take is chosen unscored.
        assert s.score == 1.0 or (math.isnan(s.score) and s.stats.ended_candidates == 1)
        assert s.codes.tolist() == [TARGET_SYMBOL] * 8 and not s.hit_cap


# -- mechanics ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [MODE_BEAM, MODE_BEST_OF])
def test_a_segment_gets_the_same_result_alone_or_batched(mode: str) -> None:
    requests = [request(3), request(4, text="abc"), request(5, cap=6)]
    together, *_ = run(requests, mode=mode, width=4)
    for q, in_batch in zip(requests, together, strict=True):
        alone, *_ = run([q], mode=mode, width=4)
        assert np.array_equal(alone[0].codes, in_batch.codes)
        assert (alone[0].score, alone[0].hit_cap) == (in_batch.score, in_batch.hit_cap)
    again, *_ = run(requests, mode=mode, width=4)
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(together, again, strict=True))


def test_one_batch_and_one_scorer_call_per_step_for_all_segments() -> None:
    requests = [request(seed) for seed in range(3)]
    results, lm, partial, final = run(requests, width=3, candidates=2, step_tokens=2)
    steps = max(r.stats.steps for r in results)
    assert len(lm.extend_calls) == steps
    assert lm.extend_calls[0] == 3 * 3 * 2  # each root branches into N*M
    assert all(n <= 3 * 3 * 2 for n in lm.extend_calls)
    assert len(partial.calls) <= steps and len(final.calls) == 1
    for result in results:
        stats = result.stats
        assert stats.mode == MODE_BEAM and stats.width == 3
        # Finished children are never pruned: the pool may pass N by the children of the step that filled it.
        assert stats.ended_candidates + stats.capped_candidates < 3 + 3 * 2
        assert stats.lm_calls == stats.steps + 1  # the start (prefill) and one call per step
        assert 0 < stats.partial_scored <= stats.candidates and stats.final_scorer_calls == 1
        assert stats.tokens_generated >= result.codes.size
        json.dumps(asdict(stats))
    assert sum(partial.calls) == sum(r.stats.partial_scored for r in results)
    assert sum(lm.extend_calls) == sum(r.stats.candidates for r in results)


def test_finished_candidates_are_ranked_whole_never_pruned_by_the_partial_scorer() -> None:
    """The partial scorer hears a window of speech in progress; a finished take goes to the final
    ranking whatever the partial scorer would say of it, each distinct take once."""

    class HatesEndings(Verifier):
        def score(self, items: Sequence[Candidate]) -> list[float]:
            super().score(items)
            return [0.0 if item.finished else 1.0 for item in items]

    @dataclass
    class Recording(SyntheticLM):
        ended: set[tuple[int, ...]] = field(default_factory=set)

        def extend(self, state: _State, branches: Sequence[Branch], n_tokens: int) -> list[Extension]:
            grown = super().extend(state, branches, n_tokens)
            self.ended |= {tuple(row.codes) for row in state.rows if row.ended}
            return grown

    pools = []
    for seed in range(6):
        q = request(seed)
        lm, partial, final = Recording(), HatesEndings(final=False), Verifier(final=True)
        result = search_segments([q], lm, partial, final, options(MODE_BEAM, 3, candidates=3))[0]
        assert partial.seen and not any(item.finished for item in partial.seen)
        ranked = [tuple(item.codes.tolist()) for item in final.seen]
        assert len(ranked) == len(set(ranked)) and set(ranked) == (lm.ended if len(lm.ended) > 1 else set())
        assert tuple(result.codes.tolist()) in lm.ended
        if ranked:
            assert result.score == max(true_score(np.asarray(codes), q) for codes in ranked)
        pools.append(len(lm.ended))
    assert max(pools) > 3  # the pool took every ended take, more than N of them at times


def test_codec_time_reported_by_a_scorer_is_split_over_its_candidates() -> None:
    class DecodingVerifier(Verifier):
        """Reports one second of decoding per candidate it scores."""

        codec_seconds = 0.0

        def score(self, items: Sequence[Candidate]) -> list[float]:
            self.codec_seconds += len(items)
            return super().score(items)

    requests = [request(seed) for seed in range(3)]
    partial, final = DecodingVerifier(final=False), DecodingVerifier(final=True)
    results = search_segments(requests, SyntheticLM(), partial, final, options(MODE_BEAM, 3))
    for result in results:
        assert result.stats.codec_seconds == pytest.approx(result.stats.partial_scored + result.stats.final_scored)
    plain = run(requests, width=3)[0]
    assert all(r.stats.codec_seconds == 0.0 for r in plain)  # scorers that decode nothing: none booked


def test_no_partial_scoring_with_one_candidate_per_beam() -> None:
    results, lm, partial, final = run([request(1)], width=3, candidates=1)
    assert partial.calls == [] and len(final.calls) == 1
    assert results[0].stats.partial_scorer_calls == 0


def test_best_of_is_one_batch_and_one_ranking() -> None:
    results, lm, partial, final = run([request(1), request(2)], mode=MODE_BEST_OF, width=5)
    assert lm.extend_calls == [10] and partial.calls == [] and final.calls == [10]
    assert [r.stats.candidates for r in results] == [5, 5]
    for result, q in zip(results, [request(1), request(2)], strict=True):
        best = max(true_score(c.codes, c.request) for c in final.seen if c.request == q)
        assert result.score == best == true_score(result.codes, q)


def test_plain_needs_no_scorer_and_keeps_the_segment_seed() -> None:
    lm = SyntheticLM()
    q = request(7)
    result = search_segments([q], lm, None, None, SearchOptions())[0]
    expected, ended = SyntheticLM()._grow([], q.seed, q.max_new_tokens)
    assert result.codes.tolist() == expected and result.hit_cap == (not ended)
    assert math.isnan(result.score) and best_of_seed(q.seed, 0) == q.seed
    assert best_of_seed(q.seed, 1) != q.seed


@pytest.mark.parametrize("mode", [MODE_BEAM, MODE_BEST_OF])
def test_caps_are_respected_and_marked(mode: str) -> None:
    never_ends = SyntheticLM(end_prob=0.0)
    requests = [request(1, cap=7), request(2, cap=0), request(3, cap=1)]
    results, *_ = run(requests, lm=never_ends, mode=mode, width=3, step_tokens=3)
    assert [r.codes.size for r in results] == [7, 0, 1]
    assert all(r.hit_cap for r in results)
    assert results[1].stats.candidates == 0 and math.isnan(results[1].score)


def test_ended_candidates_beat_capped_ones() -> None:
    """A candidate that stopped wins over a capped one even when the final scorer prefers the capped one."""

    class LovesCapped:
        codec_seconds = 0.0

        def score(self, items):
            return [10.0 if item.hit_cap else 0.0 for item in items]

    lm = SyntheticLM(end_prob=0.05, min_len=0)
    requests = [request(seed, cap=5) for seed in range(12)]
    results = search_segments(requests, lm, None, LovesCapped(), options(MODE_BEST_OF, 4))
    outcomes = []
    for q, result in zip(requests, results, strict=True):
        grown = [SyntheticLM(end_prob=0.05, min_len=0)._grow([], best_of_seed(q.seed, i), 5) for i in range(4)]
        ended = [tokens for tokens, did_end in grown if did_end]
        assert result.hit_cap == (not ended)
        if ended:
            assert result.codes.tolist() in ended
        outcomes.append(bool(ended))
    assert any(outcomes) and not all(outcomes)


def test_unscorable_candidates_rank_last_and_bad_scorers_fail() -> None:
    class NanFirst:
        codec_seconds = 0.0

        def score(self, items):
            return [math.nan] + [1.0] * (len(items) - 1)

    lm = SyntheticLM(end_prob=0.0)
    result = search_segments([request(1, cap=4)], lm, NanFirst(), NanFirst(), options(MODE_BEST_OF, 3))[0]
    assert result.score == 1.0

    class Short:
        codec_seconds = 0.0

        def score(self, items):
            return [0.0]

    with pytest.raises(ValueError, match="scores for"):
        search_segments([request(1)], SyntheticLM(), Short(), Short(), options(MODE_BEST_OF, 3))
    with pytest.raises(ValueError, match="partial scorer"):
        search_segments([request(1)], SyntheticLM(), None, Verifier(final=True), options(MODE_BEAM, 2))
    with pytest.raises(ValueError, match="final scorer"):
        search_segments([request(1)], SyntheticLM(), None, None, options(MODE_BEST_OF, 2))
    assert search_segments([], SyntheticLM(), None, None, SearchOptions()) == []


def test_search_and_its_options_never_import_torch() -> None:
    code = "import sys, llasa_cli.search, llasa_cli.options; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
