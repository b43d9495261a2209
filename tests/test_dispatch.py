"""The driver that owns the job and sends batches to a pool of workers (the `--ray` path),
on an in-process pool of `RenderWorker`s over the fake models: every batch is recorded as it
comes back, a batch lost with its worker is claimed again, and the book comes out as a plain
run makes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llasa_cli.engine.loading import SpeechModels
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, VerifyOptions
from llasa_cli.pipeline import RunRequest
from llasa_cli.pipeline.dispatch import Dispatcher, RemoteCodec, RemoteGenerator, WorkerLost
from llasa_cli.pipeline.job_folder import LOG_NAME, WORK_DIR_NAME
from llasa_cli.pipeline.library import Book, BookEnded, synthesize_library
from llasa_cli.pipeline.render_worker import RenderWorker
from llasa_cli.pipeline.run import LoadedModels

from .fakes import FakeCodec, FakeGenerator

BOOK = """Chapter One

The tide came in. Gulls cried over the wall. A bell rang twice.

Chapter Two

She lit the lamp. The wind rose. Rain hit the glass.
"""


class InlinePool:
    """A `RenderPool` whose workers render in this process as soon as a batch is submitted.
    Batches whose submit number is in `lose` are lost with their worker; in `fail`, they raise."""

    def __init__(self, request: RunRequest, count: int, lose: tuple[int, ...] = (), fail: tuple[int, ...] = ()):
        self.render_workers = {
            n: RenderWorker(request, SpeechModels(generator=FakeGenerator(), codec=FakeCodec(), device="cpu"))
            for n in range(count)
        }
        self.lose, self.fail = lose, fail
        self.sent: list[tuple[int, list[str]]] = []  # (worker, segment ids) per submitted batch
        self.results: dict[int, object] = {}

    def workers(self) -> list[int]:
        return list(self.render_workers)

    def gone(self) -> bool:
        return False

    def batch_size(self, worker: int) -> int:
        return self.render_workers[worker].batch_size()

    def submit(self, worker: int, call) -> int:
        handle = len(self.sent)
        self.sent.append((worker, [s.segment_id for s in call.segments]))
        if handle in self.lose:
            self.results[handle] = WorkerLost("the worker died")
        elif handle in self.fail:
            self.results[handle] = RuntimeError("CUDA error: an illegal memory access")
        else:
            self.results[handle] = self.render_workers[worker].render(call)
        return handle

    def wait(self, handles, timeout: float) -> list[int]:
        return list(handles)

    def result(self, handle: int):
        result = self.results.pop(handle)
        if isinstance(result, Exception):
            raise result
        return result

    def call(self, method: str, *args):
        return getattr(self.render_workers[0], method)(*args)


def request_for(tmp_path: Path, name: str) -> RunRequest:
    source = tmp_path / "book.txt"
    source.write_text(BOOK)
    return RunRequest(
        source=str(source),
        output=str(tmp_path / name),
        engine=EngineOptions(batch_size=2),
        verify=VerifyOptions(enabled=False),
    )


def run_on(pool: InlinePool | None, request: RunRequest) -> list:
    """The book through `synthesize_library`: on the pool's workers, or (None) in this process."""

    def load(request: RunRequest, voices, warn) -> LoadedModels:
        if pool is None:
            return LoadedModels(request, SpeechModels(generator=FakeGenerator(), codec=FakeCodec(), device="cpu"))
        models = SpeechModels(generator=RemoteGenerator(pool), codec=RemoteCodec(pool), device="cpu")
        return LoadedModels(request, models, runner=Dispatcher(pool, request.sampling, request.engine))

    return list(synthesize_library([Book("book", request)], skip_current=False, load=load))


def stored(out: Path) -> dict[tuple[int, int], np.ndarray]:
    with JobStore.open(out / WORK_DIR_NAME) as store:
        return {(r.chapter, r.index): store.codes(r.record.key) for r in store.plan_records()}


def log_words(out: Path) -> list[list[str]]:
    return [line.split()[2:] for line in (out / WORK_DIR_NAME / LOG_NAME).read_text().splitlines()]


def test_two_workers_share_the_batches_and_the_book_matches_a_plain_run(tmp_path: Path) -> None:
    plain = request_for(tmp_path, "plain")
    run_on(None, plain)
    pooled = request_for(tmp_path, "pooled")
    pool = InlinePool(pooled, 2)
    events = run_on(pool, pooled)
    assert isinstance(events[-1], BookEnded) and events[-1].error is None
    assert {worker for worker, _ids in pool.sent} == {0, 1}, "both workers got batches"
    sent = [segment for _worker, ids in pool.sent for segment in ids]
    assert len(sent) == len(set(sent)) == len(stored(Path(pooled.output)))
    expected, got = stored(Path(plain.output)), stored(Path(pooled.output))
    assert expected.keys() == got.keys()
    assert all(np.array_equal(expected[p], got[p]) for p in expected)
    assert sorted(p.name for p in Path(pooled.output).glob("*.wav")) == ["01-chapter-one.wav", "02-chapter-two.wav"]
    finished = [e for e in events if type(e).__name__ == "JobFinished"]
    assert finished and finished[0].done == finished[0].total


def test_a_batch_lost_with_its_worker_is_claimed_again_and_recorded_once(tmp_path: Path) -> None:
    request = request_for(tmp_path, "out")
    pool = InlinePool(request, 2, lose=(0,))
    events = run_on(pool, request)
    assert isinstance(events[-1], BookEnded) and events[-1].error is None
    lost = pool.sent[0][1]
    assert sum(ids.count(lost[0]) for _worker, ids in pool.sent) == 2, "the lost batch was sent again"
    words = log_words(Path(request.output))
    assert words[[w[0] for w in words].index("lost")][0] == "lost"
    dones = [w[1] for w in words if w[0] == "done"]
    assert len(dones) == len(set(dones)), "a segment was recorded twice"
    with JobStore.open(Path(request.output) / WORK_DIR_NAME) as store:
        assert store.status().finished == store.status().total


def test_a_batch_that_fails_is_recorded_as_failed_and_ends_the_book(tmp_path: Path) -> None:
    request = request_for(tmp_path, "out")
    pool = InlinePool(request, 1, fail=(1,))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        run_on(pool, request)
    with JobStore.open(Path(request.output) / WORK_DIR_NAME) as store:
        failed = [r for r in store.plan_records() if r.record.status == "failed"]
    assert [f"{r.chapter}.{r.index}" for r in failed] == pool.sent[1][1]
