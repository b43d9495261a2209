"""The body of a remote worker (a Ray actor): models loaded once, batches rendered on request.

A `RenderWorker` holds no job: it never sees the store. The driver (`dispatch.py`) sends it a
batch (`RenderCall`: the segments, each one's voice and the attempt its seeds start from, and the
book's voices) and records the `Outcome`s it returns: codes, audio, verdict. It builds a book's
renderer (its verifier and scorers, which need the voices' reference audio) when the voices
change, so a library's next book costs no reload. Nothing here depends on Ray: tests drive it in
the test's own process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..engine.protocols import GenerationRequest, GenerationResult, VoicePrompt
from ..job.store import encode_codes
from ..text.plan import Plan, Segment
from .renderer import Outcome, Renderer
from .request import RunRequest

if TYPE_CHECKING:
    from ..engine.loading import SpeechModels
    from .synthesizer import Synthesizer


@dataclass(frozen=True)
class RenderCall:
    """One batch for a worker: its segments, each one's prompt and first attempt, and the
    book's voices (the narrator and each character), which its verifier and scorers judge by."""

    segments: tuple[Segment, ...]
    voices: tuple[VoicePrompt | None, ...]
    bases: tuple[int, ...]
    narrator: VoicePrompt
    characters: Mapping[str, VoicePrompt] = field(default_factory=dict)

    def voices_digest(self) -> str:
        digest = hashlib.sha256()
        for name, voice in sorted({"": self.narrator, **self.characters}.items()):
            digest.update(f"{name}\0{voice.text}\0".encode())
            digest.update(encode_codes(voice.codes))
        return digest.hexdigest()


class RenderWorker:
    """Loads the request's models on this worker's device once (or takes `models` loaded
    already); renders batches, fixes a narrator, encodes and decodes, as the driver asks."""

    def __init__(self, request: RunRequest, models: SpeechModels | None = None) -> None:
        from .run import load_speech_models, make_synthesizer

        self.models = models or load_speech_models(request.engine, request.sampling)
        self.synthesizer: Synthesizer = make_synthesizer(request, self.models)
        self._renderer: tuple[str, Renderer] | None = None

    def batch_size(self) -> int:
        return int(self.synthesizer.engine.batch_size)

    def render(self, call: RenderCall) -> list[Outcome]:
        digest = call.voices_digest()
        if self._renderer is None or self._renderer[0] != digest:
            self._renderer = (digest, self.synthesizer.renderer_for(call.narrator, call.characters))
        renderer = self._renderer[1]
        return renderer.render_verified(list(call.segments), list(call.voices), list(call.bases))

    def fix_narrator(self, plan: Plan) -> tuple[Segment, VoicePrompt]:
        return self.synthesizer.fix_narrator(plan)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(self.models.generator.generate(requests))

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return int(self.models.generator.prompt_tokens(text, voice))

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.models.codec.decode(codes)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.models.codec.encode(audio)

    def ready(self) -> bool:
        """Answers once the models are loaded (the driver waits for every worker)."""
        return True
