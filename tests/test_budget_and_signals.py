"""A time budget bounds a run by about one batch, not the batch in flight plus another; signals say
what is true of them: SIGTERM is not Ctrl-C, and "waiting for another run" only when one holds work.

Time here is a fake clock that the fake generator advances, so nothing depends on how fast this
machine is; only the last test runs a real process and sends it SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.keys import keys_for
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions
from llasa_cli.pipeline.budget import BUDGET_SPENT, BUDGET_TOO_SHORT, BatchPacer
from llasa_cli.pipeline.events import RunStopped, SegmentDone, Waiting
from llasa_cli.pipeline.job_folder import worker_alive
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.stop import StopController
from llasa_cli.pipeline.synthesizer import Synthesizer

from .fakes import FakeCodec, FakeGenerator
from .test_resume import LONG_BOOK, RUN_TIMEOUT_S, command, count_done, env
from .test_synthesis import RecordingSink, make_plan

VOICE = VoicePrompt(codes=np.arange(40, dtype=np.int64), text="The narrator speaks.")
SAMPLING = SamplingOptions(seed=3)
# Ten different sentences (one text is one segment key) of 30 characters: 2 s of speech each in make_plan.
SENTENCES = [f"The lamp burned all night ({letter})." for letter in "abcdefghij"]
SEGMENT_SECONDS = 2.0
assert {len(text) / 15 for text in SENTENCES} == {SEGMENT_SECONDS}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedGenerator(FakeGenerator):
    """Takes `pace` seconds of the fake clock per second of estimated speech, as a CPU does."""

    def __init__(self, clock: FakeClock, pace: float) -> None:
        super().__init__()
        self.clock = clock
        self.pace = pace

    def generate(self, requests):
        self.clock.now += self.pace * SEGMENT_SECONDS * len(requests)
        return super().generate(requests)


def budget_run(store: JobStore, budget_s: float | None, segments: int = 10, batch_size: int = 4, pace: float = 1.0):
    clock = FakeClock()
    stop = StopController(budget_s / 60 if budget_s is not None else None, clock=clock)
    generator = TimedGenerator(clock, pace)
    synth = Synthesizer(generator, FakeCodec(), SAMPLING, EngineOptions(batch_size=batch_size))
    context = RunContext(
        store=store, worker="w", stop_reason=stop.stop_reason, seconds_left=stop.seconds_left, clock=clock
    )
    events = list(synth.run(make_plan([SENTENCES[:segments]]), RecordingSink(), context, VOICE))
    return events, [len(batch) for batch in generator.batches], clock.now


@pytest.fixture
def store(tmp_path: Path):
    with JobStore.open(tmp_path / "job") as opened:
        yield opened


# --- the budget --------------------------------------------------------------------------------


def test_no_batch_starts_that_would_end_past_the_budget_and_the_last_one_shrinks_to_fit(store) -> None:
    # A batch of 4 takes 8 s. After it, 5 s are left: room for 2 segments (4 s), not 4.
    events, batches, ended = budget_run(store, budget_s=13.0)
    assert batches == [4, 2]
    assert ended <= 13.0
    assert [e.reason for e in events if isinstance(e, RunStopped)] == [BUDGET_TOO_SHORT]
    assert sum(isinstance(e, SegmentDone) for e in events) == 6
    assert store.status().done == 6  # the work done is kept; the shrunken batch's other claims were given back
    assert store.holders([k for k in keys_of(store)]) == {}


def keys_of(store: JobStore) -> list[str]:
    return [row[0] for row in store._conn.execute("SELECT key FROM segments")]


def test_without_the_budget_check_the_same_run_overruns_by_a_batch(store) -> None:
    """What the pacer prevents: stopping only once the budget is spent ends at 16 s, not 13."""
    clock = FakeClock()
    stop = StopController(13.0 / 60, clock=clock)
    generator = TimedGenerator(clock, 1.0)
    synth = Synthesizer(generator, FakeCodec(), SAMPLING, EngineOptions(batch_size=4))
    context = RunContext(store=store, worker="w", stop_reason=stop.stop_reason, clock=clock)  # no seconds_left
    events = list(synth.run(make_plan([SENTENCES]), RecordingSink(), context, VOICE))
    assert [len(b) for b in generator.batches] == [4, 4]
    assert clock.now == 16.0 and [e.reason for e in events if isinstance(e, RunStopped)] == [BUDGET_SPENT]


def test_a_budget_with_room_for_everything_changes_nothing(store) -> None:
    events, batches, _ = budget_run(store, budget_s=1_000.0)
    assert batches == [4, 4, 2]
    assert not any(isinstance(e, RunStopped) for e in events)


def test_no_budget_changes_nothing(store) -> None:
    _, batches, _ = budget_run(store, budget_s=None)
    assert batches == [4, 4, 2]


def test_the_pacer_fits_segments_by_the_measured_pace() -> None:
    clock, left = FakeClock(), [10.0]
    pacer = BatchPacer(lambda: left[0], clock)
    assert pacer.fit([3.0, 3.0, 3.0]) == 3  # no pace measured yet: the first batch starts whole
    clock.now = 6.0
    pacer.finished(0.0, [3.0, 3.0])  # 6 s for 6 s of speech: a pace of 1
    assert pacer.seconds_per_speech_second == 1.0
    assert pacer.fit([3.0, 3.0, 3.0, 3.0]) == 3  # 9 s fit in 10, 12 do not
    left[0] = 2.0
    assert pacer.fit([3.0]) == 0 and pacer.stopped == BUDGET_TOO_SHORT
    assert BatchPacer(lambda: 2.0, clock).fit([]) == 0  # nothing claimed is no reason to stop


def test_overlapping_batches_are_not_timed_twice() -> None:
    """With --overlap a batch is claimed before the one before it is recorded: each counts from the
    later of its claim and the previous batch's end."""
    clock = FakeClock()
    pacer = BatchPacer(lambda: None, clock)
    clock.now = 4.0
    pacer.finished(0.0, [2.0])  # claimed at 0, done at 4
    clock.now = 7.0
    pacer.finished(3.0, [2.0])  # claimed at 3 (while the first decoded), done at 7: 3 s of its own
    assert pacer.seconds_per_speech_second == pytest.approx(7.0 / 4.0)


def test_seconds_left_counts_down_on_the_controllers_clock() -> None:
    clock = FakeClock()
    stop = StopController(0.5, clock=clock)
    clock.now = 20.0
    assert stop.seconds_left() == 10.0 and stop.stop_reason() is None
    clock.now = 31.0
    assert stop.seconds_left() == -1.0 and stop.stop_reason() == BUDGET_SPENT
    assert StopController(None, clock=clock).seconds_left() is None


# --- what signals say --------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_only_ctrl_c_is_told_to_press_ctrl_c_again(signum: int) -> None:
    stop = StopController()
    stop._handle(signum, None)
    notice = stop.take_notice()
    assert notice is not None and "stopping after the batch in flight is saved" in notice
    assert ("Ctrl-C" in notice) == (signum == signal.SIGINT)
    assert stop.take_notice() is None  # once
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signum, None)  # the second stops at once


def run_beside_a_holder(store: JobStore, holder: str, alive: bool, stop_checks: int) -> list:
    """A run on a two-chapter job whose segment 2.0 `holder` leases; it is stopped (as by SIGTERM)
    once it has asked whether to stop `stop_checks` times. Returns its events."""
    plan = make_plan([SENTENCES[:2], ["A second chapter begins.", "It ends."]])
    synth = Synthesizer(FakeGenerator(), FakeCodec(), SAMPLING, EngineOptions(batch_size=2))
    store.claim([keys_for(plan, synth.engine, SAMPLING, VOICE, None)["2.0"]], holder, lease_seconds=900.0)
    checks = iter(range(stop_checks))
    context = RunContext(
        store=store,
        worker="me",
        stop_reason=lambda: None if next(checks, None) is not None else "stopped by SIGTERM",
        worker_alive=lambda worker: alive,
        sleep=lambda seconds: None,
    )
    return list(synth.run(plan, RecordingSink(), context, VOICE))


def test_waiting_is_said_while_another_live_run_holds_the_work(store) -> None:
    events = run_beside_a_holder(store, "other-host:1:abc", alive=True, stop_checks=40)
    assert any(isinstance(e, Waiting) and e.chapters == (2,) for e in events)
    assert isinstance(events[-1], RunStopped)


def test_a_dead_holder_is_no_reason_to_wait(store) -> None:
    events = run_beside_a_holder(store, f"{socket.gethostname()}:999999:abc", alive=False, stop_checks=1_000)
    assert not any(isinstance(e, Waiting) for e in events)
    assert store.status().done == store.status().total  # its claim was freed and the work done


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are read from /proc")
def test_a_killed_run_not_yet_reaped_is_not_alive() -> None:
    """A run killed by SIGKILL stays a zombie until its parent reaps it, and os.kill(pid, 0) still
    succeeds on a zombie: its claims must not make the next run wait out a 15-minute lease."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = f"{socket.gethostname()}:{child.pid}:abcdef01"
    try:
        assert worker_alive(worker)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not worker_alive(worker)
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_sigterm_speaks_of_sigterm_and_of_no_other_run(tmp_path: Path, tiny_models) -> None:
    book = tmp_path / "book.txt"
    book.write_text(LONG_BOOK)
    out = tmp_path / "out"
    cmd = [arg for arg in command(book, out, tiny_models) if arg != "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and count_done(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode in (0, 3), stderr
    if proc.returncode == 3:
        assert "SIGTERM" in stderr and "run the same command again" in stderr
    assert "Ctrl-C" not in stderr and "waiting for another run" not in stderr


def test_waiting_is_said_once_per_change_not_at_every_poll(capsys):
    from llasa_cli.cli.progress import HumanReporter

    reporter = HumanReporter(make_plan([["One."], ["Two."], ["Three."]]), interactive=False)
    for chapters in [(2,), (2,), (2,), (3,), (3,)]:
        reporter.update(Waiting(chapters))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("waiting")]
    said = "waiting for another run working on chapter(s)"
    assert lines == [f"{said} [2]", f"{said} [3]"]
