"""Verifier-guided search over speech-token candidates: beam search (PRM + ORM) and best-of-N.

Plain logic over small protocols (no torch, no particular verifier). `CandidateGenerator.start`
makes one root row per request (the LM prefills each prompt once); `extend(state, branches,
n_tokens)` grows every branch in ONE batch, after which the generator's rows are the branches
in order and a later `Branch.parent` indexes them (the LM selects / repeats KV-cache rows).
`CandidateScorer` (process reward: e.g. speaker similarity + signal checks on partial audio) prunes
between beam steps; `CandidateScorer` (outcome reward: ASR error + speaker similarity, combined with
`ScoreWeights`) ranks finished candidates. Higher is better; NaN ranks last.

Beam search, per segment: the root branches into N*M candidates, then each step grows every live
beam by M children of S tokens (all segments' children in one batch). Children that finished
(emitted the stop token, ended, or reached the token cap, hit_cap) are never pruned: the partial
scorer judges a window of speech mid-sentence, while a finished child is a whole take the final
scorer can judge whole, so each distinct one joins the segment's final pool, and holds a slot
there. (Pruning them by the partial scorer once cut a complete, correct take in favour of one that
skipped a word and happened to sound closer to the voice in its last 3 s: docs/scaling.md.) Where
a segment has more unfinished children than free slots (N minus its pool) the partial scorer picks
the best (one call for all segments); a segment stops once its pool holds N or nothing is left
unfinished.
Best-of-N grows N complete candidates in one batch. The final scorer then ranks the ended
candidates (the capped ones only if none ended); a lone candidate is taken unscored (score NaN).

Seeds: a child's seed hashes (parent seed, step, child index) and the generator's noise depends
on (seed, token index) only, so a segment's result does not depend on its batch. Best-of
candidate 0 keeps the segment's seed: `best_of=1` is exactly plain generation.

The options (`SearchOptions`, `ScoreWeights`, their limits and modes) are in llasa_cli/options.py.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from ..engine.protocols import Branch, CandidateGenerator, GenerationRequest, GenerationResult
from ..options import MODE_BEAM, SearchOptions

_SEED_MASK = (1 << 63) - 1
_SEED_DOMAIN = b"llasa-cli/search-candidate/v1"

T = TypeVar("T")


# -- protocols -------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """What a scorer sees: a segment's candidate so far (codes never include the voice prompt's)."""

    segment: int  # index into the requests given to search_segments
    request: GenerationRequest
    codes: np.ndarray
    ended: bool  # emitted the stop token
    hit_cap: bool  # reached the segment's token cap without it

    @property
    def finished(self) -> bool:
        return self.ended or self.hit_cap


class CandidateScorer(Protocol):
    """Judges candidates: one score each, higher is better (NaN ranks last)."""

    @property
    def codec_seconds(self) -> float:
        """Seconds spent so far decoding candidates to audio: a running total (0 for scorers that need no
        audio), which the search books on each segment by its share of a call's candidates."""
        ...

    def score(self, items: Sequence[Candidate]) -> list[float]: ...


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchStats:
    """Compute spent on one segment. Work shared with the segments batched alongside (LM calls,
    scorer calls) is counted in each; time is split between them by their share of the rows."""

    mode: str
    width: int
    steps: int  # extend rounds
    candidates: int  # candidates grown (children of every step)
    tokens_generated: int
    lm_calls: int  # start + extend calls this segment took part in
    lm_forward_calls: int  # LM forward passes during those calls
    lm_seconds: float
    partial_scorer_calls: int
    partial_scored: int  # candidates scored
    partial_scorer_seconds: float
    final_scorer_calls: int
    final_scored: int
    final_scorer_seconds: float
    codec_seconds: float  # of the scorer seconds, decoding candidates to audio (scorers that report it)
    ended_candidates: int  # terminal candidates kept that emitted the stop token
    capped_candidates: int  # terminal candidates kept that hit the token cap


@dataclass(frozen=True)
class SearchResult:
    codes: np.ndarray  # the chosen candidate's codes only: never the voice prompt's
    hit_cap: bool
    score: float  # the final scorer's score of the chosen candidate; NaN when nothing was ranked
    stats: SearchStats

    def as_generation_result(self) -> GenerationResult:
        return GenerationResult(codes=self.codes, hit_cap=self.hit_cap, new_tokens=int(self.codes.size))


# -- bookkeeping -----------------------------------------------------------------------

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class _Beam:
    row: int  # the generator's row holding this candidate (valid until the next extend)
    seed: int
    codes: np.ndarray
    ended: bool = False
    hit_cap: bool = False

    @property
    def terminal(self) -> bool:
        return self.ended or self.hit_cap


@dataclass
class _Tally:
    """Running counts of one segment (field names as in SearchStats)."""

    steps: int = 0
    candidates: int = 0
    tokens_generated: int = 0
    lm_calls: int = 0
    lm_forward_calls: int = 0
    lm_seconds: float = 0.0
    partial_scorer_calls: int = 0
    partial_scored: int = 0
    partial_scorer_seconds: float = 0.0
    final_scorer_calls: int = 0
    final_scored: int = 0
    final_scorer_seconds: float = 0.0
    codec_seconds: float = 0.0


@dataclass
class _Segment:
    index: int
    request: GenerationRequest
    cap: int
    alive: list[_Beam] = field(default_factory=list)
    done: list[_Beam] = field(default_factory=list)  # terminal candidates kept
    tally: _Tally = field(default_factory=_Tally)

    def candidate(self, beam: _Beam) -> Candidate:
        return Candidate(self.index, self.request, beam.codes, beam.ended, beam.hit_cap)


def candidate_seed(seed: int, step: int, child: int) -> int:
    """The seed of child `child` grown at beam step `step` from a candidate seeded `seed` (63 bits)."""
    payload = b"\x00".join([_SEED_DOMAIN, str(int(seed)).encode(), str(int(step)).encode(), str(int(child)).encode()])
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & _SEED_MASK


def best_of_seed(seed: int, index: int) -> int:
    """Seed of best-of candidate `index`: candidate 0 keeps the segment's seed (= plain sampling)."""
    return seed if index == 0 else candidate_seed(seed, 0, index)


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    begin = time.perf_counter()
    value = call()
    return value, time.perf_counter() - begin


def _rank_key(score: float) -> float:
    return -math.inf if math.isnan(score) else score


def _top(scores: Sequence[float], keep: int) -> list[int]:
    """Indices of the `keep` best scores, best first; ties go to the earlier index."""
    order = sorted(range(len(scores)), key=lambda i: (-_rank_key(scores[i]), i))
    return order[:keep]


def _score_batched(
    scorer: CandidateScorer,
    groups: Sequence[tuple[_Segment, list[_Beam]]],
) -> tuple[list[list[float]], float]:
    """One scorer call over every group's candidates; the scores split back per group, and the time.

    The part of the call the scorer spent decoding is booked on each group's segment, by its share of
    the candidates."""
    items = [segment.candidate(beam) for segment, beams in groups for beam in beams]
    codec_before = scorer.codec_seconds
    scores, seconds = _timed(lambda: list(scorer.score(items)))
    if len(scores) != len(items):
        raise ValueError(f"the scorer returned {len(scores)} scores for {len(items)} candidates")
    codec = scorer.codec_seconds - codec_before
    out, start = [], 0
    for segment, beams in groups:
        out.append([float(s) for s in scores[start : start + len(beams)]])
        start += len(beams)
        segment.tally.codec_seconds += codec * len(beams) / len(items)
    return out, seconds


# -- the search ------------------------------------------------------------------------


def search_segments(
    requests: Sequence[GenerationRequest],
    generator: CandidateGenerator,
    partial_scorer: CandidateScorer | None,
    final_scorer: CandidateScorer | None,
    options: SearchOptions,
) -> list[SearchResult]:
    """Search every request's segment at once (their candidates share each LM batch and scorer call).

    The partial scorer is needed for beam search, the final scorer whenever N > 1."""
    if options.mode == MODE_BEAM and partial_scorer is None:
        raise ValueError("beam search needs a partial scorer")
    if options.width > 1 and final_scorer is None:
        raise ValueError(f"{options.mode} search needs a final scorer")
    if not requests:
        return []
    segments, state = _start(requests, generator)
    if options.mode == MODE_BEAM:
        assert partial_scorer is not None
        step = 0
        while live := [s for s in segments if s.alive]:
            _beam_step(live, generator, state, partial_scorer, options, step)
            step += 1
    else:
        _best_of(segments, generator, state, options.width)
    chosen = _choose(segments, final_scorer)
    return [_result(segment, beam, score, options) for segment, (beam, score) in zip(segments, chosen, strict=True)]


def _start(requests: Sequence[GenerationRequest], generator: CandidateGenerator) -> tuple[list[_Segment], Any]:
    """Prefill every request once; each segment starts with one root beam (or, with no room, one empty capped one)."""
    before = generator.forward_calls
    started, seconds = _timed(lambda: generator.start(requests))
    if len(started.caps) != len(requests):
        raise ValueError(f"the generator gave {len(started.caps)} caps for {len(requests)} requests")
    segments = [
        _Segment(index, request, int(cap))
        for index, (request, cap) in enumerate(zip(requests, started.caps, strict=True))
    ]
    _charge_lm(segments, seconds, generator.forward_calls - before)
    for segment in segments:
        root = _Beam(row=segment.index, seed=segment.request.seed, codes=_EMPTY)
        if segment.cap > 0:
            segment.alive.append(root)
        else:
            root.hit_cap = True
            segment.done.append(root)
    return segments, started.state


def _charge_lm(owners: Sequence[_Segment], seconds: float, forward_calls: int) -> None:
    """Book one LM call on the segments owning its rows (`owners`: one entry per row); time split by rows."""
    rows: dict[int, int] = {}
    by_index: dict[int, _Segment] = {}
    for segment in owners:
        rows[segment.index] = rows.get(segment.index, 0) + 1
        by_index[segment.index] = segment
    for index, count in rows.items():
        tally = by_index[index].tally
        tally.lm_calls += 1
        tally.lm_forward_calls += forward_calls
        tally.lm_seconds += seconds * count / len(owners)


def _grow(
    generator: CandidateGenerator,
    state: Any,
    plan: Sequence[tuple[_Segment, _Beam, Branch]],
    n_tokens: int,
) -> list[tuple[_Segment, _Beam]]:
    """One extend call for every (segment, parent, branch); the children, whose rows are the branches' order."""
    branches = [branch for _, _, branch in plan]
    before = generator.forward_calls
    extensions, seconds = _timed(lambda: generator.extend(state, branches, n_tokens))
    if len(extensions) != len(branches):
        raise ValueError(f"the generator grew {len(extensions)} candidates for {len(branches)} branches")
    _charge_lm([segment for segment, _, _ in plan], seconds, generator.forward_calls - before)
    children = []
    for row, ((segment, parent, branch), extension) in enumerate(zip(plan, extensions, strict=True)):
        tokens = np.asarray(extension.tokens, dtype=np.int64).ravel()
        if tokens.size > branch.limit or (not extension.ended and tokens.size != branch.limit):
            raise ValueError(f"the generator grew {tokens.size} tokens for a branch limited to {branch.limit}")
        codes = np.concatenate([parent.codes, tokens])
        child = _Beam(row, branch.seed, codes, extension.ended, not extension.ended and codes.size >= segment.cap)
        segment.tally.candidates += 1
        segment.tally.tokens_generated += tokens.size + int(extension.ended)  # the stop token was generated too
        children.append((segment, child))
    return children


def _beam_step(
    segments: Sequence[_Segment],
    generator: CandidateGenerator,
    state: Any,
    scorer: CandidateScorer,
    options: SearchOptions,
    step: int,
) -> None:
    """Grow every live beam of every segment by M children (the root by N*M), then keep each segment's best."""
    n_tokens = options.step_tokens
    plan = []
    for segment in segments:
        fan_out = options.beam_candidates * (options.beam if step == 0 else 1)
        segment.tally.steps += 1
        for beam in segment.alive:
            limit = min(n_tokens, segment.cap - beam.codes.size)
            for child in range(fan_out):
                plan.append((segment, beam, Branch(beam.row, candidate_seed(beam.seed, step, child), limit)))
    by_segment: dict[int, list[_Beam]] = {}
    for segment, child in _grow(generator, state, plan, n_tokens):
        by_segment.setdefault(segment.index, []).append(child)
    _prune([(segment, by_segment[segment.index]) for segment in segments], scorer, options.width)


def _prune(groups: Sequence[tuple[_Segment, list[_Beam]]], scorer: CandidateScorer, width: int) -> None:
    """Each segment's finished children join its final pool unpruned; its free slots go to its best
    unfinished children (scored only where there are more of them than slots)."""
    to_score = []
    for segment, children in groups:
        _pool(segment, [child for child in children if child.terminal])
        going = [child for child in children if not child.terminal]
        slots = max(0, width - len(segment.done))
        if len(going) > slots > 0:
            to_score.append((segment, going, slots))
        else:
            segment.alive = going[:slots]
    if not to_score:
        return
    scores, seconds = _score_batched(scorer, [(segment, going) for segment, going, _ in to_score])
    total = sum(len(going) for _, going, _ in to_score)
    for (segment, going, slots), group_scores in zip(to_score, scores, strict=True):
        tally = segment.tally
        tally.partial_scorer_calls += 1
        tally.partial_scored += len(going)
        tally.partial_scorer_seconds += seconds * len(going) / total
        segment.alive = [going[i] for i in _top(group_scores, slots)]


def _pool(segment: _Segment, finished: Sequence[_Beam]) -> None:
    """Add finished candidates to the segment's final pool, each distinct take once (children of one
    beam that ended alike are one take to the final scorer)."""
    seen = {beam.codes.tobytes() for beam in segment.done}
    for beam in finished:
        if beam.codes.tobytes() not in seen:
            seen.add(beam.codes.tobytes())
            segment.done.append(beam)


def _best_of(segments: Sequence[_Segment], generator: CandidateGenerator, state: Any, width: int) -> None:
    """N complete candidates per segment, all in one extend call."""
    plan = [
        (segment, root, Branch(root.row, best_of_seed(root.seed, index), segment.cap))
        for segment in segments
        for root in segment.alive
        for index in range(width)
    ]
    if not plan:
        return
    for segment in segments:
        segment.tally.steps += bool(segment.alive)
        segment.alive = []
    for segment, child in _grow(generator, state, plan, max(branch.limit for _, _, branch in plan)):
        segment.done.append(child)


def _choose(segments: Sequence[_Segment], scorer: CandidateScorer | None) -> list[tuple[_Beam, float]]:
    """Each segment's best terminal candidate: among the ended ones (the capped ones if none ended),
    by the final scorer, all segments in one call; a lone candidate is taken without scoring."""
    pools = [[beam for beam in segment.done if beam.ended] or segment.done for segment in segments]
    ranked = [(segment, pool) for segment, pool in zip(segments, pools, strict=True) if len(pool) > 1]
    scores: dict[int, list[float]] = {}
    if ranked:
        assert scorer is not None
        results, seconds = _score_batched(scorer, ranked)
        total = sum(len(pool) for _, pool in ranked)
        for (segment, pool), pool_scores in zip(ranked, results, strict=True):
            scores[segment.index] = pool_scores
            segment.tally.final_scorer_calls += 1
            segment.tally.final_scored += len(pool)
            segment.tally.final_scorer_seconds += seconds * len(pool) / total
    chosen = []
    for segment, pool in zip(segments, pools, strict=True):
        if segment.index in scores:
            best = _top(scores[segment.index], 1)[0]
            chosen.append((pool[best], scores[segment.index][best]))
        else:
            chosen.append((pool[0], math.nan))
    return chosen


def _result(segment: _Segment, beam: _Beam, score: float, options: SearchOptions) -> SearchResult:
    stats = SearchStats(
        mode=options.mode,
        width=options.width,
        **asdict(segment.tally),
        ended_candidates=sum(b.ended for b in segment.done),
        capped_candidates=sum(b.hit_cap for b in segment.done),
    )
    return SearchResult(codes=beam.codes.copy(), hit_cap=beam.hit_cap, score=score, stats=stats)
