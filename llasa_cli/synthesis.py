"""Plan -> chapter audio: batched generation, decoding, stitching, a chapter at a time.

`Synthesizer.run` is a generator of events (kokoro style) so the CLI can show
progress and a library user can consume results without any UI. It talks to the
models only through the `SpeechGenerator` / `SpeechCodec` protocols, so tests
drive it with fakes and real runs with Llasa + X-Codec2.

Chapters are processed one after another (segments inside a chapter are batched,
sorted by length) so memory holds one chapter's audio, not the book's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .constants import CODES_PER_SECOND, CONTEXT_TOKENS, SAMPLE_RATE
from .options import EngineOptions, SamplingOptions
from .plan import Chapter, Plan, Segment
from .protocols import GenerationRequest, GenerationResult, SpeechCodec, SpeechGenerator, VoicePrompt
from .sampling import segment_seed

# Every segment may emit at least this many codes (about a second), whatever its estimate,
# so a very short text ("I.") is never cut off by the cap.
MIN_TOKEN_CAP = CODES_PER_SECOND
# The narrator's sample must leave room in the context for the segments that follow it.
NARRATOR_MIN_SECONDS = 2.0
NARRATOR_MAX_SECONDS = 10.0
NARRATOR_ATTEMPTS = 3


def token_cap(est_seconds: float, prompt_tokens: int, headroom: float) -> int:
    """Most codes a segment may generate: its estimate with headroom, within the context."""
    wanted = max(MIN_TOKEN_CAP, math.ceil(est_seconds * CODES_PER_SECOND * headroom))
    room = CONTEXT_TOKENS - prompt_tokens
    return max(0, min(wanted, room))


# --- events -------------------------------------------------------------------


@dataclass(frozen=True)
class NarratorFixed:
    """No voice was given: this segment's speech became the voice of the whole book."""

    segment: Segment
    voice: VoicePrompt


@dataclass(frozen=True)
class SegmentDone:
    segment: Segment
    audio_seconds: float
    codes: int
    new_tokens: int  # tokens the language model produced, the end token included
    hit_cap: bool

    @property
    def empty(self) -> bool:
        return self.audio_seconds == 0.0


@dataclass(frozen=True)
class ChapterWritten:
    chapter: Chapter
    destination: str
    audio_seconds: float


Event = NarratorFixed | SegmentDone | ChapterWritten


class ChapterSink(Protocol):
    """Where finished chapters go: files in a folder, or one stream."""

    def write(self, chapter: Chapter, pieces: Sequence[tuple[np.ndarray, Segment]]) -> ChapterWritten: ...

    def close(self) -> None: ...


# --- the synthesiser ------------------------------------------------------------


@dataclass
class _Rendered:
    audio: np.ndarray
    result: GenerationResult


class Synthesizer:
    def __init__(
        self,
        generator: SpeechGenerator,
        codec: SpeechCodec,
        sampling: SamplingOptions,
        engine: EngineOptions,
    ) -> None:
        self.generator = generator
        self.codec = codec
        self.sampling = sampling
        self.engine = engine

    def run(self, plan: Plan, sink: ChapterSink, voice: VoicePrompt | None = None) -> Iterator[Event]:
        rendered: dict[str, _Rendered] = {}
        if voice is None:
            narrator_segment, voice, first = self._fix_narrator(plan)
            rendered[narrator_segment.segment_id] = first
            yield NarratorFixed(narrator_segment, voice)
            yield _done(narrator_segment, first)
        for chapter in plan.chapters:
            segments = plan.segments_of(chapter.number)
            todo = [s for s in segments if s.segment_id not in rendered]
            for batch in _batches(todo, self.engine.batch_size):
                for segment, item in zip(batch, self._render(batch, voice), strict=True):
                    rendered[segment.segment_id] = item
                    yield _done(segment, item)
            pieces = [(rendered.pop(s.segment_id).audio, s) for s in segments]
            yield sink.write(chapter, pieces)
        sink.close()

    def _render(self, segments: Sequence[Segment], voice: VoicePrompt | None, attempt: int = 0) -> list[_Rendered]:
        requests = [self._request(s, voice, attempt) for s in segments]
        results = self.generator.generate(requests)
        audios = self.codec.decode([r.codes for r in results])
        return [_Rendered(audio, result) for audio, result in zip(audios, results, strict=True)]

    def _request(self, segment: Segment, voice: VoicePrompt | None, attempt: int) -> GenerationRequest:
        prompt = self.generator.prompt_tokens(segment.text, voice)
        cap = token_cap(segment.est_seconds, prompt, self.engine.length_headroom)
        seed = segment_seed(self.sampling.seed, segment.text, attempt)
        return GenerationRequest(text=segment.text, seed=seed, max_new_tokens=cap, voice=voice)

    def _fix_narrator(self, plan: Plan) -> tuple[Segment, VoicePrompt, _Rendered]:
        """Speak one segment without a voice; its speech becomes the book's narrator.

        A sample that ran into its cap or came out empty is a poor voice: try again
        with the next seed, and keep the last try if none is clean.
        """
        segment = choose_narrator_segment(plan.segments)
        item = self._render([segment], None)[0]
        for attempt in range(1, NARRATOR_ATTEMPTS):
            if len(item.result.codes) and not item.result.hit_cap:
                break
            item = self._render([segment], None, attempt)[0]
        return segment, VoicePrompt(codes=item.result.codes, text=segment.text), item


def choose_narrator_segment(segments: Sequence[Segment]) -> Segment:
    """The first ordinary sentence of a comfortable length; titles are too short to carry a voice."""
    if not segments:
        raise ValueError("a plan without segments has no narrator")
    spoken = [s for s in segments if not s.is_title] or list(segments)
    for segment in spoken:
        if NARRATOR_MIN_SECONDS <= segment.est_seconds <= NARRATOR_MAX_SECONDS:
            return segment
    fitting = [s for s in spoken if s.est_seconds <= NARRATOR_MAX_SECONDS]
    return max(fitting, key=lambda s: s.est_seconds) if fitting else spoken[0]


def _batches(segments: Sequence[Segment], size: int) -> Iterator[list[Segment]]:
    """Similar lengths together, so short rows do not wait long for a long one."""
    ordered = sorted(segments, key=lambda s: s.est_seconds)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _done(segment: Segment, item: _Rendered) -> SegmentDone:
    return SegmentDone(
        segment=segment,
        audio_seconds=len(item.audio) / SAMPLE_RATE,
        codes=len(item.result.codes),
        new_tokens=item.result.new_tokens,
        hit_cap=item.result.hit_cap,
    )
