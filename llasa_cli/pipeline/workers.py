"""Every device of the machine on one job: one worker process per device (`--devices`).

Each worker is a fresh process (the spawn start method: no CUDA state or threads are inherited)
that sees only its own GPU (`CUDA_VISIBLE_DEVICES`), loads its own models and runs the books
exactly as a plain `synth` would (`library.synthesize_library`): it claims a batch at a time from
the book's job store under a lease, so the workers share each book as overlapping runs always
could, and a key is finished once, by whoever records it first. A worker that dies (out of
memory, a GPU fault, SIGKILL) loses only its batch in flight: the others free its claims at once
(`job_folder.worker_alive`: its process is gone) and finish the book.

The workers send their events back over one queue; the main process merges them into one
stream (`_Merger`) that reads like a single run's: each book's events in turn, one `JobOpened`,
every segment once, each chapter once, the last `JobFinished`; the workers' waiting for one
another is left out. So one progress display and one summary show the whole run. The main
process owns the stop: a signal or the spent budget (`--max-minutes`, passed on as a deadline)
stops every worker after its batch in flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeviceUnavailableError, LlasaError
from ..options import DEVICES_ALL
from .events import BookWritten, ChapterHeld, ChapterWritten, JobFinished, JobOpened, RunStopped, Waiting
from .library import Book, BookEnded, BookFailed, BookSkipped, BookStarted, LibraryEvent, synthesize_library
from .stop import SECONDS_PER_MINUTE, StopController

# How often the main process looks for dead workers and signals while no event arrives.
POLL_SECONDS = 0.2
# On an early exit (an error, a second Ctrl-C), how long workers get to save their batch in flight
# after SIGTERM before they are killed.
WORKER_GRACE_SECONDS = 10.0
STOPPED_WITH_MAIN = "stopped with the main run"
MAIN_GONE = "the main llasa process is gone"
WORKERS_GONE = "every worker stopped before this book"
CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"

Warn = Callable[[str], None]


def expand_devices(devices: Sequence[str]) -> list[str]:
    """`--devices` as a list of devices: `all` is every CUDA GPU; each `cuda:N` must exist."""
    cuda = [device for device in devices if device.startswith("cuda") or device == DEVICES_ALL]
    if not cuda:
        return list(devices)
    from ..engine.devices import cuda_devices

    present = cuda_devices()
    if tuple(devices) == (DEVICES_ALL,):
        if not present:
            raise DeviceUnavailableError("--devices all was asked for, but torch sees no CUDA GPU")
        return present
    missing = [device for device in cuda if device not in present]
    if missing:
        seen = ", ".join(present) if present else "no CUDA GPU"
        raise DeviceUnavailableError(f"--devices {','.join(missing)} was asked for, but torch sees {seen}")
    return list(devices)


# --- messages from a worker -------------------------------------------------


@dataclass(frozen=True)
class _Message:
    worker: int
    book: int | None  # the book's place in the library; None: not about a book
    event: Any  # a LibraryEvent, or one of the notes below


@dataclass(frozen=True)
class _Warning:
    message: str


@dataclass(frozen=True)
class _Failed:
    """The worker could not work at all (a model that will not load): every book would fail alike."""

    error: LlasaError


@dataclass(frozen=True)
class _Done:
    """The worker's last message: everything it sent is in."""


@dataclass(frozen=True)
class _WorkerSpec:
    index: int
    device: str  # "cpu", "mps" or "cuda:N"
    books: tuple[Book, ...]
    skip_current: bool
    deadline: float | None  # time.time() when the budget is spent; None: no budget
    cpu_threads: int | None  # torch threads for a CPU worker, so CPU workers share the cores


# --- in the worker process --------------------------------------------------


def _work(spec: _WorkerSpec, events: multiprocessing.Queue, stop: Any) -> None:  # type: ignore[type-arg]
    """A worker's life: pin its device, run the books, send every event back, then `_Done`."""
    book_of = {book.slug: place for place, book in enumerate(spec.books)}
    current: list[int | None] = [None]

    def send(event: Any) -> None:
        events.put(_Message(spec.index, current[0], event))

    try:
        kind = _pin_device(spec)
        minutes = None if spec.deadline is None else max(0.0, spec.deadline - time.time()) / SECONDS_PER_MINUTE
        with StopController(minutes) as controller:

            def stop_reason() -> str | None:
                return controller.stop_reason() or _main_reason(stop)

            books = [_on_device(book, kind) for book in spec.books]
            for event in synthesize_library(
                books,
                skip_current=spec.skip_current,
                stop_reason=stop_reason,
                seconds_left=controller.seconds_left,
                warn=lambda message: send(_Warning(message)),
            ):
                if isinstance(event, BookStarted | BookEnded | BookSkipped | BookFailed):
                    current[0] = book_of[event.book.slug]
                send(event)
    except LlasaError as exc:
        send(_Failed(exc))
    send(_Done())
    parent = multiprocessing.parent_process()
    if parent is not None and not parent.is_alive():
        events.cancel_join_thread()  # nobody will read the rest: do not hang on a full pipe


def _pin_device(spec: _WorkerSpec) -> str:
    """Make the worker's device the only one it sees (before torch starts); its device kind."""
    kind, _, index = spec.device.partition(":")
    if kind == "cuda":
        visible = [v.strip() for v in os.environ.get(CUDA_VISIBLE, "").split(",") if v.strip()]
        os.environ[CUDA_VISIBLE] = visible[int(index)] if visible else index
    elif kind == "cpu" and spec.cpu_threads is not None:
        import torch

        torch.set_num_threads(spec.cpu_threads)
    return kind


def _on_device(book: Book, kind: str) -> Book:
    engine = dataclasses.replace(book.request.engine, device=kind)
    return dataclasses.replace(book, request=dataclasses.replace(book.request, engine=engine))


def _main_reason(stop: Any) -> str | None:
    if stop.is_set():
        return STOPPED_WITH_MAIN
    parent = multiprocessing.parent_process()
    return MAIN_GONE if parent is not None and not parent.is_alive() else None


# --- in the main process ----------------------------------------------------


@dataclass
class _Worker:
    index: int
    device: str
    process: Any  # multiprocessing.Process (spawn context)
    gone: bool = False

    def describe(self) -> str:
        return f"worker {self.index + 1} ({self.device}, pid {self.process.pid})"


def synthesize_on_devices(
    books: Sequence[Book],
    devices: Sequence[str],
    *,
    skip_current: bool = True,
    stop_reason: Callable[[], str | None] = lambda: None,
    seconds_left: Callable[[], float | None] = lambda: None,
    warn: Warn = lambda message: None,
) -> Iterator[LibraryEvent]:
    """Work the books with one worker process per device, and yield their merged events (as
    `synthesize_library` would yield them for one process). A worker's death is a warning; the
    others carry on. Raises the first worker's error only when every worker failed with one."""
    devices = expand_devices(devices)
    context = multiprocessing.get_context("spawn")
    events: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    stop = context.Event()
    left = seconds_left()
    deadline = None if left is None else time.time() + left
    threads = _cpu_threads(devices)
    workers = [
        _Worker(index, device, context.Process(
            target=_work,
            args=(_WorkerSpec(index, device, tuple(books), skip_current, deadline, threads), events, stop),
            name=f"llasa-worker-{index + 1}",
            daemon=True,
        ))
        for index, device in enumerate(devices)
    ]  # fmt: skip
    merger = _Merger(books, len(workers), warn, stop_reason)
    said = set()
    errors: list[LlasaError] = []
    for worker in workers:
        worker.process.start()
    finished = False
    try:
        while not merger.finished:
            if stop_reason() is not None:
                stop.set()
            try:
                message: _Message = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                for worker in workers:
                    if not worker.gone and worker.process.exitcode is not None:
                        worker.gone = True
                        warn(f"{worker.describe()} {_death(worker.process.exitcode)}; the other workers carry on")
                        yield from merger.worker_gone(worker.index)
                if errors and all(w.gone for w in workers):
                    raise errors[0] from None
                continue
            worker = workers[message.worker]
            if isinstance(message.event, _Warning):
                if message.event.message not in said:
                    said.add(message.event.message)
                    warn(message.event.message)
            elif isinstance(message.event, _Failed):
                errors.append(message.event.error)
                warn(f"{worker.describe()} failed: {message.event.error}")
            elif isinstance(message.event, _Done):
                worker.gone = True
                yield from merger.worker_gone(worker.index)
            else:
                yield from merger.take(message.worker, message.book, message.event)
        if errors and len(errors) == len(workers):
            raise errors[0]
        finished = True
    finally:
        _stop_workers(workers, stop, urgent=not finished)


def _cpu_threads(devices: Sequence[str]) -> int | None:
    """Torch threads per CPU worker: the cores shared out, unless OMP_NUM_THREADS says already."""
    cpu_workers = sum(1 for device in devices if device == "cpu")
    if not cpu_workers or os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) // cpu_workers)


def _death(exitcode: int) -> str:
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
    return f"ended with exit code {exitcode}"


def _stop_workers(workers: Sequence[_Worker], stop: Any, urgent: bool) -> None:
    """Let the workers end. On an early exit they are asked to stop after their batch in flight
    (SIGTERM), and killed if they have not within the grace time (a rerun frees their claims)."""
    stop.set()
    alive = [w.process for w in workers if w.process.is_alive()]
    if urgent:
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + WORKER_GRACE_SECONDS
    for process in alive:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


# --- one stream from many workers -------------------------------------------


@dataclass
class _BookMerge:
    """What the workers have said about one book so far."""

    ended: set[int] = field(default_factory=set)
    started: bool = False
    opened: bool = False
    stopped: RunStopped | None = None  # said once, when the book closes: other workers may still be saving
    finished: JobFinished | None = None
    chapters: set[int] = field(default_factory=set)  # written (or held), shown once
    unchanged: dict[int, ChapterWritten] = field(default_factory=dict)
    book_written: bool = False
    book_unchanged: BookWritten | None = None
    skipped: BookSkipped | None = None
    failed: BookFailed | None = None
    errors: list[LlasaError] = field(default_factory=list)


class _Merger:
    """The workers' events as one run's: each book's in turn (a worker already on the next book
    is held back until every worker is done with this one), and each thing said once."""

    def __init__(
        self, books: Sequence[Book], workers: int, warn: Warn, main_reason: Callable[[], str | None]
    ) -> None:
        self.books = books
        self.workers = workers
        self.warn = warn
        self.main_reason = main_reason
        self.merges = [_BookMerge() for _ in books]
        self.current = 0
        self.waiting: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        self.gone: set[int] = set()

    @property
    def finished(self) -> bool:
        return self.current >= len(self.books)

    def take(self, worker: int, book: int | None, event: Any) -> Iterator[LibraryEvent]:
        if book is None or book < self.current:
            return
        if book > self.current:
            self.waiting[book].append((worker, event))
            return
        yield from self._apply(worker, event)
        yield from self._advance()

    def worker_gone(self, worker: int) -> Iterator[LibraryEvent]:
        self.gone.add(worker)
        yield from self._advance()

    def _advance(self) -> Iterator[LibraryEvent]:
        while not self.finished and len(self.merges[self.current].ended | self.gone) >= self.workers:
            yield from self._close(self.books[self.current], self.merges[self.current])
            self.current += 1
            for worker, event in self.waiting.pop(self.current, []):
                yield from self._apply(worker, event)

    def _apply(self, worker: int, event: Any) -> Iterator[LibraryEvent]:
        merge = self.merges[self.current]
        if isinstance(event, BookStarted):
            if not merge.started:
                merge.started = True
                yield event
        elif isinstance(event, BookSkipped | BookFailed | BookEnded):
            merge.ended.add(worker)
            if isinstance(event, BookSkipped):
                merge.skipped = merge.skipped or event
            elif isinstance(event, BookFailed):
                merge.failed = merge.failed or event
            elif event.error is not None:
                merge.errors.append(event.error)
        else:
            yield from self._book_event(merge, event)

    def _book_event(self, merge: _BookMerge, event: Any) -> Iterator[LibraryEvent]:
        if isinstance(event, Waiting):
            return  # the workers waiting for one another: not news
        if isinstance(event, JobOpened):
            if not merge.opened:
                merge.opened = True
                yield event
        elif isinstance(event, RunStopped):
            merge.stopped = merge.stopped or RunStopped(self.main_reason() or event.reason)
        elif isinstance(event, JobFinished):
            if merge.finished is None or event.done >= merge.finished.done:
                merge.finished = event
        elif isinstance(event, ChapterWritten | ChapterHeld):
            number = event.chapter.number
            if isinstance(event, ChapterWritten) and event.unchanged:
                merge.unchanged.setdefault(number, event)
            elif number not in merge.chapters:
                merge.chapters.add(number)
                yield event
        elif isinstance(event, BookWritten):
            if event.unchanged:
                merge.book_unchanged = merge.book_unchanged or event
            elif not merge.book_written:
                merge.book_written = True
                yield event
        else:
            yield event

    def _close(self, book: Book, merge: _BookMerge) -> Iterator[LibraryEvent]:
        """Every worker is done with the book: what only the last of them can say."""
        if merge.started:
            for number in sorted(set(merge.unchanged) - merge.chapters):
                yield merge.unchanged[number]
            if merge.book_unchanged is not None and not merge.book_written:
                yield merge.book_unchanged
            if merge.stopped is not None:
                yield merge.stopped
            if merge.finished is not None:
                yield merge.finished
                for error in merge.errors:  # another worker finished the book all the same
                    self.warn(f"a worker stopped on {book.slug}: {error}")
            yield BookEnded(book, merge.errors[0] if merge.errors and merge.finished is None else None)
        elif merge.skipped is not None:
            reason = merge.skipped.reason if merge.skipped.up_to_date else self.main_reason() or merge.skipped.reason
            yield dataclasses.replace(merge.skipped, reason=reason)
        elif merge.failed is not None:
            yield merge.failed
        else:
            yield BookSkipped(book, WORKERS_GONE)
