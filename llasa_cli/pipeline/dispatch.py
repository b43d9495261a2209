"""A book driven from one process, spoken by a pool of remote workers (`--ray`).

The driver owns the job store (SQLite is not safe to share over a network file system): it fixes
the narrator, claims batches under leases, sends each to an idle worker of the pool, and records
every batch the moment it returns (`RenderPool.wait`), then writes each chapter once all its
segments are in. The workers (`render_worker.RenderWorker`) load the models once and return codes,
audio and verdicts; they never touch the store. A worker lost mid-batch loses only that batch:
its claims are given back and the batch is claimed again, by another worker or by the same one
once the pool has restarted it. A driver killed mid-run leaves its claims to the store's usual
rules (freed at once on this host, after the lease elsewhere), so a rerun resumes like any run.

`Dispatcher.run` has `Synthesizer.run`'s contract (same events, same keys, same files), so a
library (`library.py`) runs either. `RenderPool` is what the driver needs of a pool:
`ray_workers.RayPool` is the real one; tests also drive an in-process pool.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..audio.sinks import ChapterSink
from ..engine.protocols import GenerationRequest, GenerationResult, VoicePrompt
from ..errors import DeviceUnavailableError, LlasaError, first_line
from ..job.keys import voice_of
from ..job.review_state import apply_text_overrides
from ..options import EngineOptions, SamplingOptions, SearchOptions
from ..text.plan import Chapter, Plan, Segment
from .budget import BatchPacer
from .chapter_writer import write_chapter
from .events import Event, JobFinished, RunStopped, Waiting
from .leases import LeaseKeeper
from .outputs import finish_outputs
from .render_worker import RenderCall
from .renderer import Outcome
from .run_context import RunContext
from .synthesizer import ATTEMPTS_PER_TAKE, BookKeys, claim_keys, open_book, record_outcome, segment_done

# How long the driver waits for a batch before it looks at the stop, the budget and other runs.
WAIT_SECONDS = 1.0
# A claim looks at this many batches' worth of pending keys at a time (more only while others hold them).
CLAIM_WINDOW_BATCHES = 4


class WorkerLost(Exception):
    """The worker that had the batch died before it answered; the batch is lost, not failed."""


class RenderPool(Protocol):
    """Workers that render batches, each on its own device with its own models."""

    def workers(self) -> list[int]:
        """The workers that can take a batch now (not one being restarted, nor one lost for good)."""
        ...

    def gone(self) -> bool:
        """Whether every worker is lost for good."""
        ...

    def batch_size(self, worker: int) -> int: ...

    def submit(self, worker: int, call: RenderCall) -> Hashable:
        """Start the batch on the worker; a handle for `wait` and `result`."""
        ...

    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[Hashable]:
        """The handles whose batches have ended (done, failed or lost), waiting up to `timeout`."""
        ...

    def result(self, handle: Hashable) -> list[Outcome]:
        """An ended batch's outcomes; WorkerLost if its worker died, else the error it raised."""
        ...

    def call(self, method: str, *args: Any) -> Any:
        """Run a `RenderWorker` method on some worker and wait for it (fix_narrator, decode...)."""
        ...


class RemoteCodec:
    """The codec of a pool's workers, for what the driver decodes (chapters finished by earlier
    runs) and encodes (the voice clip)."""

    def __init__(self, pool: RenderPool) -> None:
        self.pool = pool

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(self.pool.call("decode", list(codes)))

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return np.asarray(self.pool.call("encode", audio))


class RemoteGenerator:
    """The language model of a pool's workers, called one request list at a time."""

    def __init__(self, pool: RenderPool) -> None:
        self.pool = pool

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(self.pool.call("generate", list(requests)))

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return int(self.pool.call("prompt_tokens", text, voice))


@dataclass
class _InFlight:
    worker: int
    keys: list[str]
    segments: list[Segment]
    claimed_at: float


class Dispatcher:
    """Runs a book as `Synthesizer.run` does, with its batches spoken by the pool's workers."""

    def __init__(
        self,
        pool: RenderPool,
        sampling: SamplingOptions,
        engine: EngineOptions,
        search: SearchOptions | None = None,
        strict: bool = False,
    ) -> None:
        self.pool = pool
        self.sampling = sampling
        self.engine = engine
        self.search = search
        self.strict = strict
        self.codec = RemoteCodec(pool)

    def run(
        self,
        plan: Plan,
        sink: ChapterSink,
        context: RunContext,
        voice: VoicePrompt | None = None,
        characters: Mapping[str, VoicePrompt] | None = None,
    ) -> Iterator[Event]:
        plan = apply_text_overrides(plan, context.store.text_overrides())
        with LeaseKeeper(context.store, context.worker, context.lease_seconds, context.log) as leases:
            fix = lambda plan: self.pool.call("fix_narrator", plan)  # noqa: E731
            book = BookKeys(self.engine, self.sampling, self.search)
            opened = yield from open_book(plan, context, leases, voice, characters, fix, book)
            if opened is None:
                return
            voice, characters = opened
            drive = _Drive(self, plan, sink, context, leases, voice, characters)
            completed = yield from drive.run()
            if not completed:
                return
            yield from finish_outputs(plan, sink, context.store, context.log)
            status = context.store.status()
            flagged_keys = context.store.flagged_keys(list(context.keys.values()))
            flagged = tuple(s.segment_id for s in plan.segments if context.keys[s.segment_id] in flagged_keys)
            yield JobFinished(total=status.total, done=status.finished, flagged=flagged)


@dataclass
class _Drive:
    """One book's batches through the pool: claim, send, record, write chapters."""

    dispatcher: Dispatcher
    plan: Plan
    sink: ChapterSink
    context: RunContext
    leases: LeaseKeeper
    voice: VoicePrompt
    characters: dict[str, VoicePrompt]
    in_flight: dict[Hashable, _InFlight] = field(default_factory=dict)
    fresh: dict[str, np.ndarray] = field(default_factory=dict)  # audio of this run's segments, by key
    written: set[int] = field(default_factory=set)  # chapters written (or held) by this run
    pacers: dict[int, BatchPacer] = field(default_factory=dict)  # each worker's own pace

    def __post_init__(self) -> None:
        keys = self.context.keys
        ordered = sorted(self.plan.segments, key=lambda s: (s.chapter, s.est_seconds))
        self.by_key: dict[str, Segment] = {}
        for segment in ordered:
            self.by_key.setdefault(keys[segment.segment_id], segment)
        done = self.context.store.done_keys(list(self.by_key))
        self.remaining: dict[str, None] = dict.fromkeys(k for k in self.by_key if k not in done)

    @property
    def pool(self) -> RenderPool:
        return self.dispatcher.pool

    def run(self) -> Iterator[Event]:
        """Until every chapter is written (True) or the run stops (False)."""
        stopping: str | None = None
        while True:
            stopping = stopping or self.context.stop_reason()
            if stopping is None:
                self._send_batches()
            yield from self._write_finished_chapters()
            if not self.in_flight:
                if stopping is None:
                    stopping = next((p.stopped for p in self.pacers.values() if p.stopped), None)
                if stopping is not None:
                    yield RunStopped(stopping)
                    return False
                if len(self.written) == len(self.plan.chapters):
                    return True
                if self.remaining and not self.pool.workers():
                    self.context.sleep(WAIT_SECONDS)  # the workers are being restarted
                    continue
                yield from self._wait_for_others()
                continue
            for handle in self.pool.wait(list(self.in_flight), WAIT_SECONDS):
                yield from self._take(handle)

    def _send_batches(self) -> None:
        if self.pool.gone():
            raise DeviceUnavailableError("every worker of the pool is lost; finished work is saved")
        busy = {flight.worker for flight in self.in_flight.values()}
        for worker in [worker for worker in self.pool.workers() if worker not in busy]:
            flight = self._claim(worker)
            if flight is None:
                return
            call = RenderCall(
                tuple(flight.segments),
                tuple(voice_of(s, self.voice, self.characters) for s in flight.segments),
                tuple(self._bases(flight.keys)),
                self.voice,
                self.characters,
            )
            self.in_flight[self.pool.submit(worker, call)] = flight

    def _claim(self, worker: int) -> _InFlight | None:
        """Claim the next batch for the worker, within the time budget; None when none is free."""
        context = self.context
        claimed_at = context.clock()
        limit = self.pool.batch_size(worker)
        claimed: list[str] = []
        for window in self._pending_windows(limit * CLAIM_WINDOW_BATCHES):
            claimed += claim_keys(context, window, limit - len(claimed))
            if len(claimed) >= limit:
                break
        else:
            self._forget_done()
        pacer = self.pacers.setdefault(worker, BatchPacer(context.seconds_left, context.clock))
        keep = pacer.fit([self.by_key[key].est_seconds for key in claimed])
        if keep < len(claimed):
            context.store.release(claimed[keep:], context.worker)
            claimed = claimed[:keep]
        if not claimed:
            return None
        self.leases.hold(claimed)
        context.log(f"start {' '.join(claimed)}")
        return _InFlight(worker, claimed, [self.by_key[key] for key in claimed], claimed_at)

    def _pending_windows(self, size: int) -> Iterator[list[str]]:
        """The keys not finished and not in flight, in order, a window at a time: a claim walks
        only as far as it must, not over a whole 100,000-segment book."""
        held = {key for flight in self.in_flight.values() for key in flight.keys}
        window: list[str] = []
        for key in self.remaining:
            if key not in held:
                window.append(key)
                if len(window) == size:
                    yield window
                    window = []
        if window:
            yield window

    def _bases(self, keys: list[str]) -> list[int]:
        takes = self.context.store.takes(keys)
        return [takes[key] * ATTEMPTS_PER_TAKE for key in keys]

    def _forget_done(self) -> None:
        """Drop keys other runs have finished, so claims do not walk past them again."""
        done = self.context.store.done_keys(list(self.remaining))
        for key in done:
            self.remaining.pop(key, None)

    def _take(self, handle: Hashable) -> Iterator[Event]:
        """Record a batch that came back, or give it up if its worker was lost."""
        flight = self.in_flight.pop(handle)
        store, worker = self.context.store, self.context.worker
        try:
            outcomes = self.pool.result(handle)
        except WorkerLost as exc:
            self.leases.release(flight.keys)
            store.release(flight.keys, worker)
            self.context.log(f"lost {' '.join(flight.keys)}: {first_line(exc)}")
            return
        except Exception as exc:
            self.leases.release(flight.keys)
            try:
                for key in flight.keys:
                    store.record_failure(key, first_line(exc), worker)
            except LlasaError:
                pass
            self.context.log(f"failed {' '.join(flight.keys)}: {first_line(exc)}")
            raise
        self.pacers[flight.worker].finished(flight.claimed_at, [s.est_seconds for s in flight.segments])
        for key, segment, outcome in zip(flight.keys, flight.segments, outcomes, strict=True):
            if record_outcome(self.context, key, outcome):
                self.fresh[key] = outcome.item.audio
            self.remaining.pop(key, None)
            self.leases.release([key])
            yield segment_done(segment, outcome)

    def _write_finished_chapters(self) -> Iterator[Event]:
        """Write each chapter whose segments are all recorded, once, with the audio this run has."""
        for chapter in self.plan.chapters:
            if chapter.number in self.written or not self._finished(chapter):
                continue
            self.written.add(chapter.number)
            event = write_chapter(
                self.plan, chapter, self.sink, self.context, self.dispatcher.codec,
                strict=self.dispatcher.strict, decoded=self.fresh,
            )  # fmt: skip
            keys = {self.context.keys[s.segment_id] for s in self.plan.segments_of(chapter.number)}
            for key in keys:
                self.fresh.pop(key, None)  # the chapter holds it now: keep one chapter's audio, not the book's
            yield event

    def _finished(self, chapter: Chapter) -> bool:
        keys = [self.context.keys[s.segment_id] for s in self.plan.segments_of(chapter.number)]
        if any(key in self.remaining for key in keys):
            return False
        return len(self.context.store.done_keys(keys)) == len(set(keys))

    def _wait_for_others(self) -> Iterator[Event]:
        """Nothing in flight, nothing claimable, chapters unwritten: other runs hold the rest."""
        self._forget_done()
        left = [c.number for c in self.plan.chapters if c.number not in self.written]
        if self.remaining:
            yield Waiting(tuple(left))
            self.context.sleep(self.context.poll_seconds)
