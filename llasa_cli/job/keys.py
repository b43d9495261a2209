"""Keys that decide what a rerun must redo: a segment's key changes exactly when its codes
would, and a chapter's digest exactly when its file would.

Invalidation follows from this, with nothing to maintain by hand: a changed model, codec,
narrator voice, seed or sampling option changes every segment key (everything is synthesised
again; a character's new voice, only that character's segments);
an edited sentence changes its segment's key only; changed pauses, loudness or format change
the chapter digests only (files are re-stitched from stored codes, nothing is re-synthesised).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..engine.protocols import VoicePrompt
from ..options import MODE_PLAIN, EngineOptions, SamplingOptions, SearchOptions
from ..text.plan import Chapter, Plan, Segment
from .store import encode_codes, plain_json

KEY_VERSION = "llasa-segment-key/1"


def segment_key(
    text: str, voice: VoicePrompt | None, model: str, codec: str, sampling: dict[str, Any], seed: int
) -> str:
    """Digest of every input that changes a segment's codes; equal inputs, equal keys."""
    voice_digest = None if voice is None else hashlib.sha256(encode_codes(voice.codes)).hexdigest()
    header = {
        "v": KEY_VERSION,
        "text": text,
        "voice_text": None if voice is None else voice.text,
        "voice_codes": voice_digest,
        "model": model,
        "codec": codec,
        "sampling": sampling,
        "seed": int(seed),
    }
    canonical = json.dumps(header, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=plain_json)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def manuscript_fingerprint(text: str) -> str:
    """Digest of a manuscript's text, to tell whether a work folder belongs to it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def keys_for(
    plan: Plan,
    engine: EngineOptions,
    sampling: SamplingOptions,
    voice: VoicePrompt,
    search: SearchOptions | None = None,
    characters: Mapping[str, VoicePrompt] | None = None,
) -> dict[str, str]:
    """Segment id -> job key, for every segment of the plan. A segment is keyed with the voice
    that speaks it: `voice` (the narrator's), or for a character's segment (`Segment.voice`) its
    prompt in `characters`, so a new voice for one character changes that character's keys only."""
    options = {k: v for k, v in dataclasses.asdict(sampling).items() if k != "seed"}
    options["length_headroom"] = engine.length_headroom
    if search is not None and search.mode != MODE_PLAIN:
        # Search picks other codes than plain sampling: a --beam run must not reuse --beam 1 results.
        options["search"] = dataclasses.asdict(search)
    return {
        s.segment_id: segment_key(
            s.text, voice_of(s, voice, characters), engine.model, engine.codec, options, sampling.seed
        )
        for s in plan.segments
    }


def voice_of(segment: Segment, narrator: VoicePrompt, characters: Mapping[str, VoicePrompt] | None) -> VoicePrompt:
    """The prompt a segment is spoken with: its character's, else the narrator's."""
    if segment.voice is None:
        return narrator
    if characters is None or segment.voice not in characters:
        raise ValueError(f"segment {segment.segment_id} is spoken by {segment.voice!r}, who has no voice")
    return characters[segment.voice]
