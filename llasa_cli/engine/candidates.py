"""The Llasa LM as a `CandidateGenerator` (protocols.py), for verifier-guided search: prompts
prefilled once, candidates grown by selecting (and repeating) rows of the key/value cache, never by
re-encoding the prompt.

`start` prefills every request's prompt in one batch. `extend` first picks the parents' cache
rows, runs their last sampled token through the LM (once per parent, not per child), repeats
the rows once per child, then decodes all children together, one token per step. Each child
draws noise from (its seed, its token index), exactly like `LlasaGenerator.generate`, so a
branch seeded with a request's own seed from the root reproduces plain generation.

This module imports torch: import it only when synthesising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from .generator import DecodeContext, LlasaGenerator, new_decode_state, record_choices
from .protocols import Branch, Extension, GenerationRequest, Started
from .sampling import sample_next


@dataclass
class LmRows:
    """The generator's current rows (the prompts after `start`, the branches after each `extend`)."""

    context: DecodeContext | None  # None when nothing was prefilled (no request had room to speak)
    pending: torch.Tensor | None  # [R] last sampled index of each row, not yet run through the LM
    lengths: list[int]  # codes each row's candidate holds so far (its noise steps continue from there)
    open: list[bool]  # the row may be continued: it neither ended nor stopped short of the last step
    seen: torch.Tensor | None  # [R, CODEBOOK_SIZE + 1] for the repetition penalty


class LmCandidateGenerator:
    """`CandidateGenerator` over a loaded `LlasaGenerator` (its model, tokenizer and sampling options)."""

    def __init__(self, generator: LlasaGenerator) -> None:
        self.generator = generator
        self.forward_calls = 0
        self.prefills: list[int] = []  # rows prefilled per `start` call

    def start(self, requests: Sequence[GenerationRequest]) -> Started:
        g = self.generator
        prompts = [g.prompt_ids(r.text, r.voice) for r in requests]
        caps = g.token_caps(requests, prompts)
        context = None
        if any(cap > 0 for cap in caps):
            # A prompt that leaves no room (cap 0) is never continued: a one-token stand-in keeps its
            # row without padding the whole batch's prefill to a prompt as long as the context.
            stand_ins = [prompt if cap > 0 else prompt[-1:] for prompt, cap in zip(prompts, caps, strict=True)]
            with torch.inference_mode():
                context = g.prefill(stand_ins)
            self.forward_calls += 1
            self.prefills.append(len(prompts))
        rows = LmRows(
            context=context,
            pending=None,
            lengths=[0] * len(requests),
            open=[cap > 0 for cap in caps],
            seen=g.initial_seen([r.voice for r in requests]),
        )
        return Started(state=rows, caps=tuple(caps))

    def extend(self, state: LmRows, branches: Sequence[Branch], n_tokens: int) -> list[Extension]:
        """Grow each branch by up to min(limit, n_tokens) tokens; afterwards the rows are the branches."""
        parents = [b.parent for b in branches]
        for parent in parents:
            if not (0 <= parent < len(state.open) and state.open[parent]):
                raise ValueError(f"row {parent} cannot be continued (ended, cut short or out of range)")
        if not branches:
            _replace(state, LmRows(None, None, [], [], None))
            return []
        with torch.inference_mode():
            context, seen = self._branch(state, parents)
            offsets = [state.lengths[p] for p in parents]
            return self._decode(state, context, seen, branches, offsets, n_tokens)

    def _branch(self, state: LmRows, parents: list[int]) -> tuple[DecodeContext, torch.Tensor | None]:
        """The parents' rows, their pending tokens run through the LM once each, repeated per child."""
        assert state.context is not None
        device = self.generator.device
        context = state.context
        if state.pending is not None:
            unique = list(dict.fromkeys(parents))
            context = _select(context, unique, device)
            self.generator.feed(context, state.pending[torch.as_tensor(unique, device=state.pending.device)])
            self.forward_calls += 1
            position = {parent: index for index, parent in enumerate(unique)}
            context = _select(context, [position[p] for p in parents], device)
        else:
            context = _select(context, parents, device)
        seen = None if state.seen is None else state.seen[torch.as_tensor(parents, device=state.seen.device)]
        return context, seen

    def _decode(
        self,
        state: LmRows,
        context: DecodeContext,
        seen: torch.Tensor | None,
        branches: Sequence[Branch],
        offsets: list[int],
        n_tokens: int,
    ) -> list[Extension]:
        g = self.generator
        limits = [max(0, min(b.limit, n_tokens)) for b in branches]
        decode = new_decode_state(limits, seen, g.device)
        seeds = [b.seed for b in branches]
        rows = torch.arange(len(branches), device=g.device)
        steps_run, choice = 0, None
        while steps_run < max(limits):
            steps = [offset + steps_run for offset in offsets]
            choice = sample_next(g.logits(context), g.sampling, seeds, steps, decode.seen)
            record_choices(decode, rows, steps_run, choice)
            steps_run += 1
            if steps_run == max(limits) or bool(decode.finished.all()):
                break
            g.feed(context, choice)
            self.forward_calls += 1
        lengths = decode.lengths.tolist()
        ended = decode.ended.tolist()
        choices = decode.choices.cpu().numpy().astype(np.int64)
        _replace(
            state,
            LmRows(
                context=context,
                pending=choice,
                lengths=[offset + n for offset, n in zip(offsets, lengths, strict=True)],
                open=[not e and n == steps_run for e, n in zip(ended, lengths, strict=True)],
                seen=decode.seen,
            ),
        )
        return [Extension(tokens=choices[row, :n].copy(), ended=bool(ended[row])) for row, n in enumerate(lengths)]


def _select(context: DecodeContext, rows: list[int], device: torch.device) -> DecodeContext:
    """`context.select(rows)`, skipped when it would keep every row in place."""
    if rows == list(range(context.rows)):
        return context
    return context.select(torch.as_tensor(rows, dtype=torch.long, device=device))


def _replace(state: LmRows, new: LmRows) -> None:
    """Make `state` (the object the search holds) describe the new rows."""
    for item in fields(LmRows):
        setattr(state, item.name, getattr(new, item.name))
