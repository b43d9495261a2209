"""Crash safety and cooperation, with real processes and the tiny real-architecture models.

Each run appends `start KEY...` before it asks the language model for a batch and
`done KEY` after the segment's codes are committed (the job's `llasa.log`). So
"no finished segment was synthesised again" reads straight off the log: no key may
start after it was done.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.job.schema import DB_NAME
from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import LOG_NAME, WORK_DIR_NAME

from .fakes import integrity

BOOK = """Chapter One

The tide came in. Gulls cried over the wall.

Chapter Two

She lit the lamp. The wind rose.

Chapter Three

Morning came at last.
"""
KILL_SEED = 20261125
RUN_TIMEOUT_S = 300


def command(book: Path, out: Path, tiny_models, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "llasa_cli", "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa),
        "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--batch-size", "2", "--top-p", "1.0", "--no-verify",
        "--seed", "5", "--quiet", *extra,
    ]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run_to_end(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=RUN_TIMEOUT_S)


def log_lines(out: Path) -> list[str]:
    path = out / WORK_DIR_NAME / LOG_NAME
    return path.read_text().splitlines() if path.exists() else []


def starts_and_dones(lines: list[str]) -> list[tuple[str, str]]:
    events = []
    for line in lines:
        words = line.split()
        if len(words) > 2 and words[2] == "start":
            events += [("start", key) for key in words[3:]]
        elif len(words) > 3 and words[2] == "done":
            events.append(("done", words[3]))
    return events


def stored_codes(out: Path) -> dict[tuple[int, int], np.ndarray]:
    with JobStore.open(out / WORK_DIR_NAME) as store:
        rows = store._conn.execute("SELECT chapter, idx, key FROM positions").fetchall()
        return {(c, i): store.codes(k) for c, i, k in rows}


def count_done(out: Path) -> int:
    return sum(1 for kind, _ in starts_and_dones(log_lines(out)) if kind == "done")


def kill_after(cmd: list[str], out: Path, done_lines: int, extra_delay: float) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and count_done(out) < done_lines and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_models):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    reference = tmp_path / "reference"
    assert run_to_end(command(book, reference, tiny_models)).returncode == 0

    out = tmp_path / "out"
    rng = random.Random(KILL_SEED)
    for done_lines in sorted(rng.sample(range(0, 6), 2)):
        kill_after(command(book, out, tiny_models), out, done_lines, extra_delay=rng.uniform(0.0, 1.0))
    final = run_to_end(command(book, out, tiny_models))
    assert final.returncode == 0, final.stderr

    events = starts_and_dones(log_lines(out))
    finished: set[str] = set()
    for kind, key in events:
        if kind == "done":
            finished.add(key)
        else:
            assert key not in finished, f"segment {key} was synthesised again after it was finished"
    expected, got = stored_codes(reference), stored_codes(out)
    assert expected.keys() == got.keys()
    for position, codes in expected.items():
        assert np.array_equal(codes, got[position]), f"segment {position} differs from the uninterrupted run"
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(p.name for p in reference.glob("*.wav"))


@pytest.mark.slow
def test_two_runs_at_once_share_the_work_and_do_nothing_twice(tmp_path, tiny_models):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    cmd = command(book, out, tiny_models)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=RUN_TIMEOUT_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    starts = [key for kind, key in starts_and_dones(log_lines(out)) if kind == "start"]
    assert len(starts) == len(set(starts)), "a segment was synthesised by both runs"
    with JobStore.open(out / WORK_DIR_NAME) as store:
        assert integrity(store.path) == "ok"
        assert store.status().done == store.status().total
    assert len(list(out.glob("*.wav"))) == 3


def test_time_budget_stops_with_the_partial_code_and_status_reports_it(tmp_path, tiny_models):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    stopped = run_to_end(command(book, out, tiny_models, "--max-minutes", "0"))
    assert stopped.returncode == 3, stopped.stderr
    assert "run the same command again" in stopped.stderr
    status = subprocess.run([sys.executable, "-m", "llasa_cli", "status", str(out), "--json"],
                            capture_output=True, text=True, env=env())  # fmt: skip
    report = json.loads(status.stdout)
    assert {"total", "done", "failed", "pending"} <= report.keys()
    assert report["total"] == 6 and report["pending"] > 0 and report["done"] + report["pending"] == 6
    finished = run_to_end(command(book, out, tiny_models, "--json"))
    assert finished.returncode == 0, finished.stderr
    events = [json.loads(line) for line in finished.stdout.splitlines()]
    assert events[0]["event"] == "job" and events[-1]["event"] == "summary"
    assert events[-1]["status"] == "complete"
    assert sum(e["event"] == "segment" for e in events) == report["pending"]


def test_a_corrupt_job_database_is_a_clear_error_and_is_left_alone(tmp_path, tiny_models):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    (out / WORK_DIR_NAME).mkdir(parents=True)
    junk = bytes(random.Random(1).getrandbits(8) for _ in range(4096))
    (out / WORK_DIR_NAME / DB_NAME).write_bytes(junk)
    result = run_to_end(command(book, out, tiny_models))
    assert result.returncode == 32
    assert result.stderr.strip().count("\n") == 0 and "job database" in result.stderr
    assert (out / WORK_DIR_NAME / DB_NAME).read_bytes() == junk


def test_status_of_a_folder_without_a_job_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "llasa_cli", "status", str(tmp_path)],
                            capture_output=True, text=True, env=env())  # fmt: skip
    assert result.returncode == 10 and "no llasa job" in result.stderr


@pytest.mark.slow
def test_first_ctrl_c_saves_the_batch_in_flight_and_exits_partial(tmp_path, tiny_models):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    cmd = command(book, out, tiny_models)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and count_done(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 3, stderr
    assert "run the same command again" in stderr
    starts = [key for kind, key in starts_and_dones(log_lines(out)) if kind == "start"]
    dones = [key for kind, key in starts_and_dones(log_lines(out)) if kind == "done"]
    assert set(starts) == set(dones)  # the batch in flight was finished and saved, not dropped
    assert run_to_end(cmd).returncode == 0


LONG_BOOK = "\n\n".join(
    f"Chapter {name}\n\n" + "\n\n".join(lines)
    for name, lines in [
        ("One", ["The tide came in.", "Gulls cried over the wall.", "A boat knocked at the pier."]),
        ("Two", ["She lit the lamp.", "The wind rose.", "Rain struck the glass."]),
        ("Three", ["Morning came at last.", "The sea lay flat.", "Someone sang in the lane."]),
        ("Four", ["The bread was warm.", "A cart went by.", "Night fell again."]),
    ]
) + "\n"  # fmt: skip
CTRL_C_ROUNDS = 3
CTRL_C_SEED = 20261130


def wait_for_work(proc: subprocess.Popen[str], out: Path, starts_before: int, dones: int) -> None:
    """Until this run has started a batch of its own and `dones` segments more are done (or it ended)."""
    dones_before = count_done(out)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        events = starts_and_dones(log_lines(out))
        started = sum(kind == "start" for kind, _ in events) > starts_before
        if started and count_done(out) >= dones_before + dones:
            return
        time.sleep(0.02)


def assert_nothing_synthesised_twice(out: Path) -> None:
    finished: set[str] = set()
    started: set[str] = set()
    for kind, key in starts_and_dones(log_lines(out)):
        if kind == "done":
            finished.add(key)
        else:
            assert key not in finished, f"segment {key} was synthesised again after it was finished"
            assert key not in started, f"segment {key} was started twice"
            started.add(key)


@pytest.mark.slow
def test_repeated_ctrl_c_at_varied_moments_always_saves_and_resumes(tmp_path, tiny_models):
    """Ctrl-C lands during a batch, between batches or while a chapter is stitched: every time the
    run exits 3 with its batch in flight saved (never 1, never a traceback), and the next run
    picks up where it stopped without speaking anything twice."""
    book = tmp_path / "book.txt"
    book.write_text(LONG_BOOK)
    out = tmp_path / "out"
    cmd = command(book, out, tiny_models)
    rng = random.Random(CTRL_C_SEED)
    interrupted = 0
    for _ in range(CTRL_C_ROUNDS):
        starts_before = sum(kind == "start" for kind, _ in starts_and_dones(log_lines(out)))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        wait_for_work(proc, out, starts_before, dones=rng.choice([0, 0, 1, 2]))
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        assert "Traceback" not in stderr and "ImportError" not in stderr, stderr
        assert proc.returncode in (0, 3), stderr  # 0: it had finished before the signal came
        assert_nothing_synthesised_twice(out)
        mine = [line for line in log_lines(out) if f" pid={proc.pid} " in line]
        starts = {key for kind, key in starts_and_dones(mine) if kind == "start"}
        dones = {key for kind, key in starts_and_dones(mine) if kind == "done"}
        assert starts and starts == dones, mine  # the batch in flight was finished and saved, not dropped
        if proc.returncode == 0:
            break
        interrupted += 1
        assert "run the same command again" in stderr
        assert "press Ctrl-C again to stop now" in " ".join(stderr.split())
    assert interrupted >= CTRL_C_ROUNDS - 1, "most rounds should stop a run that is still working"

    final = run_to_end(cmd)
    assert final.returncode == 0, final.stderr
    assert_nothing_synthesised_twice(out)
    with JobStore.open(out / WORK_DIR_NAME) as store:
        assert store.status().done == store.status().total
        assert count_done(out) == store.status().total
