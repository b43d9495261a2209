"""Plan -> chapter audio: batched generation, decoding, stitching, recorded in the job store.

`Synthesizer.run` is a generator of events (kokoro style) so the CLI can show
progress and a library user can consume results without any UI. It talks to the
models only through the `SpeechGenerator` / `SpeechCodec` protocols, so tests
drive it with fakes and real runs with Llasa + X-Codec2.

Every segment is recorded in the job store (`jobstore.JobStore`) the moment its codes
exist, so a crash loses at most the batch in flight, and a rerun redoes nothing that
was finished. Segments are claimed a batch at a time under leases, so several runs on
one job share the work instead of repeating it. Chapters are processed one after another
(segments inside a chapter are batched, sorted by length) so memory holds one chapter's
audio, not the book's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .constants import SAMPLE_RATE
from .jobkeys import JobKeys, token_cap
from .jobstore import JobStore, PlanRow
from .options import EngineOptions, SamplingOptions, VerifyOptions
from .plan import Chapter, Plan, Segment
from .protocols import GenerationRequest, GenerationResult, SpeechCodec, SpeechGenerator, VoicePrompt
from .sampling import segment_seed
from .synthesis_events import (
    ChapterHeld,
    ChapterSink,
    ChapterWritten,
    Event,
    JobFinished,
    JobOpened,
    NarratorFixed,
    RunStopped,
    SegmentDone,
    Waiting,
)

if TYPE_CHECKING:
    from .search import CandidateGenerator, SearchOptions
    from .verify import SegmentVerifier, Verdict

FLAGGED = "flagged"  # key in a segment's stored scores: it failed verification on every attempt

# The narrator's sample must leave room in the context for the segments that follow it.
NARRATOR_MIN_SECONDS = 2.0
NARRATOR_MAX_SECONDS = 10.0
NARRATOR_ATTEMPTS = 3
NARRATOR_KEY = "narrator"
# Seeds of a redone segment (take t) start at attempt t * ATTEMPTS_PER_TAKE, clear of earlier takes.
ATTEMPTS_PER_TAKE = 1_000
DEFAULT_LEASE_SECONDS = 900.0
POLL_SECONDS = 2.0


@dataclass
class _Rendered:
    audio: np.ndarray
    result: GenerationResult
    seconds: float = 0.0
    verify_seconds: float = 0.0
    search: dict[str, Any] | None = None  # the search's compute: tokens, LM calls, scorer calls and times


@dataclass(frozen=True)
class _Outcome:
    """The attempt kept for a segment, its verdict (None: not verified), and what all attempts cost."""

    item: _Rendered
    verdict: Verdict | None
    attempts: int
    seconds: float
    verify_seconds: float


def _best(tries: list[tuple[_Rendered, Verdict]]) -> _Outcome:
    from .verify import best_attempt

    item, verdict = tries[best_attempt([v for _, v in tries])]
    return _Outcome(
        item,
        verdict,
        attempts=len(tries),
        seconds=sum(i.seconds for i, _ in tries),
        verify_seconds=sum(i.verify_seconds for i, _ in tries),
    )


@dataclass(frozen=True)
class Search:
    """Verifier-guided search (`--beam N`, `--best-of N`) over an LM that can branch its cache."""

    options: SearchOptions
    candidates: CandidateGenerator
    lang: str = "en"


@dataclass(frozen=True)
class Verification:
    """The verify options and how to build a verifier once the narrator's reference audio is known."""

    options: VerifyOptions
    load: Callable[[np.ndarray], SegmentVerifier]


@dataclass
class RunContext:
    """Where a run records its work, and who it is among the runs sharing the job."""

    store: JobStore
    worker: str
    stop_reason: Callable[[], str | None] = lambda: None
    log: Callable[[str], None] = lambda message: None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_seconds: float = POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep
    # Whether the run holding a lease still lives; a dead one's claims are released at once
    # instead of waiting out the lease (a resume right after a crash must not wait 15 minutes).
    worker_alive: Callable[[str], bool] = lambda worker: True
    keys: dict[str, str] = field(default_factory=dict)  # segment id -> segment key


class Synthesizer:
    def __init__(
        self,
        generator: SpeechGenerator,
        codec: SpeechCodec,
        sampling: SamplingOptions,
        engine: EngineOptions,
        verification: Verification | None = None,
        search: Search | None = None,
    ) -> None:
        self.generator = generator
        self.codec = codec
        self.sampling = sampling
        self.engine = engine
        self.verification = verification
        self.verifier: SegmentVerifier | None = None
        self.search = search
        self.scorers: tuple[Any, Any] | None = None

    # --- the run --------------------------------------------------------------

    def run(
        self, plan: Plan, sink: ChapterSink, context: RunContext, voice: VoicePrompt | None = None
    ) -> Iterator[Event]:
        voice = yield from self._narrator(plan, context, voice)
        if voice is None:
            return  # stopped while waiting for another run to fix the narrator
        context.keys = keys_for(plan, self.engine, self.sampling, voice, self._search_key())
        # The narrator's own audio is what the speaker check compares against.
        needs_reference = self.verification is not None or self.search is not None
        reference = self.codec.decode([voice.codes])[0] if needs_reference else None
        if self.verification is not None:
            self.verifier = self.verification.load(reference)
        if self.search is not None:
            from .search_adapters import make_scorers

            self.scorers = make_scorers(
                self.verifier, reference, self.codec, self.search.options.score_weights, self.search.lang
            )
        context.store.sync_plan([PlanRow.from_segment(context.keys[s.segment_id], s) for s in plan.segments])
        opened = context.store.status()
        yield JobOpened(total=opened.total, done=opened.done)
        waiting = list(plan.chapters)
        while waiting:
            left: list[Chapter] = []
            for chapter in waiting:
                if (reason := context.stop_reason()) is not None:
                    yield RunStopped(reason)
                    return
                fresh: dict[str, np.ndarray] = {}  # this pass's decoded audio, so a chapter is not decoded twice
                finished = yield from self._work_on(plan, chapter, context, voice, fresh)
                if finished:
                    yield write_chapter(plan, chapter, sink, context, self.codec, strict=self._strict, decoded=fresh)
                else:
                    left.append(chapter)
            if left:
                yield Waiting(tuple(c.number for c in left))
                context.sleep(context.poll_seconds)
            waiting = left
        sink.close()
        finished = context.store.status()
        flagged = tuple(s.segment_id for s in plan.segments if is_flagged(context.store, context.keys[s.segment_id]))
        yield JobFinished(total=finished.total, done=finished.done, flagged=flagged)

    def _work_on(
        self, plan: Plan, chapter: Chapter, context: RunContext, voice: VoicePrompt, fresh: dict[str, np.ndarray]
    ) -> Iterator[Event]:
        """Generate the chapter's claimable segments, a batch at a time; True when all are done."""
        segments = sorted(plan.segments_of(chapter.number), key=lambda s: s.est_seconds)
        by_key = {context.keys[s.segment_id]: s for s in segments}
        while True:
            done = context.store.done_keys(list(by_key))
            pending = [k for k in by_key if k not in done]
            if not pending:
                return True
            if context.stop_reason() is not None:
                return False
            claimed = _claim(context, pending, self.engine.batch_size)
            if not claimed:
                return False  # another run holds the rest
            batch = [by_key[k] for k in claimed]
            takes = context.store.takes(claimed)
            context.log(f"start {' '.join(claimed)}")
            kept = self._render_verified(batch, voice, [takes[k] * ATTEMPTS_PER_TAKE for k in claimed])
            for key, segment, outcome in zip(claimed, batch, kept, strict=True):
                if self._record(context, key, outcome):
                    fresh[key] = outcome.item.audio
                yield _done(segment, outcome)

    def _record(self, context: RunContext, key: str, outcome: _Outcome) -> bool:
        """Store the kept attempt; False when another run finished the key first (its codes stand)."""
        item, verdict = outcome.item, outcome.verdict
        scores = {} if verdict is None else {**verdict.to_dict(), FLAGGED: not verdict.passed}
        recorded = context.store.record_done(
            key,
            item.result.codes,
            attempts=outcome.attempts,
            scores=scores,
            timings={"seconds": outcome.seconds, "verify_seconds": outcome.verify_seconds, "search": item.search},
            hit_cap=item.result.hit_cap,
            worker=context.worker,
        )
        context.log(f"done {key} codes={len(item.result.codes)} hit_cap={int(item.result.hit_cap)}")
        return recorded

    def _render_verified(self, segments: Sequence[Segment], voice: VoicePrompt, bases: Sequence[int]) -> list[_Outcome]:
        """Render, verify, and sample the failing rows again (new seeds, batched), keeping each row's best."""
        items = self._render(segments, voice, bases)
        if self.verifier is None or self.verification is None:
            return [_Outcome(item, None, 1, item.seconds, 0.0) for item in items]
        history = [[(item, verdict)] for item, verdict in zip(items, self._verify(segments, items), strict=True)]
        for retry in range(1, self.verification.options.retries + 1):
            failing = [n for n, tries in enumerate(history) if not tries[-1][1].passed]
            if not failing:
                break
            again = self._render([segments[n] for n in failing], voice, [bases[n] + retry for n in failing])
            verdicts = self._verify([segments[n] for n in failing], again)
            for n, item, verdict in zip(failing, again, verdicts, strict=True):
                history[n].append((item, verdict))
        return [_best(tries) for tries in history]

    def _verify(self, segments: Sequence[Segment], items: Sequence[_Rendered]) -> list[Verdict]:
        from .verify import VerifyItem

        assert self.verifier is not None
        started = time.monotonic()
        verdicts = self.verifier.verify(
            [VerifyItem(s.text, i.audio, i.result.hit_cap) for s, i in zip(segments, items, strict=True)]
        )
        per_row = (time.monotonic() - started) / max(1, len(items))
        for item in items:
            item.verify_seconds = per_row
        return verdicts

    def _search_key(self) -> dict[str, Any] | None:
        return search_key(self.search.options if self.search is not None else None)

    @property
    def _strict(self) -> bool:
        return self.verification is not None and self.verification.options.strict

    # --- generation -----------------------------------------------------------

    def _render(
        self, segments: Sequence[Segment], voice: VoicePrompt | None, attempts: Sequence[int]
    ) -> list[_Rendered]:
        started = time.monotonic()
        requests = [self._request(s, voice, a) for s, a in zip(segments, attempts, strict=True)]
        stats: list[dict[str, Any] | None] = [None] * len(requests)
        if voice is not None and self.search is not None and self.scorers is not None:
            results, stats = self._search(requests)
        else:
            results = self.generator.generate(requests)
        audios = self.codec.decode([r.codes for r in results])
        per_row = (time.monotonic() - started) / max(1, len(segments))
        return [
            _Rendered(audio, result, per_row, search=stat)
            for audio, result, stat in zip(audios, results, stats, strict=True)
        ]

    def _search(self, requests: list[GenerationRequest]) -> tuple[list[GenerationResult], list[dict[str, Any] | None]]:
        from .search import search_segments

        assert self.search is not None and self.scorers is not None
        partial, final = self.scorers
        found = search_segments(requests, self.search.candidates, partial, final, self.search.options)
        return [r.as_generation_result() for r in found], [dataclasses.asdict(r.stats) for r in found]

    def _request(self, segment: Segment, voice: VoicePrompt | None, attempt: int) -> GenerationRequest:
        prompt = self.generator.prompt_tokens(segment.text, voice)
        cap = token_cap(segment.est_seconds, prompt, self.engine.length_headroom)
        seed = segment_seed(self.sampling.seed, segment.text, attempt)
        return GenerationRequest(text=segment.text, seed=seed, max_new_tokens=cap, voice=voice)

    # --- the narrator -----------------------------------------------------------

    def _narrator(self, plan: Plan, context: RunContext, voice: VoicePrompt | None) -> Iterator[Event]:
        """The job's one voice: the given one, the one a previous run fixed, or a new one."""
        store = context.store
        if voice is not None:
            store.save_voice(voice)
            return voice
        while (stored := store.load_voice()) is None:
            if _claim(context, [NARRATOR_KEY], 1):
                segment, fixed = self._fix_narrator(plan)
                store.save_voice(fixed)
                store.record_done(
                    NARRATOR_KEY, fixed.codes, attempts=1, scores={}, timings={}, hit_cap=False, worker=context.worker
                )
                context.log(f"narrator fixed from segment {segment.segment_id}")
                yield NarratorFixed(segment, fixed)
                return fixed
            if (reason := context.stop_reason()) is not None:
                yield RunStopped(reason)
                return None
            yield Waiting(())
            context.sleep(context.poll_seconds)
        return stored

    def _fix_narrator(self, plan: Plan) -> tuple[Segment, VoicePrompt]:
        """Speak one segment without a voice; its speech becomes the book's narrator.

        A sample that ran into its cap or came out empty is a poor voice: try again
        with the next seed, and keep the last try if none is clean. The segment itself
        is spoken again later with this voice as its prompt, like every other one.
        """
        segment = choose_narrator_segment(plan.segments)
        for attempt in range(NARRATOR_ATTEMPTS):
            item = self._render([segment], None, [attempt])[0]
            if len(item.result.codes) and not item.result.hit_cap:
                break
        return segment, VoicePrompt(codes=item.result.codes, text=segment.text)


def _claim(context: RunContext, keys: list[str], limit: int) -> list[str]:
    """Claim up to `limit` keys, first freeing those whose holder has died."""
    claimed = context.store.claim(keys, context.worker, context.lease_seconds, limit=limit)
    if claimed:
        return claimed
    dead = {w for w in context.store.holders(keys).values() if w != context.worker and not context.worker_alive(w)}
    for worker in dead:
        context.log(f"releasing the claims of {worker}, which is no longer running")
        context.store.release(keys, worker)
    return context.store.claim(keys, context.worker, context.lease_seconds, limit=limit) if dead else []


def search_key(options: SearchOptions | None) -> dict[str, Any] | None:
    """The part of a segment's key that search decides (None for plain sampling)."""
    from .search import MODE_PLAIN

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


def write_chapter(
    plan: Plan,
    chapter: Chapter,
    sink: ChapterSink,
    context: RunContext,
    codec: SpeechCodec,
    force: bool = False,
    strict: bool = False,
    decoded: dict[str, np.ndarray] | None = None,
) -> ChapterWritten | ChapterHeld:
    """Stitch a finished chapter from its stored codes, unless its file is already what they make.

    `decoded` holds audio this run already decoded from exactly those codes (by key); only the
    rest is decoded here. With `strict`, a chapter holding a segment that failed verification is
    not written at all.
    """
    segments = plan.segments_of(chapter.number)
    if strict:
        flagged = [s.segment_id for s in segments if is_flagged(context.store, context.keys[s.segment_id])]
        if flagged:
            context.log(f"chapter {chapter.number} held back: flagged segments {' '.join(flagged)}")
            return ChapterHeld(chapter, tuple(flagged))
    codes = [context.store.codes(context.keys[s.segment_id]) for s in segments]
    missing = [s.segment_id for s, c in zip(segments, codes, strict=True) if c is None]
    if missing:
        raise ValueError(f"chapter {chapter.number} is not finished: segments {', '.join(missing)} have no codes")
    digest = JobKeys.chapter_digest(chapter, segments, codes, sink.fingerprint())
    if not force and context.store.chapter_digest(chapter.number) == digest and sink.exists(chapter):
        return ChapterWritten(chapter, sink.destination(chapter), audio_seconds=0.0, unchanged=True)
    keys = [context.keys[s.segment_id] for s in segments]
    audios = _decode_missing(codec, keys, codes, decoded or {})
    written = sink.write(chapter, list(zip(audios, segments, strict=True)))
    context.store.record_chapter(chapter.number, digest, written.destination)
    context.log(f"chapter {chapter.number} -> {written.destination}")
    return written


def _decode_missing(
    codec: SpeechCodec, keys: list[str], codes: list[np.ndarray], decoded: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Audio for every position: already decoded where known, the rest decoded in one call."""
    todo = sorted({k for k in keys if k not in decoded})
    if todo:
        by_key = dict(zip(keys, codes, strict=True))
        decoded = {**decoded, **dict(zip(todo, codec.decode([by_key[k] for k in todo]), strict=True))}
    return [decoded[k] for k in keys]


def is_flagged(store: JobStore, key: str) -> bool:
    record = store.segment(key)
    return bool(record and record.scores and record.scores.get(FLAGGED))


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


def _done(segment: Segment, outcome: _Outcome) -> SegmentDone:
    item, verdict = outcome.item, outcome.verdict
    return SegmentDone(
        segment=segment,
        audio_seconds=len(item.audio) / SAMPLE_RATE,
        codes=len(item.result.codes),
        new_tokens=item.result.new_tokens,
        hit_cap=item.result.hit_cap,
        attempts=outcome.attempts,
        flagged=verdict is not None and not verdict.passed,
        failures=() if verdict is None else verdict.failures,
        transcript=None if verdict is None else verdict.transcript,
    )
