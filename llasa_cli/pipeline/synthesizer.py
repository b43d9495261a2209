"""Plan -> chapter audio: batched generation, decoding, stitching, recorded in the job store.

`Synthesizer.run` is a generator of events (kokoro style) so the CLI can show
progress and a library user can consume results without any UI. It talks to the
models only through the `SpeechGenerator` / `SpeechCodec` protocols, so tests
drive it with fakes and real runs with Llasa + X-Codec2. A `Synthesizer` holds no state
of a run: the same one can run again, on the same job or another.

Every segment is recorded in the job store (`job.JobStore`) as soon as its batch is
done, so a crash loses at most the batch in flight (two with `--overlap`, where a batch is
decoded and verified while the next one generates: `batch_runner.py`), and a rerun redoes
nothing that was finished. A batch that cannot be synthesised (an error) is recorded as failed
before the error ends the run. Segments are claimed a batch at a time under leases, kept alive
while the batch runs (`leases.py`), so several runs on one job share the work instead of
repeating it. With a time budget, a batch is sized to end within it from the pace measured so far
(`budget.py`). Chapters are processed one after another (segments inside a chapter are batched,
sorted by length) so the run holds one chapter's audio, not the book's (a stream or m4b sink
gathers the chapters it is given until it closes). A cast's characters share the batches with the
narrator: each segment is spoken with, keyed by and verified against its own voice.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..audio.sinks import ChapterSink
from ..constants import SAMPLE_RATE
from ..engine.protocols import CandidateGenerator, SpeechCodec, SpeechGenerator, VoicePrompt
from ..errors import LlasaError, first_line
from ..job.keys import keys_for, voice_of
from ..job.records import PlanRow
from ..job.review_state import apply_text_overrides
from ..options import EngineOptions, SamplingOptions, SearchOptions, VerifyOptions
from ..search.scorers import make_scorers
from ..text.plan import Chapter, Plan, Segment
from ..verify.composite import CompositeVerifier
from ..verify.verdict import SegmentVerifier
from .batch_runner import BatchRunner, overlap_wanted
from .budget import BatchPacer
from .chapter_writer import write_chapter
from .events import Event, JobFinished, JobOpened, NarratorFixed, RunStopped, SegmentDone, Waiting
from .leases import LeaseKeeper
from .outputs import finish_outputs
from .renderer import Generated, Judges, Outcome, Renderer, SearchRun
from .run_context import RunContext

# The narrator's sample must leave room in the context for the segments that follow it.
NARRATOR_MIN_SECONDS = 2.0
NARRATOR_MAX_SECONDS = 10.0
NARRATOR_ATTEMPTS = 3
NARRATOR_KEY = "narrator"
# Seeds of a redone segment (take t) start at attempt t * ATTEMPTS_PER_TAKE, clear of earlier takes.
ATTEMPTS_PER_TAKE = 1_000


@dataclass(frozen=True)
class VerifierSetup:
    """How a run verifies segments: the options (retries, --strict) and how to load the verifier
    once the narrator's reference audio is known."""

    options: VerifyOptions
    load: Callable[[np.ndarray], SegmentVerifier]


@dataclass(frozen=True)
class SearchSetup:
    """Verifier-guided search (`--beam N`, `--best-of N`) over an LM that can branch its cache."""

    options: SearchOptions
    candidates: CandidateGenerator
    lang: str = "en"


@dataclass(frozen=True)
class _Batch:
    """Claimed segments, the attempt number each one's seed starts from, and when it was claimed."""

    keys: list[str]
    segments: list[Segment]
    voices: list[VoicePrompt]  # each segment's prompt: the narrator's or its character's
    bases: list[int]
    claimed_at: float


@dataclass(frozen=True)
class _Started:
    batch: _Batch
    outcomes: Future[list[Outcome]]


class Synthesizer:
    def __init__(
        self,
        generator: SpeechGenerator,
        codec: SpeechCodec,
        sampling: SamplingOptions,
        engine: EngineOptions,
        verification: VerifierSetup | None = None,
        search: SearchSetup | None = None,
        device: str = "cpu",
    ) -> None:
        self.generator = generator
        self.codec = codec
        self.sampling = sampling
        self.engine = engine
        self.verification = verification
        self.search = search
        self.device = device  # where the models run ("cuda:0", "cpu"...): overlap pays on CUDA only

    def run(
        self,
        plan: Plan,
        sink: ChapterSink,
        context: RunContext,
        voice: VoicePrompt | None = None,
        characters: Mapping[str, VoicePrompt] | None = None,
    ) -> Iterator[Event]:
        """Speak `plan`: the narrator's segments with `voice` (None: one the job fixes), each
        character's (`Segment.voice`) with its prompt in `characters`."""
        # The job may say some lines otherwise: text edited on the review page (`llasa review`).
        plan = apply_text_overrides(plan, context.store.text_overrides())
        with LeaseKeeper(context.store, context.worker, context.lease_seconds, context.log) as leases:
            search = self.search.options if self.search is not None else None
            book = BookKeys(self.engine, self.sampling, search)
            opened = yield from open_book(plan, context, leases, voice, characters, self.fix_narrator, book)
            if opened is None:
                return  # stopped while waiting for another run to fix the narrator
            voice, characters = opened
            run = _Run(self, self.renderer_for(voice, characters), context, leases, voice, characters)
            waiting = list(plan.chapters)
            while waiting:
                left: list[Chapter] = []
                for chapter in waiting:
                    if (reason := run.stop_reason()) is not None:
                        yield RunStopped(reason)
                        return
                    fresh: dict[str, np.ndarray] = {}  # this pass's decoded audio: no chapter is decoded twice
                    finished = yield from run.work_on(plan, chapter, fresh)
                    if finished:
                        yield write_chapter(
                            plan, chapter, sink, context, self.codec, strict=self._strict, decoded=fresh
                        )
                    else:
                        left.append(chapter)
                # Segments no run holds any more (finished or freed since) are claimed on the next pass.
                if left and run.stop_reason() is None and run.held_by_others(plan, left):
                    yield Waiting(tuple(c.number for c in left))
                    context.sleep(context.poll_seconds)
                waiting = left
            yield from finish_outputs(plan, sink, context.store, context.log)
            finished_status = context.store.status()
            flagged_keys = context.store.flagged_keys(list(context.keys.values()))
            flagged = tuple(s.segment_id for s in plan.segments if context.keys[s.segment_id] in flagged_keys)
            yield JobFinished(total=finished_status.total, done=finished_status.finished, flagged=flagged)

    def renderer_for(self, narrator: VoicePrompt, characters: Mapping[str, VoicePrompt]) -> Renderer:
        """What this run speaks with, now the voices are known: a verifier and scorers per voice (a
        voice's audio is what the speaker check compares its segments against)."""
        if self.verification is None and self.search is None:
            return Renderer(self.generator, self.codec, self.sampling, self.engine)
        voices: dict[str | None, VoicePrompt] = {None: narrator, **characters}
        judges = {name: self._judges(self.codec.decode([prompt.codes])[0]) for name, prompt in voices.items()}
        retries = 0 if self.verification is None else self.verification.options.retries
        return Renderer(self.generator, self.codec, self.sampling, self.engine, judges, retries)

    def _judges(self, reference: np.ndarray) -> Judges:
        """The verifier and search of one voice, whose reference audio is `reference`."""
        verifier = None if self.verification is None else self.verification.load(reference)
        search = None
        if self.search is not None:
            judge = verifier if verifier is not None else CompositeVerifier.signal_only(self.search.lang)
            scorers = make_scorers(self.codec, self.search.options.score_weights, judge)
            search = SearchRun(self.search.options, self.search.candidates, scorers)
        return Judges(verifier, search)

    @property
    def _strict(self) -> bool:
        return self.verification is not None and self.verification.options.strict

    # --- the narrator -----------------------------------------------------------

    def fix_narrator(self, plan: Plan) -> tuple[Segment, VoicePrompt]:
        """Speak one segment without a voice; its speech becomes the book's narrator.

        A sample that ran into its cap or came out empty is a poor voice: try again
        with the next seed, and keep the last try if none is clean. The segment itself
        is spoken again later with this voice as its prompt, like every other one.
        """
        segment = choose_narrator_segment([s for s in plan.segments if s.voice is None] or plan.segments)
        renderer = Renderer(self.generator, self.codec, self.sampling, self.engine)
        for attempt in range(NARRATOR_ATTEMPTS):
            item = renderer.render([segment], [None], [attempt])[0]
            if len(item.result.codes) and not item.result.hit_cap:
                break
        return segment, VoicePrompt(codes=item.result.codes, text=segment.text)


class _Run:
    """One run's work through the chapters: claim a batch, speak it, record it."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        renderer: Renderer,
        context: RunContext,
        leases: LeaseKeeper,
        voice: VoicePrompt,
        characters: Mapping[str, VoicePrompt],
    ) -> None:
        self.synthesizer = synthesizer
        self.renderer = renderer
        self.context = context
        self.leases = leases
        self.voice = voice
        self.characters = characters
        self.pacer = BatchPacer(context.seconds_left, context.clock)

    def stop_reason(self) -> str | None:
        """The context's reason to stop, or the budget's when the next batch would overrun it."""
        return self.context.stop_reason() or self.pacer.stopped

    def held_by_others(self, plan: Plan, chapters: Sequence[Chapter]) -> bool:
        """Whether another live run holds a lease on a pending segment of these chapters."""
        keys = [self.context.keys[s.segment_id] for c in chapters for s in plan.segments_of(c.number)]
        holders = set(self.context.store.holders(keys).values()) - {self.context.worker}
        return any(self.context.worker_alive(worker) for worker in holders)

    def work_on(self, plan: Plan, chapter: Chapter, fresh: dict[str, np.ndarray]) -> Iterator[Event]:
        """Generate the chapter's claimable segments, a batch at a time; True when all are done.

        With overlap, batch k is decoded and verified while batch k + 1 is generated, and is
        recorded once k + 1 is generated; without, each batch is recorded before the next is claimed."""
        segments = sorted(plan.segments_of(chapter.number), key=lambda s: s.est_seconds)
        by_key = {self.context.keys[s.segment_id]: s for s in segments}
        in_flight: _Started | None = None
        with self._runner() as runner:
            while True:
                batch = self._next_batch(by_key, held=in_flight.batch.keys if in_flight else [])
                try:
                    started = None if batch is None else _Started(batch, runner.start(batch))
                except BaseException as exc:
                    _record_quietly(self._record_batch(in_flight, fresh))
                    if batch is not None:
                        self._give_up(batch.keys, exc)
                    raise
                yield from self._record_batch(in_flight, fresh)
                in_flight = started
                if in_flight is not None and not runner.overlap:
                    yield from self._record_batch(in_flight, fresh)
                    in_flight = None
                if started is None:
                    break
        return len(self.context.store.done_keys(list(by_key))) == len(by_key)

    def _next_batch(self, by_key: dict[str, Segment], held: list[str]) -> _Batch | None:
        """Claim the next batch of the chapter's pending segments (not those in `held`); None when
        none is pending, the run is stopping, or other runs hold the rest."""
        context = self.context
        done = context.store.done_keys(list(by_key))
        pending = [k for k in by_key if k not in done and k not in held]
        if not pending or self.stop_reason() is not None:
            return None
        claimed_at = context.clock()
        claimed = self._within_budget(claim_keys(context, pending, self.synthesizer.engine.batch_size), by_key)
        if not claimed:
            return None
        self.leases.hold(claimed)
        takes = context.store.takes(claimed)
        context.log(f"start {' '.join(claimed)}")
        bases = [takes[k] * ATTEMPTS_PER_TAKE for k in claimed]
        segments = [by_key[k] for k in claimed]
        voices = [voice_of(segment, self.voice, self.characters) for segment in segments]
        return _Batch(claimed, segments, voices, bases, claimed_at)

    def _within_budget(self, claimed: list[str], by_key: dict[str, Segment]) -> list[str]:
        """The claimed keys the time budget leaves room for; the claims on the rest are given back."""
        keep = self.pacer.fit([by_key[k].est_seconds for k in claimed])
        if keep < len(claimed):
            self.context.store.release(claimed[keep:], self.context.worker)
            self.context.log(f"time budget: batch of {len(claimed)} cut to {keep}")
        return claimed[:keep]

    def _record_batch(self, started: _Started | None, fresh: dict[str, np.ndarray]) -> Iterator[Event]:
        if started is None:
            return
        batch = started.batch
        try:
            outcomes = started.outcomes.result()
        except BaseException as exc:
            self._give_up(batch.keys, exc)
            raise
        self.pacer.finished(batch.claimed_at, [segment.est_seconds for segment in batch.segments])
        for key, segment, outcome in zip(batch.keys, batch.segments, outcomes, strict=True):
            if record_outcome(self.context, key, outcome):
                fresh[key] = outcome.item.audio
            self.leases.release([key])
            yield segment_done(segment, outcome)

    def _runner(self) -> BatchRunner[_Batch, Generated, list[Outcome]]:
        """Overlap only plain sampling: search scores with the verifiers while it generates."""
        device_type = self.synthesizer.device.partition(":")[0]
        overlap = not self.renderer.searches and overlap_wanted(self.synthesizer.engine.overlap, device_type)
        return BatchRunner(
            lambda b: self.renderer.generate(b.segments, b.voices, b.bases),
            lambda b, generated: self.renderer.render_verified(b.segments, b.voices, b.bases, generated),
            overlap=overlap,
            device_type=device_type,
        )

    def _give_up(self, keys: Sequence[str], exc: BaseException) -> None:
        """A batch that raised: an error marks its segments failed (a rerun tries them again); an
        interruption only frees their claims. Never hides the error on its way out."""
        self.leases.release(keys)
        store, worker = self.context.store, self.context.worker
        try:
            if isinstance(exc, Exception):
                for key in keys:
                    store.record_failure(key, first_line(exc), worker)
                self.context.log(f"failed {' '.join(keys)}: {first_line(exc)}")
            else:
                store.release(keys, worker)
        except LlasaError:  # the store itself failing (full disk): the original error says more
            pass


@dataclass(frozen=True)
class BookKeys:
    """The options a segment's key is made of, besides its text and voice."""

    engine: EngineOptions
    sampling: SamplingOptions
    search: SearchOptions | None


def open_book(
    plan: Plan,
    context: RunContext,
    leases: LeaseKeeper,
    voice: VoicePrompt | None,
    characters: Mapping[str, VoicePrompt] | None,
    fix: Callable[[Plan], tuple[Segment, VoicePrompt]],
    book: BookKeys,
) -> Generator[Event, None, tuple[VoicePrompt, dict[str, VoicePrompt]] | None]:
    """Fix the narrator (or wait for the run fixing it), key every segment, record the plan and
    yield `JobOpened`; return the narrator's voice and the characters' (None: stopped first).
    Every way of running a book (here, and the driver of remote workers) opens it so."""
    voice = yield from job_narrator(plan, context, leases, voice, fix)
    if voice is None:
        return None
    characters = dict(characters or {})
    context.store.save_characters(characters)  # `redo` keys their segments as this run did
    context.keys = keys_for(plan, book.engine, book.sampling, voice, book.search, characters)
    context.store.sync_plan([PlanRow.from_segment(context.keys[s.segment_id], s) for s in plan.segments])
    opened = context.store.status()
    yield JobOpened(total=opened.total, done=opened.finished)
    return voice, characters


def job_narrator(
    plan: Plan,
    context: RunContext,
    leases: LeaseKeeper,
    voice: VoicePrompt | None,
    fix: Callable[[Plan], tuple[Segment, VoicePrompt]],
) -> Iterator[Event]:
    """The job's one voice: the given one, the one a previous run fixed, or a new one (`fix`
    speaks it) fixed by the run that claims the narrator; the others wait for it. None when the
    run stops while waiting."""
    store = context.store
    if voice is not None:
        store.save_voice(voice)
        return voice
    while (stored := store.load_voice()) is None:
        if claim_keys(context, [NARRATOR_KEY], 1):
            leases.hold([NARRATOR_KEY])
            segment, fixed = fix(plan)
            store.save_voice(fixed)
            store.record_done(
                NARRATOR_KEY, fixed.codes, attempts=1, scores={}, timings={}, hit_cap=False, worker=context.worker
            )
            leases.release([NARRATOR_KEY])
            context.log(f"narrator fixed from segment {segment.segment_id}")
            yield NarratorFixed(segment, fixed)
            return fixed
        if (reason := context.stop_reason()) is not None:
            yield RunStopped(reason)
            return None
        yield Waiting(())
        context.sleep(context.poll_seconds)
    return stored


def claim_keys(context: RunContext, keys: list[str], limit: int) -> list[str]:
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


def record_outcome(context: RunContext, key: str, outcome: Outcome) -> bool:
    """Store a segment's kept attempt; False when another run finished the key first (its codes stand)."""
    item, verdict = outcome.item, outcome.verdict
    recorded = context.store.record_done(
        key,
        item.result.codes,
        attempts=outcome.attempts,
        scores={} if verdict is None else verdict.to_dict(),
        timings={"seconds": outcome.seconds, "verify_seconds": outcome.verify_seconds, "search": item.search},
        hit_cap=item.result.hit_cap,
        worker=context.worker,
        flagged=verdict is not None and not verdict.passed,
    )
    context.log(f"done {key} codes={len(item.result.codes)} hit_cap={int(item.result.hit_cap)}")
    return recorded


def segment_done(segment: Segment, outcome: Outcome) -> SegmentDone:
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
