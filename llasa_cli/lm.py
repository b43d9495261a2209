"""The Llasa language model's decode loop: a batch of prompts in, speech codes out.

One loop of our own instead of `generate()`: prompts are left-padded, the batch is
prefilled once, then one token per step runs with the key/value cache. Each row samples with
noise seeded from its own seed and the step (`sampling.sample_next`), so a request gives
the same codes alone or inside any batch. Only the speech tokens and the end token are
scored (a slice of the output head), so the LM can never emit text.

This module imports torch: import it only when synthesising.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from .errors import ModelLoadError
from .options import SamplingOptions
from .prompt import SpeechVocab, build_prompt_ids
from .protocols import GenerationRequest, GenerationResult, VoicePrompt
from .sampling import sample_next

# Index of the end token in the scored ids: index c < CODEBOOK_SIZE is speech code c.
END_INDEX = CODEBOOK_SIZE


class SpeechHead:
    """The LM's output head restricted to the allowed ids: [B, H] hidden -> [B, CODEBOOK_SIZE + 1] logits."""

    def __init__(self, model: Any, allowed_ids: np.ndarray) -> None:
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

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        speech = torch.nn.functional.linear(hidden, self._speech_weight, self._speech_bias)
        end = torch.nn.functional.linear(hidden, self._end_weight, self._end_bias)
        return torch.cat([speech, end], dim=-1).float()


@dataclass
class _DecodeState:
    """Per-row bookkeeping of one batch's decode loop (all tensors on the model's device)."""

    caps: torch.Tensor  # [B] most new tokens
    lengths: torch.Tensor  # [B] codes emitted so far
    finished: torch.Tensor  # [B] bool
    ended: torch.Tensor  # [B] bool: stopped by the end token
    choices: torch.Tensor  # [B, steps] scored index chosen at each step
    seen: torch.Tensor | None  # [B, CODEBOOK_SIZE + 1] bool, for the repetition penalty


class LlasaGenerator:
    """`SpeechGenerator` over a Hugging Face causal LM with the Llasa tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        sampling: SamplingOptions,
        notice: str | None = None,
        vocab: SpeechVocab | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.notice = notice  # e.g. "no GPU found, running on CPU", for the CLI to show
        self.vocab = vocab if vocab is not None else SpeechVocab.from_tokenizer(tokenizer)
        self.device = next(model.parameters()).device
        self._allowed = torch.as_tensor(self.vocab.allowed_ids, device=self.device)
        self._head = SpeechHead(model, self.vocab.allowed_ids)
        self._base = model.base_model
        params = inspect.signature(self._base.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else self.vocab.end_id

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
        caps = [max(0, min(r.max_new_tokens, CONTEXT_TOKENS - len(p))) for r, p in zip(requests, prompts, strict=True)]
        with torch.inference_mode():
            state = self._decode(prompts, caps, [r.seed for r in requests], [r.voice for r in requests])
        lengths = state.lengths.tolist()
        choices = state.choices.cpu().numpy().astype(np.int64)
        ended = state.ended.tolist()
        return [
            GenerationResult(codes=choices[row, :n].copy(), hit_cap=not ended[row], new_tokens=n)
            for row, n in enumerate(lengths)
        ]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Run new tokens through the LM body, filling `cache`; the last position's hidden state [B, H]."""
        out = self._base(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{self._cache_kwarg: cache}
        )
        return out.last_hidden_state[:, -1]

    def _initial_state(self, caps: list[int], voices: Sequence[VoicePrompt | None]) -> _DecodeState:
        rows = len(caps)
        device = self.device
        seen = None
        if self.sampling.repetition_penalty != 1.0:
            seen = torch.zeros((rows, CODEBOOK_SIZE + 1), dtype=torch.bool, device=device)
            for row, voice in enumerate(voices):
                if voice is not None and np.asarray(voice.codes).size:
                    seen[row, torch.as_tensor(np.asarray(voice.codes, dtype=np.int64), device=device)] = True
        cap_t = torch.as_tensor(caps, dtype=torch.long, device=device)
        return _DecodeState(
            caps=cap_t,
            lengths=torch.zeros(rows, dtype=torch.long, device=device),
            finished=cap_t <= 0,
            ended=torch.zeros(rows, dtype=torch.bool, device=device),
            choices=torch.zeros((rows, max(max(caps), 1)), dtype=torch.long, device=device),
            seen=seen,
        )

    def _decode(
        self, prompts: list[list[int]], caps: list[int], seeds: list[int], voices: Sequence[VoicePrompt | None]
    ) -> _DecodeState:
        from transformers import DynamicCache

        state = self._initial_state(caps, voices)
        if bool(state.finished.all()):
            return state
        ids, mask = _left_pad(prompts, self._pad_id, self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        next_position = positions[:, -1:] + 1
        cache = DynamicCache(config=self.model.config)
        hidden = self._forward(ids, mask, positions, cache)
        rows = torch.arange(len(prompts), device=self.device)
        for step in range(max(caps)):
            choice = sample_next(self._head(hidden), self.sampling, seeds, step, state.seen)
            _record(state, rows, step, choice)
            if bool(state.finished.all()):
                break
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            hidden = self._forward(self._allowed[choice].unsqueeze(-1), mask, next_position, cache)
            next_position = next_position + 1
        return state


def _record(state: _DecodeState, rows: torch.Tensor, step: int, choice: torch.Tensor) -> None:
    """Book one step's choices: live rows emit a code or end; rows reaching their cap finish."""
    live = ~state.finished
    is_end = choice == END_INDEX
    emit = live & ~is_end
    state.ended |= live & is_end
    state.choices[:, step] = choice
    state.lengths += emit.long()
    if state.seen is not None:
        state.seen[rows, choice] |= emit
    state.finished |= is_end | (state.lengths >= state.caps)


def _left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L] ids and attention mask, prompts aligned to the right so every row's next token is at the end."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)
