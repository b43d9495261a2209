"""Fakes for the model seams (`SpeechGenerator`, `SpeechCodec`), in the spirit of llm's mock model.

`FakeGenerator.enqueue(text, codes)` fixes what a text gets next; otherwise codes are
a deterministic function of the request's seed and text length, like a real model
whose randomness comes from the seed only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llasa_cli.constants import CHARS_PER_SECOND, CODES_PER_SECOND, SAMPLES_PER_CODE
from llasa_cli.engine.protocols import GenerationRequest, GenerationResult, VoicePrompt


class FakeGenerator:
    def __init__(self) -> None:
        self.queued: dict[str, deque[tuple[np.ndarray, bool]]] = defaultdict(deque)
        self.batches: list[list[GenerationRequest]] = []

    def enqueue(self, text: str, codes: Sequence[int], hit_cap: bool = False) -> None:
        self.queued[text].append((np.asarray(codes, dtype=np.int64), hit_cap))

    @property
    def requests(self) -> list[GenerationRequest]:
        return [r for batch in self.batches for r in batch]

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return len(text.split()) + 10 + (len(voice.codes) + len(voice.text.split()) if voice else 0)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches.append(list(requests))
        return [self._one(r) for r in requests]

    def _one(self, request: GenerationRequest) -> GenerationResult:
        if self.queued[request.text]:
            codes, hit_cap = self.queued[request.text].popleft()
        else:
            length = max(1, round(len(request.text) / CHARS_PER_SECOND * CODES_PER_SECOND))
            codes = np.random.default_rng(request.seed).integers(0, 65_536, size=length)
            hit_cap = False
        codes = codes[: request.max_new_tokens]
        return GenerationResult(codes=codes, hit_cap=hit_cap, new_tokens=len(codes) + (0 if hit_cap else 1))


class FakeCodec:
    """Each code becomes SAMPLES_PER_CODE samples of a tone whose pitch depends on the code."""

    def __init__(self) -> None:
        self.decode_calls: list[int] = []

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.decode_calls.append(len(codes))
        return [self._tone(np.asarray(c)) for c in codes]

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return np.arange(len(audio) // SAMPLES_PER_CODE, dtype=np.int64) % 65_536

    @staticmethod
    def _tone(codes: np.ndarray) -> np.ndarray:
        t = np.arange(SAMPLES_PER_CODE) / 16_000
        blocks = [0.3 * np.sin(2 * np.pi * (200 + int(c) % 400) * t) for c in codes]
        return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, dtype=np.float32)


def integrity(database: Path) -> str:
    """SQLite's own verdict on a job database: 'ok' when it is sound."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
