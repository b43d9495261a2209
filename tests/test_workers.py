"""Every device on one job (`--devices`): one worker process per device, one merged run.

The merger is tested on made-up events; the workers through the installed `llasa` on the tiny
real-architecture models, on two CPU workers (`--devices cpu,cpu`; this machine has no GPU).
Each worker appends `start KEY...` before it asks its model for a batch and `done KEY` once the
codes are committed (the job's `llasa.log`, with the worker's pid), so who did what, and whether
anything was synthesised twice, reads straight off the log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.errors import DeviceUnavailableError, InvalidOptionError
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, WorkerOptions
from llasa_cli.pipeline import RunRequest, check_placement, load_plan
from llasa_cli.pipeline.events import ChapterWritten, JobFinished, JobOpened, RunStopped, SegmentDone, Waiting
from llasa_cli.pipeline.job_folder import LOG_NAME, WORK_DIR_NAME
from llasa_cli.pipeline.library import Book, BookEnded, BookSkipped, BookStarted
from llasa_cli.pipeline.workers import WORKERS_GONE, _Merger, expand_devices

from .test_cli import installed_llasa
from .test_resume import env

# Nine segments of varied length over three chapters: enough for both workers to get batches.
BOOK = """Chapter One

The tide came in. Gulls cried over the wall. A bell rang twice.

Chapter Two

She lit the lamp. The wind rose. Rain hit the glass.

Chapter Three

Morning came at last. The boat was gone.
"""
RUN_TIMEOUT_S = 600


# --- the merger ---------------------------------------------------------------


def made_up_book(tmp_path: Path, name: str) -> tuple[Book, object]:
    source = tmp_path / f"{name}.txt"
    source.write_text(BOOK)
    request = RunRequest(source=str(source), output=str(tmp_path / name))
    return Book(name, request), load_plan(request)


def test_two_workers_events_read_as_one_runs(tmp_path: Path) -> None:
    (first, plan), (second, _) = made_up_book(tmp_path, "a"), made_up_book(tmp_path, "b")
    s = plan.segments
    merger = _Merger([first, second], workers=2, warn=lambda message: None, main_reason=lambda: None)
    chapter = plan.chapters[0]
    said = []
    for worker, book, event in [
        (0, 0, BookStarted(first, 1, 2, plan)),
        (1, 0, BookStarted(first, 1, 2, plan)),
        (0, 0, JobOpened(total=9, done=0)),
        (1, 0, JobOpened(total=9, done=1)),
        (1, 0, Waiting(())),
        (0, 0, SegmentDone(s[0], 1.0, 50, 51, False)),
        (1, 0, SegmentDone(s[1], 1.0, 50, 51, False)),
        (0, 0, ChapterWritten(chapter, "01.wav", 3.0)),
        (1, 0, ChapterWritten(chapter, "01.wav", 0.0, unchanged=True)),
        (1, 0, JobFinished(total=9, done=9)),
        (1, 0, BookEnded(first)),
        (1, 1, BookStarted(second, 2, 2, plan)),  # worker 1 is on to the next book: held back
        (0, 0, JobFinished(total=9, done=8)),
    ]:
        said += merger.take(worker, book, event)
    assert [type(e).__name__ for e in said] == [
        "BookStarted", "JobOpened", "SegmentDone", "SegmentDone", "ChapterWritten",
    ]  # fmt: skip
    said = list(merger.take(0, 0, BookEnded(first)))
    assert [type(e).__name__ for e in said] == ["JobFinished", "BookEnded", "BookStarted"]
    assert said[0].done == 9, "the last word on the job is the fullest"
    assert said[2].book is second


def test_a_book_closes_when_its_last_worker_is_gone(tmp_path: Path) -> None:
    (first, plan), (second, _) = made_up_book(tmp_path, "a"), made_up_book(tmp_path, "b")
    merger = _Merger([first, second], workers=2, warn=lambda message: None, main_reason=lambda: None)
    said = [*merger.take(0, 0, BookStarted(first, 1, 2, plan)), *merger.take(0, 0, BookEnded(first))]
    said += merger.worker_gone(1)  # killed: it says no more
    said += merger.worker_gone(0)
    assert [type(e).__name__ for e in said] == ["BookStarted", "BookEnded", "BookSkipped"]
    assert isinstance(said[-1], BookSkipped) and said[-1].reason == WORKERS_GONE
    assert merger.finished


def test_a_stop_is_said_once_after_what_the_other_workers_still_saved(tmp_path: Path) -> None:
    (first, plan) = made_up_book(tmp_path, "a")
    merger = _Merger([first], workers=2, warn=lambda message: None, main_reason=lambda: "stopped by SIGTERM")
    said = list(merger.take(0, 0, BookStarted(first, 1, 1, plan)))
    said += merger.take(1, 0, RunStopped("stopped with the main run"))
    said += merger.take(0, 0, SegmentDone(plan.segments[0], 1.0, 50, 51, False))
    said += merger.take(0, 0, RunStopped("stopped with the main run"))
    said += merger.take(1, 0, BookEnded(first))
    said += merger.take(0, 0, BookEnded(first))
    assert [type(e).__name__ for e in said] == ["BookStarted", "SegmentDone", "RunStopped", "BookEnded"]
    assert said[2].reason == "stopped by SIGTERM", "the main run's reason, not the workers'"


@pytest.mark.parametrize(
    ("request_fields", "placement", "message"),
    [
        (dict(output="-"), WorkerOptions(devices=("cpu", "cpu")), "--devices writes into an output folder"),
        (dict(source="-"), WorkerOptions(ray="auto"), "--ray needs the manuscript as a file"),
        (dict(engine=EngineOptions(device="cpu")), WorkerOptions(devices=("cpu",)), "give --device or --devices"),
    ],
)
def test_placements_that_cannot_work_are_refused(request_fields: dict, placement, message: str) -> None:
    request = RunRequest(**{"source": "book.txt", "output": "out", **request_fields})
    with pytest.raises(InvalidOptionError, match=message):
        check_placement(request, placement)
    check_placement(request, WorkerOptions())  # in this process, as ever


def test_devices_name_only_gpus_torch_sees() -> None:
    assert expand_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    with pytest.raises(DeviceUnavailableError, match="torch sees"):
        expand_devices(["cuda:99"])


# --- through the installed command --------------------------------------------


def command(book: Path, out: Path, tiny_models, *extra: str) -> list[str]:
    return [
        installed_llasa(), "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa), "--codec",
        str(tiny_models.xcodec2), "--batch-size", "1", "--top-p", "1.0", "--no-verify", "--seed", "5",
        "--max-segment-seconds", "3", "--quiet", *extra,
    ]  # fmt: skip


def log_events(out: Path) -> list[tuple[str, str, str]]:
    """(pid, "start" or "done", key) in the order the log has them."""
    path = out / WORK_DIR_NAME / LOG_NAME
    events = []
    for line in path.read_text().splitlines() if path.exists() else []:
        words = line.split()
        if len(words) > 3 and words[2] in ("start", "done"):
            keys = words[3:] if words[2] == "start" else words[3:4]
            events += [(words[1], words[2], key) for key in keys]
    return events


def stored_codes(out: Path) -> dict[tuple[int, int], np.ndarray]:
    with JobStore.open(out / WORK_DIR_NAME) as store:
        codes = {(r.chapter, r.index): store.codes(r.record.key) for r in store.plan_records()}
    assert all(c is not None for c in codes.values()), "every segment is finished"
    return codes  # type: ignore[return-value]


def assert_same_codes(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    differing = [p for p in expected if not np.array_equal(expected[p], got[p])]
    assert not differing, f"segments {differing} differ from the one-worker run"


def assert_nothing_finished_twice(events: list[tuple[str, str, str]]) -> None:
    finished: set[str] = set()
    for _pid, kind, key in events:
        if kind == "done":
            assert key not in finished, f"segment {key} was recorded twice"
            finished.add(key)
        else:
            assert key not in finished, f"segment {key} was synthesised again after it was finished"


@pytest.fixture(scope="module")
def one_worker_codes(tmp_path_factory: pytest.TempPathFactory, tiny_models) -> dict:
    folder = tmp_path_factory.mktemp("one-worker")
    (folder / "book.txt").write_text(BOOK)
    result = subprocess.run(
        command(folder / "book.txt", folder / "out", tiny_models, "--device", "cpu"),
        capture_output=True, text=True, env=env(), timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return stored_codes(folder / "out")


@pytest.mark.slow
def test_two_cpu_workers_share_a_book_do_nothing_twice_and_match_one_worker(
    tmp_path: Path, tiny_models, one_worker_codes
) -> None:
    (tmp_path / "book.txt").write_text(BOOK)
    out = tmp_path / "out"
    result = subprocess.run(
        command(tmp_path / "book.txt", out, tiny_models, "--devices", "cpu,cpu"),
        capture_output=True, text=True, env=env(), timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = log_events(out)
    starts = [key for _pid, kind, key in events if kind == "start"]
    assert len(starts) == len(set(starts)) == len(one_worker_codes), "each segment synthesised exactly once"
    assert len({pid for pid, kind, _key in events if kind == "done"}) == 2, "both workers recorded segments"
    assert_same_codes(one_worker_codes, stored_codes(out))
    chapters = ["01-chapter-one.wav", "02-chapter-two.wav", "03-chapter-three.wav"]
    assert sorted(p.name for p in out.glob("*.wav")) == chapters


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_only_that_batch(tmp_path: Path, tiny_models, one_worker_codes) -> None:
    (tmp_path / "book.txt").write_text(BOOK)
    out = tmp_path / "out"
    run = subprocess.Popen(
        command(tmp_path / "book.txt", out, tiny_models, "--devices", "cpu,cpu"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    victim = None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while victim is None and run.poll() is None and time.monotonic() < deadline:
        events = log_events(out)
        working = {pid for pid, kind, _key in events if kind == "done"}
        last = {pid: kind for pid, kind, _key in events}
        holding = [pid for pid in working if last[pid] == "start"]  # mid-batch: started, not yet done
        if holding:
            victim = holding[0]
            os.kill(int(victim.removeprefix("pid=")), signal.SIGKILL)
        time.sleep(0.01)
    assert victim is not None, "no worker was seen mid-batch"
    _, stderr = run.communicate(timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, stderr
    assert "was killed by SIGKILL" in stderr
    events = log_events(out)
    assert_nothing_finished_twice(events)
    lost = {key for pid, kind, key in events if pid == victim and kind == "start"} - {
        key for pid, kind, key in events if pid == victim and kind == "done"
    }
    assert lost, "the killed worker held a batch"
    assert all(any(pid != victim and k == key and kind == "done" for pid, kind, k in events) for key in lost), (
        "the other worker finished the killed worker's batch"
    )
    assert_same_codes(one_worker_codes, stored_codes(out))
