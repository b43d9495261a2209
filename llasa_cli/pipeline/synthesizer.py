"""Plan -> chapter audio: batched generation, decoding, stitching, recorded in the job store.

`Synthesizer.run` is a generator of events (kokoro style) so the CLI can show
progress and a library user can consume results without any UI. It talks to the
models only through the `SpeechGenerator` / `SpeechCodec` protocols, so tests
drive it with fakes and real runs with Llasa + X-Codec2.

Every segment is recorded in the job store (`jobstore.JobStore`) as soon as its batch is
done, so a crash loses at most the batch in flight (two with `--overlap`, where a batch is
decoded and verified while the next one generates: `batch_runner.py`), and a rerun redoes
nothing that was finished. Segments are claimed a batch at a time under leases, so several runs on
one job share the work instead of repeating it. Chapters are processed one after another
(segments inside a chapter are batched, sorted by length) so memory holds one chapter's
audio, not the book's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..constants import SAMPLE_RATE
from ..engine.protocols import GenerationRequest, GenerationResult, SpeechCodec, SpeechGenerator, VoicePrompt
from ..engine.sampling import segment_seed
from ..job.keys import keys_for, search_key, token_cap
from ..job.store import JobStore, PlanRow
from ..options import EngineOptions, SamplingOptions, VerifyOptions
from ..text.plan import Chapter, Plan, Segment
from .batch_runner import BatchRunner, overlap_wanted
from .chapter_writer import FLAGGED, is_flagged, write_chapter
from .events import (
    ChapterSink,
    Event,
    JobFinished,
    JobOpened,
    NarratorFixed,
    RunStopped,
    SegmentDone,
    Waiting,
)

if TYPE_CHECKING:
    from ..search.segment_search import CandidateGenerator, SearchOptions
    from ..verify.composite import SegmentVerifier, Verdict


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
    verdict: Verdict | None = None  # the run's verifier's verdict, when the search already asked it


@dataclass(frozen=True)
class _Generated:
    """A batch's codes straight from the language model (or the search), before decoding."""

    results: list[GenerationResult]
    stats: list[dict[str, Any] | None]  # the search's compute per row (None: plain sampling)
    seconds: float
    # Per row, the audio and (None: not the run's verifier's) verdict the search's final scorer
    # already produced for the chosen candidate; None where it did not judge it.
    heard: list[tuple[np.ndarray, Verdict | None] | None] | None = None


@dataclass(frozen=True)
class _Batch:
    """Claimed segments and the attempt number each one's seed starts from."""

    keys: list[str]
    segments: list[Segment]
    voice: VoicePrompt
    bases: list[int]


@dataclass(frozen=True)
class _Started:
    batch: _Batch
    outcomes: Future[list[_Outcome]]


@dataclass(frozen=True)
class _Outcome:
    """The attempt kept for a segment, its verdict (None: not verified), and what all attempts cost."""

    item: _Rendered
    verdict: Verdict | None
    attempts: int
    seconds: float
    verify_seconds: float


def _best(tries: list[tuple[_Rendered, Verdict]]) -> _Outcome:
    from ..verify.composite import best_attempt

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
            from ..search.scorers import make_scorers

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
        """Generate the chapter's claimable segments, a batch at a time; True when all are done.

        With overlap, batch k is decoded and verified while batch k + 1 is generated, and is
        recorded once k + 1 is generated; without, each batch is recorded before the next is claimed."""
        segments = sorted(plan.segments_of(chapter.number), key=lambda s: s.est_seconds)
        by_key = {context.keys[s.segment_id]: s for s in segments}
        in_flight: _Started | None = None
        with self._runner() as runner:
            while True:
                batch = self._next_batch(context, by_key, voice, held=in_flight.batch.keys if in_flight else [])
                try:
                    started = None if batch is None else _Started(batch, runner.start(batch))
                except BaseException:
                    _record_quietly(self._record_batch(context, in_flight, fresh))
                    raise
                yield from self._record_batch(context, in_flight, fresh)
                in_flight = started
                if in_flight is not None and not runner.overlap:
                    yield from self._record_batch(context, in_flight, fresh)
                    in_flight = None
                if started is None:
                    break
        return len(context.store.done_keys(list(by_key))) == len(by_key)

    def _next_batch(
        self, context: RunContext, by_key: dict[str, Segment], voice: VoicePrompt, held: list[str]
    ) -> _Batch | None:
        """Claim the next batch of the chapter's pending segments (not those in `held`); None when
        none is pending, the run is stopping, or other runs hold the rest."""
        done = context.store.done_keys(list(by_key))
        pending = [k for k in by_key if k not in done and k not in held]
        if not pending or context.stop_reason() is not None:
            return None
        claimed = _claim(context, pending, self.engine.batch_size)
        if not claimed:
            return None
        takes = context.store.takes(claimed)
        context.log(f"start {' '.join(claimed)}")
        bases = [takes[k] * ATTEMPTS_PER_TAKE for k in claimed]
        return _Batch(claimed, [by_key[k] for k in claimed], voice, bases)

    def _record_batch(
        self, context: RunContext, started: _Started | None, fresh: dict[str, np.ndarray]
    ) -> Iterator[Event]:
        if started is None:
            return
        batch = started.batch
        for key, segment, outcome in zip(batch.keys, batch.segments, started.outcomes.result(), strict=True):
            if self._record(context, key, outcome):
                fresh[key] = outcome.item.audio
            yield _done(segment, outcome)

    def _runner(self) -> BatchRunner[_Batch, _Generated, list[_Outcome]]:
        """Overlap only plain sampling: search scores with the verifiers while it generates."""
        device_type = getattr(getattr(self.generator, "device", None), "type", "cpu")
        overlap = self.search is None and overlap_wanted(self.engine.overlap, device_type)
        return BatchRunner(
            lambda b: self._generate(b.segments, b.voice, b.bases),
            lambda b, generated: self._render_verified(b.segments, b.voice, b.bases, generated),
            overlap=overlap,
            device_type=device_type,
        )

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

    def _render_verified(
        self,
        segments: Sequence[Segment],
        voice: VoicePrompt,
        bases: Sequence[int],
        generated: _Generated | None = None,
    ) -> list[_Outcome]:
        """Render (or decode what was `generated`), verify, and sample the failing rows again (new
        seeds, batched), keeping each row's best."""
        items = self._decode(generated or self._generate(segments, voice, bases))
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
        """Each item's verdict: asked of the verifier in one call, except those the search already has."""
        from ..verify.composite import VerifyItem

        assert self.verifier is not None
        todo = [n for n, item in enumerate(items) if item.verdict is None]
        verdicts: list[Verdict | None] = [item.verdict for item in items]
        if todo:
            started = time.monotonic()
            asked = self.verifier.verify(
                [VerifyItem(segments[n].text, items[n].audio, items[n].result.hit_cap) for n in todo]
            )
            per_row = (time.monotonic() - started) / len(todo)
            for n, verdict in zip(todo, asked, strict=True):
                verdicts[n] = verdict
                items[n].verify_seconds += per_row
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]  # every None was just filled

    def _search_key(self) -> dict[str, Any] | None:
        return search_key(self.search.options if self.search is not None else None)

    @property
    def _strict(self) -> bool:
        return self.verification is not None and self.verification.options.strict

    # --- generation -----------------------------------------------------------

    def _render(
        self, segments: Sequence[Segment], voice: VoicePrompt | None, attempts: Sequence[int]
    ) -> list[_Rendered]:
        return self._decode(self._generate(segments, voice, attempts))

    def _generate(self, segments: Sequence[Segment], voice: VoicePrompt | None, attempts: Sequence[int]) -> _Generated:
        started = time.monotonic()
        requests = [self._request(s, voice, a) for s, a in zip(segments, attempts, strict=True)]
        if voice is not None and self.search is not None and self.scorers is not None:
            results, stats, heard = self._search(requests)
            return _Generated(results, stats, time.monotonic() - started, heard)
        results = list(self.generator.generate(requests))
        return _Generated(results, [None] * len(results), time.monotonic() - started)

    def _decode(self, generated: _Generated) -> list[_Rendered]:
        """Audio for every row: decoded in one call, except what the search's final scorer already heard."""
        started = time.monotonic()
        heard = generated.heard or [None] * len(generated.results)
        todo = [n for n, known in enumerate(heard) if known is None]
        fresh = self.codec.decode([generated.results[n].codes for n in todo]) if todo else []
        decoded = dict(zip(todo, fresh, strict=True))
        per_row = (generated.seconds + time.monotonic() - started) / max(1, len(generated.results))
        rendered = []
        for n, (result, stat, known) in enumerate(zip(generated.results, generated.stats, heard, strict=True)):
            audio, verdict = known if known is not None else (decoded[n], None)
            # A search's time judging candidates is verification time, not generation time.
            judging = 0.0 if stat is None else stat["partial_scorer_seconds"] + stat["final_scorer_seconds"]
            item = _Rendered(audio, result, max(0.0, per_row - judging), judging, search=stat, verdict=verdict)
            rendered.append(item)
        return rendered

    def _search(
        self, requests: list[GenerationRequest]
    ) -> tuple[list[GenerationResult], list[dict[str, Any] | None], list[tuple[np.ndarray, Verdict | None] | None]]:
        from ..search.segment_search import search_segments

        assert self.search is not None and self.scorers is not None
        partial, final = self.scorers
        found = search_segments(requests, self.search.candidates, partial, final, self.search.options)
        # The final scorer's verdicts are the run's own when it asked the run's verifier.
        same_verifier = self.verifier is not None and getattr(final, "verifier", None) is self.verifier
        heard: list[tuple[np.ndarray, Verdict | None] | None] = []
        for request, result in zip(requests, found, strict=True):
            known = final.recall(request.text, result.codes) if hasattr(final, "recall") else None
            heard.append(None if known is None else (known[0], known[1] if same_verifier else None))
        return [r.as_generation_result() for r in found], [dataclasses.asdict(r.stats) for r in found], heard

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


def _record_quietly(records: Iterator[Event]) -> None:
    """Record a finished batch while another error is on its way out: its work is kept if it can
    be, and that error, not this one, is what the run reports."""
    try:
        for _ in records:
            pass
    except Exception:  # noqa: BLE001 - the error being raised matters more
        pass


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
