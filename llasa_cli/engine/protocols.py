"""The model seams. Everything above them (pipeline, search, voices, tests) talks to these.

- `SpeechGenerator`: the language model, text (+ voice prompt) to codec codes, a batch at a time.
- `CandidateGenerator`: the same model grown branch by branch, for verifier-guided search.
- `SpeechCodec`: X-Codec2, codes <-> audio.

Arrays are NumPy so that callers never need torch: codes are 1-D int64 arrays of
codec code indices (0..CODEBOOK_SIZE-1), audio is 1-D float32 at SAMPLE_RATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class VoicePrompt:
    """A narrator voice: a reference clip's codec codes and what the clip says."""

    codes: np.ndarray
    text: str


@dataclass(frozen=True)
class GenerationRequest:
    """One row of a batch: speak `text` in `voice`, drawing randomness from `seed` only."""

    text: str
    seed: int
    max_new_tokens: int
    voice: VoicePrompt | None = None


@dataclass(frozen=True)
class GenerationResult:
    codes: np.ndarray  # the generated codes only: never the voice prompt's
    hit_cap: bool  # stopped by max_new_tokens rather than the speech end token
    new_tokens: int


class SpeechGenerator(Protocol):
    """The language model: text (+ voice prompt) to codec codes, a batch at a time."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        """Length of the prompt for this text and voice, to budget the context."""
        ...


class SpeechCodec(Protocol):
    """X-Codec2: codes <-> 16 kHz audio."""

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]: ...

    def encode(self, audio: np.ndarray) -> np.ndarray: ...


# -- branching generation, for search ---------------------------------------------------


@dataclass(frozen=True)
class Branch:
    """One new candidate: continue the generator's row `parent` with noise from `seed`, adding
    at most `limit` tokens (the extension stops earlier at the stop token)."""

    parent: int
    seed: int
    limit: int


@dataclass(frozen=True)
class Extension:
    """What a branch added: codes (int64, never the stop token) and whether it emitted the stop token."""

    tokens: np.ndarray
    ended: bool


@dataclass(frozen=True)
class Started:
    """The generator's opaque state after `start`, and each request's token cap (prompt clipped to context)."""

    state: Any
    caps: tuple[int, ...]


class CandidateGenerator(Protocol):
    """Grows candidates in batches. `start` makes one root row per request (each prompt prefilled
    once); `extend` grows every branch in one batch, after which the generator's rows are the
    branches in order, so a later `Branch.parent` indexes them. A branch seeded with a request's own
    seed from its root reproduces `SpeechGenerator.generate` for that request."""

    @property
    def forward_calls(self) -> int:
        """LM forward passes so far (a running count)."""
        ...

    def start(self, requests: Sequence[GenerationRequest]) -> Started: ...

    def extend(self, state: Any, branches: Sequence[Branch], n_tokens: int) -> list[Extension]: ...
