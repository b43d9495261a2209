"""The Llasa language model's decode loop: a batch of prompts in, speech codes out.

One loop of our own instead of `generate()`: prompts are left-padded, the batch is
prefilled once, then one token per step runs with the key/value cache. Each row samples with
noise seeded from its own seed and the step (`sampling.sample_next`). On the CPU the model also
computes each row exactly as it would alone (`row_invariance`), so a request gives the same codes
alone or inside any batch; on a GPU the batched kernels may round a row differently by batch
shape, so codes can differ between batch sizes there. Only the speech tokens and the end token
are scored (a slice of the output head), so the LM can never emit text.

This module imports torch: import it only when synthesising.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from ..errors import ModelLoadError
from ..options import SamplingOptions
from .batch_size import ModelShape
from .prompt import SpeechVocab, build_prompt_ids
from .protocols import GenerationRequest, GenerationResult, VoicePrompt
from .row_invariance import make_row_invariant, row_invariant_calls, row_starts, tiled_linear
from .sampling import sample_next

# Index of the end token in the scored ids: index c < CODEBOOK_SIZE is speech code c.
END_INDEX = CODEBOOK_SIZE


class SpeechHead:
    """The LM's output head restricted to the allowed ids: [B, H] hidden -> [B, CODEBOOK_SIZE + 1] logits.
    `row_invariant`: multiply through `tiled_linear`, so a row's logits do not depend on the batch."""

    def __init__(self, model: Any, allowed_ids: np.ndarray, row_invariant: bool = False) -> None:
        head = model.get_output_embeddings()
        weight, bias = head.weight, getattr(head, "bias", None)
        if int(allowed_ids.max()) >= weight.shape[0]:
            raise ModelLoadError(
                f"the tokenizer's speech ids reach {int(allowed_ids.max())} but the model scores only "
                f"{weight.shape[0]} ids: tokenizer and model do not belong together"
            )
        speech = torch.as_tensor(allowed_ids[:-1], device=weight.device)
        end = int(allowed_ids[-1])
        first = int(speech[0])
        if bool((speech == torch.arange(first, first + speech.numel(), device=weight.device)).all()):
            index: slice | torch.Tensor = slice(first, first + speech.numel())  # a view: no copy of the weights
        else:
            index = speech
        self._speech_weight = weight[index]
        self._speech_bias = None if bias is None else bias[index]
        self._end_weight = weight[end : end + 1]
        self._end_bias = None if bias is None else bias[end : end + 1]
        self._linear = tiled_linear if row_invariant else torch.nn.functional.linear

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        speech = self._linear(hidden, self._speech_weight, self._speech_bias)
        end = self._linear(hidden, self._end_weight, self._end_bias)
        return torch.cat([speech, end], dim=-1).float()


@dataclass
class DecodeState:
    """Per-row bookkeeping of one batch's decode loop (all tensors on the model's device)."""

    caps: torch.Tensor  # [B] most new tokens
    lengths: torch.Tensor  # [B] codes emitted so far
    finished: torch.Tensor  # [B] bool
    ended: torch.Tensor  # [B] bool: stopped by the end token
    choices: torch.Tensor  # [B, steps] scored index chosen at each step
    seen: torch.Tensor | None  # [B, CODEBOOK_SIZE + 1] bool, for the repetition penalty


@dataclass
class DecodeContext:
    """A batch in the middle of decoding: the key/value cache, attention mask, next position and
    the last hidden state of every row (the next token's logits come from `hidden`)."""

    cache: Any
    mask: torch.Tensor  # [B, L]
    next_position: torch.Tensor  # [B, 1]
    hidden: torch.Tensor  # [B, H]
    origin: torch.Tensor  # [B] which prompt of the prefill each row continues

    @property
    def rows(self) -> int:
        return int(self.hidden.shape[0])

    def select(self, rows: torch.Tensor) -> DecodeContext:
        """Row i of the result is row `rows[i]` of this batch (rows may repeat, to branch, or be left
        out, to prune). The cache is reordered in place: this context must not be used afterwards."""
        rows = rows.to(self.hidden.device)
        self.cache.reorder_cache(rows)
        return DecodeContext(
            cache=self.cache,
            mask=self.mask.index_select(0, rows),
            next_position=self.next_position.index_select(0, rows),
            hidden=self.hidden.index_select(0, rows),
            origin=self.origin.index_select(0, rows),
        )


class LlasaGenerator:
    """`SpeechGenerator` over a Hugging Face causal LM with the Llasa tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        sampling: SamplingOptions,
        vocab: SpeechVocab | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.vocab = vocab if vocab is not None else SpeechVocab.from_tokenizer(tokenizer)
        self.device = next(model.parameters()).device
        # Bit-identical rows across batch shapes are only reachable on the CPU (row_invariance.py).
        self.row_invariant = self.device.type == "cpu"
        self._allowed = torch.as_tensor(self.vocab.allowed_ids, device=self.device)
        self._head = SpeechHead(model, self.vocab.allowed_ids, self.row_invariant)
        if self.row_invariant:
            make_row_invariant(model)
        self._base = model.base_model
        params = inspect.signature(self._base.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else self.vocab.end_id
        self.rows_sampled = 0  # row-steps run by `generate` so far (finished rows leave the batch)

    @property
    def shape(self) -> ModelShape:
        """What sizes a batch of this model (for `--batch-size auto`)."""
        return ModelShape(self.model.config, int(self.model.dtype.itemsize))

    # -- prompts ---------------------------------------------------------------

    def prompt_ids(self, text: str, voice: VoicePrompt | None) -> list[int]:
        return build_prompt_ids(self.tokenizer, self.vocab, text, voice)

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return len(self.prompt_ids(text, voice))

    # -- generation ------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Codes for each request. Each row stops at the speech end token or at its cap
        (its `max_new_tokens`, clipped so prompt + new tokens fit CONTEXT_TOKENS)."""
        if not requests:
            return []
        prompts = [self.prompt_ids(r.text, r.voice) for r in requests]
        caps = self.token_caps(requests, prompts)
        with torch.inference_mode():
            state = self._decode(prompts, caps, [r.seed for r in requests], [r.voice for r in requests])
        lengths = state.lengths.tolist()
        choices = state.choices.cpu().numpy().astype(np.int64)
        ended = state.ended.tolist()
        return [
            GenerationResult(codes=choices[row, :n].copy(), hit_cap=not ended[row], new_tokens=n)
            for row, n in enumerate(lengths)
        ]

    # -- decoding steps (also used by candidates.py) -----------------------------

    @staticmethod
    def token_caps(requests: Sequence[GenerationRequest], prompts: Sequence[Sequence[int]]) -> list[int]:
        """Most new tokens per request: its `max_new_tokens`, clipped so prompt + new tokens fit the context."""
        return [max(0, min(r.max_new_tokens, CONTEXT_TOKENS - len(p))) for r, p in zip(requests, prompts, strict=True)]

    def prefill(self, prompts: list[list[int]], origin: list[int] | None = None) -> DecodeContext:
        """Run the left-padded prompts through the LM once: the context to decode from. Row i
        continues request `origin[i]` (default: request i)."""
        from transformers import DynamicCache

        ids, mask = _left_pad(prompts, self._pad_id, self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        hidden = self._forward(ids, mask, positions, cache)
        rows = torch.arange(len(prompts)) if origin is None else torch.as_tensor(origin)
        return DecodeContext(
            cache=cache, mask=mask, next_position=positions[:, -1:] + 1, hidden=hidden, origin=rows.to(self.device)
        )

    def feed(self, context: DecodeContext, choice: torch.Tensor) -> None:
        """Run one chosen scored index per row ([B]) through the LM, advancing `context` in place."""
        context.mask = torch.cat([context.mask, context.mask.new_ones((context.mask.shape[0], 1))], dim=-1)
        ids = self._allowed[choice].unsqueeze(-1)
        context.hidden = self._forward(ids, context.mask, context.next_position, context.cache)
        context.next_position = context.next_position + 1

    def logits(self, context: DecodeContext) -> torch.Tensor:
        """[B, CODEBOOK_SIZE + 1] float logits of each row's next token (index END_INDEX: the end token)."""
        return self._head(context.hidden)

    def initial_seen(self, voices: Sequence[VoicePrompt | None]) -> torch.Tensor | None:
        """[B, CODEBOOK_SIZE + 1] codes each row has said (its voice prompt's), for the repetition penalty;
        None when the penalty is off."""
        if self.sampling.repetition_penalty == 1.0:
            return None
        seen = torch.zeros((len(voices), CODEBOOK_SIZE + 1), dtype=torch.bool, device=self.device)
        for row, voice in enumerate(voices):
            if voice is not None and np.asarray(voice.codes).size:
                seen[row, torch.as_tensor(np.asarray(voice.codes, dtype=np.int64), device=self.device)] = True
        return seen

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Run new tokens through the LM body, filling `cache`; the last position's hidden state [B, H]."""
        kwargs: dict[str, Any] = {self._cache_kwarg: cache}
        if self.row_invariant:
            kwargs["row_starts"] = row_starts(mask)
        with row_invariant_calls() if self.row_invariant else nullcontext():
            out = self._base(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        return out.last_hidden_state[:, -1]

    def _decode(
        self, prompts: list[list[int]], caps: list[int], seeds: list[int], voices: Sequence[VoicePrompt | None]
    ) -> DecodeState:
        state = new_decode_state(caps, self.initial_seen(voices), self.device)
        if bool(state.finished.all()):
            return state
        # A prompt that leaves no room (cap 0) is not prefilled: padding the batch to a prompt as long
        # as the context would cost more than the rest of the batch, for no code.
        live = [row for row, cap in enumerate(caps) if cap > 0]
        context = self.prefill([prompts[row] for row in live], origin=live)
        row_seeds = [seeds[row] for row in live]
        for step in range(max(caps)):
            rows = context.origin
            seen = None if state.seen is None else state.seen[rows]
            choice = sample_next(self.logits(context), self.sampling, row_seeds, step, seen)
            self.rows_sampled += len(row_seeds)
            record_choices(state, rows, step, choice)
            done = state.finished[rows]
            finished_rows = int(done.sum())
            if finished_rows == len(row_seeds):
                break
            if finished_rows * DROP_FINISHED_SHARE >= len(row_seeds):
                live = (~done).nonzero().squeeze(-1)
                context, choice = context.select(live), choice[live]
                row_seeds = [seeds[row] for row in context.origin.tolist()]
            self.feed(context, choice)
        return state


# Finished rows leave the batch once they are at least 1 / DROP_FINISHED_SHARE of it: every
# later step is that much smaller, and copying the live rows' cache costs about one step's
# reads, so dropping rows one by one would cost more than it saves.
DROP_FINISHED_SHARE = 4


def new_decode_state(caps: Sequence[int], seen: torch.Tensor | None, device: torch.device) -> DecodeState:
    """Bookkeeping for rows that may each emit at most `caps[row]` codes."""
    cap_t = torch.as_tensor(list(caps), dtype=torch.long, device=device)
    rows = cap_t.shape[0]
    return DecodeState(
        caps=cap_t,
        lengths=torch.zeros(rows, dtype=torch.long, device=device),
        finished=cap_t <= 0,
        ended=torch.zeros(rows, dtype=torch.bool, device=device),
        choices=torch.zeros((rows, max(max(caps), 1)), dtype=torch.long, device=device),
        seen=seen,
    )


def record_choices(state: DecodeState, rows: torch.Tensor, step: int, choice: torch.Tensor) -> None:
    """Book one step's choices of the state rows `rows` ([R], distinct): live rows emit a code or
    end; rows reaching their cap finish. Rows not in `rows` are left as they are."""
    live = ~state.finished[rows]
    is_end = choice == END_INDEX
    emit = live & ~is_end
    state.ended[rows] |= live & is_end
    state.choices[rows, step] = choice
    lengths = state.lengths[rows] + emit.long()
    state.lengths[rows] = lengths
    if state.seen is not None:
        state.seen[rows, choice] |= emit
    state.finished[rows] |= is_end | (lengths >= state.caps[rows])


def _left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L] ids and attention mask, prompts aligned to the right so every row's next token is at the end."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)
