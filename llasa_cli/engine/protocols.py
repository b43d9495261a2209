"""The model seams. Everything above them (pipeline, search, tests) talks to these.

Arrays are NumPy so that callers never need torch: codes are 1-D int64 arrays of
codec code indices (0..CODEBOOK_SIZE-1), audio is 1-D float32 at SAMPLE_RATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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
