"""Overlapping a batch's decode and verification with the next batch's generation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.constants import SAMPLES_PER_CODE
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, VerifyOptions
from llasa_cli.pipeline.batch_runner import OVERLAP_THREAD_NAME, BatchRunner, overlap_wanted
from llasa_cli.pipeline.events import SegmentDone
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer, VerifierSetup

from .fakes import FakeCodec, FakeGenerator
from .test_synthesis import BOOK, PrefersLongAudio, RecordingSink, make_plan

WAIT_SECONDS = 20.0  # only reached when overlap is broken: the tests then fail, they do not hang


def test_without_overlap_both_halves_run_before_start_returns() -> None:
    calls: list[tuple[str, int, str]] = []

    def generate(work: int) -> int:
        calls.append(("generate", work, threading.current_thread().name))
        return work + 1

    def finish(work: int, generated: int) -> int:
        calls.append(("finish", work, threading.current_thread().name))
        return generated * 10

    runner = BatchRunner(generate, finish, overlap=False)
    first = runner.start(1)
    assert first.done() and first.result() == 20
    assert [c[:2] for c in calls] == [("generate", 1), ("finish", 1)]
    assert {c[2] for c in calls} == {threading.current_thread().name}


def test_with_overlap_a_batch_finishes_while_the_next_one_generates() -> None:
    next_generated = threading.Event()
    seen: dict[int, bool] = {}
    threads: dict[str, set[str]] = {"generate": set(), "finish": set()}

    def generate(work: int) -> int:
        threads["generate"].add(threading.current_thread().name)
        if work == 1:
            next_generated.set()
        return work

    def finish(work: int, generated: int) -> int:
        threads["finish"].add(threading.current_thread().name)
        if work == 0:  # still finishing batch 0 when batch 1 is generated
            seen[work] = next_generated.wait(WAIT_SECONDS)
        return generated * 10

    with BatchRunner(generate, finish, overlap=True) as runner:
        first, second = runner.start(0), runner.start(1)
        assert (first.result(WAIT_SECONDS), second.result(WAIT_SECONDS)) == (0, 10)
    assert seen == {0: True}
    assert threads["generate"] == {threading.current_thread().name}
    assert len(threads["finish"]) == 1 and next(iter(threads["finish"])).startswith(OVERLAP_THREAD_NAME)


def test_only_one_batch_finishes_at_a_time_and_results_keep_their_order() -> None:
    lock = threading.Lock()
    running, most = [0], [0]

    def finish(work: int, generated: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1
        return generated

    with BatchRunner(lambda work: work, finish, overlap=True) as runner:
        futures = [runner.start(n) for n in range(6)]
        assert [f.result(WAIT_SECONDS) for f in futures] == list(range(6))
    assert most[0] == 1


def test_an_error_while_finishing_reaches_the_caller() -> None:
    def finish(work: int, generated: int) -> int:
        raise RuntimeError(f"verifier broke on batch {work}")

    with BatchRunner(lambda work: work, finish, overlap=True) as runner:
        failed = runner.start(3)
        with pytest.raises(RuntimeError, match="batch 3"):
            failed.result(WAIT_SECONDS)


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [(None, "cuda", True), (None, "cpu", False), (None, "mps", False), (True, "cpu", True), (False, "cuda", False)],
)
def test_overlap_is_on_by_default_on_cuda_only(setting: bool | None, device: str, expected: bool) -> None:
    assert overlap_wanted(setting, device) is expected


# --- the pipeline with overlap ----------------------------------------------------------


class ThreadNoting(FakeCodec):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def decode(self, codes):
        self.threads.add(threading.current_thread().name)
        return super().decode(codes)


def _short_first_tries() -> FakeGenerator:
    generator = FakeGenerator()
    generator.enqueue(BOOK[0][0], [7] * 2)  # fails verification once
    for _ in range(4):
        generator.enqueue(BOOK[1][1], [3] * 2)  # fails every attempt: flagged
    return generator


def _verified(store: JobStore, overlap: bool, generator: FakeGenerator) -> tuple[list, ThreadNoting]:
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    verifier = PrefersLongAudio(min_samples=10 * SAMPLES_PER_CODE)
    verification = VerifierSetup(VerifyOptions(retries=3), load=lambda reference: verifier)
    codec = ThreadNoting()
    engine = EngineOptions(batch_size=2, overlap=overlap)
    synth = Synthesizer(generator, codec, SamplingOptions(), engine, verification)
    events = list(synth.run(make_plan(BOOK), RecordingSink(), RunContext(store=store, worker="w"), voice))
    return events, codec


def _done(events: list) -> list[tuple[str, int, int, bool]]:
    return [(e.segment.segment_id, e.attempts, e.codes, e.flagged) for e in events if isinstance(e, SegmentDone)]


def test_an_overlapped_run_gives_what_a_sequential_one_gives(tmp_path: Path) -> None:
    with JobStore.open(tmp_path / "seq") as seq_store, JobStore.open(tmp_path / "overlap") as overlap_store:
        sequential, seq_codec = _verified(seq_store, False, _short_first_tries())
        overlapped, overlap_codec = _verified(overlap_store, True, _short_first_tries())
        assert _done(overlapped) == _done(sequential)
        assert [type(e).__name__ for e in overlapped] == [type(e).__name__ for e in sequential]
        seq_codes = {k: seq_store.codes(k) for k, _ in seq_store._conn.execute("SELECT key, text FROM positions")}
        for key, codes in seq_codes.items():
            assert np.array_equal(overlap_store.codes(key), codes)
    assert seq_codec.threads == {threading.current_thread().name}
    assert any(name.startswith(OVERLAP_THREAD_NAME) for name in overlap_codec.threads)


class FailsOnText(FakeGenerator):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def generate(self, requests):
        if any(r.text == self.text and r.voice is not None for r in requests):
            raise RuntimeError("the device went away")
        return super().generate(requests)


def test_an_error_generating_the_next_batch_keeps_the_batch_in_flight(tmp_path: Path) -> None:
    plan = make_plan(BOOK)
    chapter_one = sorted(plan.segments_of(1), key=lambda s: s.est_seconds)
    generator = FailsOnText(chapter_one[2].text)  # the second batch of chapter 1 (batch size 2)
    with JobStore.open(tmp_path / "job") as store:
        with pytest.raises(RuntimeError, match="device went away"):
            _verified(store, True, generator)
        done = {(p.chapter, p.index) for p in store.plan_records() if p.record.status == "done"}
    assert {(s.chapter, s.index) for s in chapter_one[:2]} <= done
    assert (chapter_one[2].chapter, chapter_one[2].index) not in done


def test_overlap_through_the_cli_with_the_tiny_models_writes_the_same_audio(tiny_models, tmp_path: Path) -> None:
    import soundfile as sf

    from llasa_cli.cli.app import main

    book = tmp_path / "book.txt"
    book.write_text("A first short line.\n\nA second one, a little longer.\n\nThird.\n\nAnd a fourth to finish.\n")
    outputs = {}
    for flag in ("--overlap", "--no-overlap"):
        out = tmp_path / flag.strip("-")
        args = [
            "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2),
            "--device", "cpu", "--no-verify", "--no-chapters", "--batch-size", "2", "--quiet", flag,
        ]  # fmt: skip
        assert main(args) == 0
        (wav,) = sorted(out.glob("*.wav"))
        outputs[flag] = sf.read(wav)[0]
    assert outputs["--overlap"].size > 0
    assert np.array_equal(outputs["--overlap"], outputs["--no-overlap"])
