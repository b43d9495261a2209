"""Beam search and best-of-N over the tiny real-architecture LM: one prefill, cache rows reused."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from llasa_cli.constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from llasa_cli.engine.candidates import LmCandidateGenerator
from llasa_cli.engine.generator import END_INDEX, LlasaGenerator
from llasa_cli.engine.protocols import Branch, GenerationRequest, VoicePrompt
from llasa_cli.options import SamplingOptions, SearchOptions
from llasa_cli.search.segment_search import Candidate, search_segments

VOICE = VoicePrompt(codes=np.arange(1000, 1040, dtype=np.int64), text="A short reference clip.")
STEP_SECONDS = 0.1  # 5 tokens per beam step


class EndBias:
    """Wraps the speech head: the end token's logit is the best code's plus `bias`, so rows end now and then."""

    def __init__(self, head, bias: float) -> None:
        self.head, self.bias = head, bias

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden)
        logits[:, END_INDEX] = logits[:, :END_INDEX].max(dim=-1).values + self.bias
        return logits


class CodeScorer:
    """A deterministic verifier over the codes alone; records its batches."""

    codec_seconds = 0.0  # it needs no audio

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, items: Sequence[Candidate]) -> list[float]:
        self.calls.append(len(items))
        return [float(np.mean(item.codes % 97)) + item.codes.size if item.codes.size else 0.0 for item in items]


def twin(generator: LlasaGenerator, sampling: SamplingOptions | None = None, end_bias: float | None = None):
    copy = LlasaGenerator(generator.model, generator.tokenizer, sampling or generator.sampling, vocab=generator.vocab)
    if end_bias is not None:
        copy._head = EndBias(copy._head, end_bias)
    return copy


def requests() -> list[GenerationRequest]:
    return [
        GenerationRequest("Hello there.", seed=5, max_new_tokens=12),
        GenerationRequest("A much longer sentence, with more words in it.", seed=7, max_new_tokens=23, voice=VOICE),
    ]


def search(generator: LlasaGenerator, reqs, options: SearchOptions):
    lm = LmCandidateGenerator(generator)
    return search_segments(reqs, lm, CodeScorer(), CodeScorer(), options), lm


BEAM = SearchOptions(beam=3, beam_candidates=2, beam_step_seconds=STEP_SECONDS)
BEST_OF = SearchOptions(best_of=4)


@pytest.mark.parametrize(
    "sampling",
    [None, SamplingOptions(temperature=0.8, top_p=0.9, top_k=200, repetition_penalty=1.3)],
    ids=["default", "all-filters"],
)
def test_best_of_one_is_plain_generation(tiny_generator, sampling) -> None:
    generator = twin(tiny_generator, sampling, end_bias=0.0)
    reqs = [*requests(), GenerationRequest("Short.", seed=9, max_new_tokens=30)]
    plain = generator.generate(reqs)
    results, lm = search(generator, reqs, SearchOptions())
    for expected, result in zip(plain, results, strict=True):
        assert np.array_equal(expected.codes, result.codes)
        assert expected.hit_cap == result.hit_cap
    assert lm.prefills == [3]


@pytest.mark.parametrize("options", [BEAM, BEST_OF], ids=["beam", "best-of"])
def test_results_shapes_caps_and_reproducibility(tiny_generator, options: SearchOptions) -> None:
    generator = twin(tiny_generator, end_bias=0.5)
    reqs = requests()
    results, _ = search(generator, reqs, options)
    for request, result in zip(reqs, results, strict=True):
        assert result.codes.dtype == np.int64 and result.codes.ndim == 1
        assert ((result.codes >= 0) & (result.codes < CODEBOOK_SIZE)).all()
        assert result.codes.size <= request.max_new_tokens
        if result.hit_cap:
            assert result.codes.size == request.max_new_tokens
        assert result.stats.width == options.width
    again, _ = search(generator, reqs, options)
    for first, second in zip(results, again, strict=True):
        assert np.array_equal(first.codes, second.codes)
        assert first.score == second.score or (math.isnan(first.score) and math.isnan(second.score))
    alone, _ = search(generator, reqs[1:], options)
    assert np.array_equal(alone[0].codes, results[1].codes)


def test_beam_grows_candidates_that_end_and_never_returns_prompt_codes(tiny_generator) -> None:
    """With the end token likely, candidates end mid-step: their codes stop there (no end token,
    no voice codes), and an ended candidate is preferred to a capped one."""
    generator = twin(tiny_generator, end_bias=1.0)
    reqs = [GenerationRequest("Line with a voice.", seed=seed, max_new_tokens=30, voice=VOICE) for seed in range(4)]
    results, _ = search(generator, reqs, BEAM)
    assert any(r.stats.ended_candidates for r in results)
    for result in results:
        assert END_INDEX not in result.codes.tolist()
        assert not np.array_equal(result.codes[: VOICE.codes.size], VOICE.codes)
        if result.stats.ended_candidates:
            assert not result.hit_cap and result.codes.size < 30


def test_prompt_is_prefilled_once_and_steps_are_single_tokens(tiny_generator) -> None:
    generator = twin(tiny_generator)
    shapes: list[tuple[int, int]] = []

    def record(_module, _args, kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))

    handle = generator.model.base_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        results, lm = search(generator, requests(), BEAM)
    finally:
        handle.remove()
    prefills = [shape for shape in shapes if shape[1] > 1]
    assert len(prefills) == 1 and prefills[0][0] == 2  # both prompts, once, in one batch
    assert all(shape[1] == 1 for shape in shapes[1:])
    assert len(shapes) == lm.forward_calls == max(r.stats.lm_forward_calls for r in results)
    # Rows are N*M children per segment at most, never the prompt re-encoded per step.
    assert max(shape[0] for shape in shapes[1:]) <= 2 * BEAM.beam * BEAM.beam_candidates
    caps = [12, 23]
    for result, cap in zip(results, caps, strict=True):
        # The tiny LM seldom ends by itself; a candidate that did is kept (and beats the capped ones).
        assert result.codes.size == cap if result.hit_cap else 0 < result.codes.size < cap
        steps = -(-cap // BEAM.step_tokens)
        assert result.stats.steps == steps and result.stats.lm_calls == steps + 1
    # A step feeds each parent's last token once, then all but the last of the children's: in all,
    # as many forward passes as plain generation of the longest segment.
    assert lm.forward_calls == max(caps)


def test_a_prompt_that_fills_the_context_does_not_widen_the_prefill(tiny_generator) -> None:
    fills = VoicePrompt(codes=np.full(CONTEXT_TOKENS, 42, dtype=np.int64), text="Ref.")
    generator = twin(tiny_generator)
    reqs = [
        GenerationRequest("Hi.", seed=1, max_new_tokens=8),
        GenerationRequest("Hi.", seed=2, max_new_tokens=8, voice=fills),
    ]
    widths: list[int] = []
    handle = generator.model.base_model.register_forward_pre_hook(
        lambda _m, _a, kwargs: widths.append(int(kwargs["input_ids"].shape[1])), with_kwargs=True
    )
    try:
        started = LmCandidateGenerator(generator).start(reqs)
    finally:
        handle.remove()
    assert started.caps == (8, 0)
    assert widths == [generator.prompt_tokens("Hi.", None)]


def test_rows_that_cannot_continue_are_refused(tiny_generator) -> None:
    lm = LmCandidateGenerator(twin(tiny_generator))
    started = lm.start([GenerationRequest("Hi.", seed=1, max_new_tokens=8)])
    grown = lm.extend(started.state, [Branch(0, 1, 2), Branch(0, 2, 1)], n_tokens=2)
    assert [g.tokens.size for g in grown] == [2, 1]
    with pytest.raises(ValueError, match="row 1 cannot be continued"):
        lm.extend(started.state, [Branch(1, 3, 2)], n_tokens=2)  # cut short at its limit: cache row is stale
    assert lm.extend(started.state, [Branch(0, 3, 2), Branch(0, 4, 2)], n_tokens=2)[1].tokens.size == 2


@pytest.mark.parametrize(
    "sampling", [None, SamplingOptions(top_k=300, repetition_penalty=1.5)], ids=["default", "penalty"]
)
def test_a_branch_continued_from_a_selected_row_equals_one_long_branch(tiny_generator, sampling) -> None:
    """Growing in pieces (pick row 1 of 2, run its pending token, repeat it) gives the tokens of one
    uninterrupted branch with the same seed: the cache rows, positions and penalty state follow."""
    generator = twin(tiny_generator, sampling)
    reqs = [GenerationRequest("First.", seed=1, max_new_tokens=20), requests()[1]]
    lm = LmCandidateGenerator(generator)
    state = lm.start(reqs).state
    first = lm.extend(state, [Branch(0, 11, 3), Branch(1, 22, 3), Branch(1, 33, 3)], n_tokens=3)
    second = lm.extend(state, [Branch(2, 33, 4), Branch(1, 22, 4), Branch(2, 33, 4)], n_tokens=4)
    fresh = LmCandidateGenerator(generator)
    whole = fresh.extend(fresh.start(reqs[1:]).state, [Branch(0, 33, 7), Branch(0, 22, 7)], n_tokens=7)
    assert np.array_equal(np.concatenate([first[2].tokens, second[0].tokens]), whole[0].tokens)
    assert np.array_equal(second[0].tokens, second[2].tokens)
    assert np.array_equal(np.concatenate([first[1].tokens, second[1].tokens]), whole[1].tokens)
