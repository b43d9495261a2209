"""A run keeps its claims alive while it works, records what fails, and holds no state of its own
between runs: leases renewed in the background, failures counted by `status`, a Synthesizer run twice."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.keys import keys_for
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, VerifyOptions
from llasa_cli.pipeline.events import SegmentDone
from llasa_cli.pipeline.leases import LeaseKeeper
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer, VerifierSetup

from .fakes import FakeCodec, FakeGenerator
from .test_synthesis import BOOK, PrefersLongAudio, RecordingSink, make_plan

VOICE = VoicePrompt(codes=np.arange(40, dtype=np.int64), text="The narrator speaks.")
SAMPLING = SamplingOptions(seed=3)
SHORT_LEASE = 0.3  # seconds: a batch below takes several leases
SLOW_BATCH = 4 * SHORT_LEASE


class SlowGenerator(FakeGenerator):
    """Takes `delay` seconds a batch, as a slow GPU would; says when it has started one."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started = threading.Event()

    def generate(self, requests):
        self.started.set()
        time.sleep(self.delay)
        return super().generate(requests)


class BrokenGenerator(FakeGenerator):
    """Fails every batch that holds `text`, as a model that cannot speak it would."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def generate(self, requests):
        if any(r.text == self.text for r in requests):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().generate(requests)


def test_a_batch_that_outlives_its_lease_is_not_joined_by_a_second_run(tmp_path) -> None:
    plan = make_plan([BOOK[0]])  # one chapter of three segments: one batch
    engine = EngineOptions(batch_size=len(BOOK[0]))
    slow = SlowGenerator(SLOW_BATCH)
    failures: list[BaseException] = []

    def first_run() -> None:
        try:
            with JobStore.open(tmp_path / "job") as store:
                context = RunContext(store=store, worker="slow", lease_seconds=SHORT_LEASE)
                list(Synthesizer(slow, FakeCodec(), SAMPLING, engine).run(plan, RecordingSink(), context, VOICE))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=first_run)
    thread.start()
    assert slow.started.wait(timeout=30)
    second = FakeGenerator()
    with JobStore.open(tmp_path / "job") as store:
        context = RunContext(store=store, worker="second", lease_seconds=SHORT_LEASE, poll_seconds=0.05)
        events = list(Synthesizer(second, FakeCodec(), SAMPLING, engine).run(plan, RecordingSink(), context, VOICE))
        keys = list(keys_for(plan, engine, SAMPLING, VOICE).values())
        assert store.done_keys(keys) == set(keys)
    thread.join(timeout=30)
    assert not failures, failures
    assert second.requests == []  # it waited for the slow run instead of taking its segments over
    assert not any(isinstance(e, SegmentDone) for e in events)
    assert len(slow.requests) == len(plan.segments)


def test_without_renewal_the_same_lease_would_have_run_out(tmp_path) -> None:
    """The control for the test above: a claim left alone is free for another run after its lease."""
    with JobStore.open(tmp_path / "job") as store:
        assert store.claim(["k"], "slow", SHORT_LEASE) == ["k"]
        assert store.claim(["k"], "second", SHORT_LEASE) == []
        time.sleep(SHORT_LEASE * 1.5)
        assert store.claim(["k"], "second", SHORT_LEASE) == ["k"]


def test_the_lease_keeper_renews_what_it_holds_and_lets_go_of_the_rest(tmp_path) -> None:
    logged: list[str] = []
    with JobStore.open(tmp_path / "job") as store:
        assert store.claim(["a", "b", "c"], "me", SHORT_LEASE) == ["a", "b", "c"]
        claimed_until = store.segment("a").lease_until
        keeper = LeaseKeeper(store, "me", SHORT_LEASE, logged.append)
        keeper.hold(["a", "b", "c"])
        store.record_done("b", np.array([1, 2]), attempts=1, scores={}, timings={}, hit_cap=False, worker="me")
        store.release(["c"], "me")
        assert store.claim(["c"], "other", 60.0) == ["c"]  # another run took c over
        time.sleep(SHORT_LEASE * 2)  # the thread has renewed a few times by now
        assert store.segment("a").lease_until >= claimed_until + SHORT_LEASE  # renewed after its claim ran out
        assert keeper.held == {"a"}
        assert store.claim(["a"], "other", 60.0) == []  # still held: its lease was renewed
        assert logged == ["another run took over c"]  # b was recorded: nothing to say about it
        keeper.release(["a"])
        keeper.close()
        time.sleep(SHORT_LEASE * 1.5)
        assert store.claim(["a"], "other", 60.0) == ["a"]


def test_a_batch_that_cannot_be_synthesised_counts_as_failed_and_a_rerun_finishes_it(tmp_path) -> None:
    plan = make_plan(BOOK)
    bad = BOOK[1][0]
    engine = EngineOptions(batch_size=1)
    with JobStore.open(tmp_path / "job") as store:
        context = RunContext(store=store, worker="w1")
        synth = Synthesizer(BrokenGenerator(bad), FakeCodec(), SAMPLING, engine)
        with pytest.raises(RuntimeError, match="illegal memory access"):
            list(synth.run(plan, RecordingSink(), context, VOICE))
        status = store.status()
        assert status.failed == 1 and status.done >= len(BOOK[0])  # chapter 1 was finished before
        assert status.done + status.failed + status.pending == status.total
        record = store.segment(context.keys["2.0"])
        assert record is not None and record.status == "failed" and record.attempts == 1
        assert record.last_error == "CUDA error: an illegal memory access was encountered"
        assert record.worker is None  # its claim was given back
        left = {
            s.text
            for s in plan.segments
            if context.keys[s.segment_id] not in store.done_keys([context.keys[s.segment_id]])
        }
        again = FakeGenerator()
        rerun = RunContext(store=store, worker="w2")
        list(Synthesizer(again, FakeCodec(), SAMPLING, engine).run(plan, RecordingSink(), rerun, VOICE))
        assert sorted(r.text for r in again.requests) == sorted(left) and bad in left
        final = store.status()
        assert (final.done, final.failed, final.pending) == (final.total, 0, 0)


def test_a_synthesizer_runs_twice_with_a_fresh_verifier_each_time(tmp_path) -> None:
    plan = make_plan(BOOK)
    loads: list[PrefersLongAudio] = []

    def load(reference: np.ndarray) -> PrefersLongAudio:
        loads.append(PrefersLongAudio(min_samples=1))
        return loads[-1]

    verification = VerifierSetup(VerifyOptions(retries=1), load=load)
    synth = Synthesizer(FakeGenerator(), FakeCodec(), SAMPLING, EngineOptions(batch_size=2), verification)
    codes = []
    for name in ("first", "second"):
        with JobStore.open(tmp_path / name) as store:
            context = RunContext(store=store, worker=name)
            events = list(synth.run(plan, RecordingSink(), context, VOICE))
            codes.append([store.codes(context.keys[s.segment_id]).tolist() for s in plan.segments])
        assert sum(isinstance(e, SegmentDone) for e in events) == len(plan.segments)
    assert codes[0] == codes[1]
    assert len(loads) == 2 and all(v.calls for v in loads)  # each run verified with its own verifier
