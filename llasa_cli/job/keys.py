"""Keys that decide what a rerun must redo: a segment's key changes exactly when its codes
would, and a chapter's digest exactly when its file would.

Invalidation follows from this, with nothing to maintain by hand: a changed model, codec,
voice, seed or sampling option changes every segment key (everything is synthesised again);
an edited sentence changes its segment's key only; changed pauses, loudness or format change
the chapter digests only (files are re-stitched from stored codes, nothing is re-synthesised).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..constants import CODES_PER_SECOND, CONTEXT_TOKENS
from ..engine.protocols import VoicePrompt
from ..options import EngineOptions, SamplingOptions
from ..search.options import MODE_PLAIN, SearchOptions
from ..text.plan import Chapter, Plan, Segment
from .store import segment_key

# Every segment may emit at least this many codes (about a second), whatever its estimate,
# so a very short text ("I.") is never cut off by the cap.
MIN_TOKEN_CAP = CODES_PER_SECOND


def token_cap(est_seconds: float, prompt_tokens: int, headroom: float) -> int:
    """Most codes a segment may generate: its estimate with headroom, within the context."""
    wanted = max(MIN_TOKEN_CAP, math.ceil(est_seconds * CODES_PER_SECOND * headroom))
    room = CONTEXT_TOKENS - prompt_tokens
    return max(0, min(wanted, room))


class JobKeys:
    def __init__(
        self, engine: EngineOptions, sampling: SamplingOptions, voice: VoicePrompt, search: dict[str, Any] | None = None
    ) -> None:
        self.engine = engine
        self.voice = voice
        self.sampling = {k: v for k, v in dataclasses.asdict(sampling).items() if k != "seed"}
        self.seed = sampling.seed
        # Search picks other codes than plain sampling: a --beam run must not reuse --beam 1 results.
        self.search = search

    def segment(self, segment: Segment) -> str:
        sampling = {**self.sampling, "length_headroom": self.engine.length_headroom}
        if self.search is not None:
            sampling["search"] = self.search
        return segment_key(segment.text, self.voice, self.engine.model, self.engine.codec, sampling, self.seed)

    @staticmethod
    def chapter_digest(chapter: Chapter, segments: Sequence[Segment], codes: Sequence[np.ndarray], sink: str) -> str:
        """Digest of everything a chapter file is made of: its segments' codes, pauses and the sink's settings.

        The codes themselves, not the keys, so a `redo` (same key, new take) rewrites the chapter.
        """
        pieces = [
            [hashlib.sha256(np.asarray(c, dtype=np.int64).tobytes()).hexdigest(), segment.pause_after.value]
            for c, segment in zip(codes, segments, strict=True)
        ]
        payload = {"slug": chapter.slug, "pieces": pieces, "sink": sink}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def search_key(options: SearchOptions | None) -> dict[str, Any] | None:
    """The part of a segment's key that search decides (None for plain sampling)."""
    return None if options is None or options.mode == MODE_PLAIN else dataclasses.asdict(options)


def keys_for(
    plan: Plan,
    engine: EngineOptions,
    sampling: SamplingOptions,
    voice: VoicePrompt,
    search: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Segment id -> job key, for every segment of the plan."""
    keys = JobKeys(engine, sampling, voice, search)
    return {s.segment_id: keys.segment(s) for s in plan.segments}
