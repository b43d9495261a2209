"""The job database: codes round-trip, keys, leases, crash safety, concurrency and faults."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.errors import JobBusyError, JobStoreError, OutputError
from llasa_cli.job import schema as jobstore_schema
from llasa_cli.job.keys import manuscript_fingerprint, segment_key
from llasa_cli.job.records import OutputRecord, PlanRow
from llasa_cli.job.schema import DB_NAME, map_sqlite_error
from llasa_cli.job.store import JobStore

from .fakes import integrity

WORKER_A, WORKER_B = "host:1:a", "host:2:b"
LEASE = 60.0
SPAWN = multiprocessing.get_context("spawn")
CHILD_TIMEOUT_S = 20.0
WORK_S = 0.005  # a "synthesis" step, so the two workers really interleave


def done(store: JobStore, key: str, codes: Any = (1, 2, 3), worker: str = WORKER_A) -> bool:
    return store.record_done(
        key, np.asarray(codes), attempts=1, scores={"cer": 0.1}, timings={"gen": 1.5}, hit_cap=False, worker=worker
    )


def rows(*specs: tuple[str, int, int, float]) -> list[PlanRow]:
    return [PlanRow(key, chapter, index, f"text {key}", est) for key, chapter, index, est in specs]


@pytest.fixture
def store(tmp_path: Path):
    with JobStore.open(tmp_path / "work") as opened:
        yield opened


class FailingConn:
    """Wraps a sqlite3 connection; statements that `fail_on` matches raise `error` instead of running."""

    def __init__(self, real: sqlite3.Connection, fail_on: str, error: BaseException) -> None:
        self.real, self.fail_on, self.error = real, fail_on, error

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(self.fail_on):
            raise self.error

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self._check(sql)
        return self.real.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self.real.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# --- pure helpers -------------------------------------------------------------


def test_segment_key_changes_with_every_input_and_only_then() -> None:
    voice = VoicePrompt(codes=np.array([5, 6, 7]), text="Hello there.")
    base: dict[str, Any] = dict(
        text="It was a dark night.", voice=voice, model="m", codec="c", sampling={"temperature": 0.9}, seed=3
    )
    key = segment_key(**base)
    assert len(key) == 64 and int(key, 16) >= 0
    assert (
        segment_key(**{**base, "voice": VoicePrompt(codes=np.array([5, 6, 7], dtype=np.int32), text="Hello there.")})
        == key
    )
    variants = [
        {"text": "It was a dark night!"},
        {"voice": None},
        {"voice": VoicePrompt(codes=np.array([5, 6, 8]), text="Hello there.")},
        {"voice": VoicePrompt(codes=np.array([5, 6, 7]), text="Hello.")},
        {"model": "m2"},
        {"codec": "c2"},
        {"sampling": {"temperature": 0.8}},
        {"sampling": {"temperature": 0.9, "top_p": 0.95}},
        {"seed": 4},
    ]
    keys = {segment_key(**{**base, **variant}) for variant in variants}
    assert key not in keys and len(keys) == len(variants)


def test_manuscript_fingerprint() -> None:
    assert manuscript_fingerprint("abc") == manuscript_fingerprint("abc")
    assert manuscript_fingerprint("abc") != manuscript_fingerprint("abd")


# --- basic storage ------------------------------------------------------------------


def test_codes_round_trip_as_uint16(store: JobStore) -> None:
    codes = np.array([0, 1, 1234, 65_535], dtype=np.int64)
    assert store.codes("k") is None
    assert done(store, "k", codes)
    out = store.codes("k")
    assert out is not None and out.dtype == np.int64 and out.tolist() == codes.tolist()
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT length(codes) FROM segments WHERE key = 'k'").fetchone()[0] == 2 * len(codes)
    assert done(store, "empty", []) and store.codes("empty").tolist() == []  # type: ignore[union-attr]
    for bad in ([65_536], [-1], [[1, 2]], [0.5]):
        with pytest.raises(ValueError):
            done(store, "bad", bad)


def test_voice_and_job_round_trip(tmp_path: Path) -> None:
    with JobStore.open(tmp_path) as store:
        assert store.load_voice() is None and store.job() is None
        store.save_voice(VoicePrompt(codes=np.array([0, 65_535, 42]), text="A calm voice."))
        store.set_job("fp1", {"sampling": {"temperature": 0.9}}, "model", "codec")
        store.set_job("fp2", {"sampling": {"temperature": 0.7}}, "model", "codec")
    with JobStore.open(tmp_path) as store:
        voice = store.load_voice()
        assert voice is not None and voice.text == "A calm voice."
        assert voice.codes.dtype == np.int64 and voice.codes.tolist() == [0, 65_535, 42]
        job = store.job()
        assert job is not None and job.fingerprint == "fp2" and job.options == {"sampling": {"temperature": 0.7}}
        assert (job.model, job.codec) == ("model", "codec") and job.created <= job.updated


def test_store_uses_wal_and_identifies_itself(store: JobStore) -> None:
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA application_id").fetchone()[0] == jobstore_schema.APPLICATION_ID
        meta = dict(raw.execute("SELECT key, value FROM meta"))
        assert meta["schema_version"] == str(len(jobstore_schema.MIGRATIONS))
    assert integrity(store.path) == "ok"


# --- claims and leases ----------------------------------------------------------------


def test_two_workers_never_get_the_same_key(store: JobStore) -> None:
    assert store.claim(["k1", "k2"], WORKER_A, LEASE) == ["k1", "k2"]
    assert store.claim(["k1", "k2", "k3", "k3"], WORKER_B, LEASE) == ["k3"]
    assert store.claim(["k1", "k2", "k3"], WORKER_A, LEASE) == ["k1", "k2"]  # own leases are renewed
    assert store.claim(["k4", "k5", "k6"], WORKER_B, LEASE, limit=2) == ["k4", "k5"]


def test_lease_expiry_and_renewal(store: JobStore) -> None:
    assert store.claim(["k"], WORKER_A, 10.0, now=1_000.0) == ["k"]
    assert store.claim(["k"], WORKER_B, 10.0, now=1_009.0) == []  # live lease
    assert store.renew(["k"], WORKER_A, 10.0, now=1_009.0) == ["k"]
    assert store.claim(["k"], WORKER_B, 10.0, now=1_018.0) == []  # renewed lease still live
    assert store.claim(["k"], WORKER_B, 10.0, now=1_019.5) == ["k"]  # A died: its lease ran out
    assert store.renew(["k"], WORKER_A, 10.0, now=1_020.0) == []  # A learns it lost the key
    store.release(["k"], WORKER_A)  # releasing a lost key changes nothing
    assert store.claim(["k"], WORKER_A, 10.0, now=1_021.0) == []
    store.release(["k"], WORKER_B)
    assert store.claim(["k"], WORKER_A, 10.0, now=1_021.0) == ["k"]


def test_done_keys_are_never_claimed_or_done_twice(store: JobStore) -> None:
    assert store.claim(["k"], WORKER_A, LEASE) == ["k"]
    assert done(store, "k", [1, 2])
    assert store.segment("k").worker is None  # type: ignore[union-attr]
    assert store.claim(["k"], WORKER_B, LEASE, now=1e12) == []
    assert not done(store, "k", [9, 9], worker=WORKER_B)  # first result wins
    assert store.codes("k").tolist() == [1, 2]  # type: ignore[union-attr]
    assert store.done_keys(["k", "other"]) == {"k"}


def test_failure_counts_attempts_and_releases(store: JobStore) -> None:
    store.claim(["k"], WORKER_A, LEASE)
    store.record_failure("k", "CUDA out of memory", WORKER_A)
    record = store.segment("k")
    assert record is not None and record.status == "failed" and record.attempts == 1
    assert record.last_error == "CUDA out of memory" and record.worker is None
    assert store.claim(["k"], WORKER_B, LEASE) == ["k"]
    assert done(store, "k", worker=WORKER_B)
    record = store.segment("k")
    assert record is not None and record.status == "done" and record.attempts == 2 and record.last_error is None
    assert record.scores == {"cer": 0.1} and record.timings == {"gen": 1.5} and record.hit_cap is False
    store.record_failure("k", "late failure", WORKER_A)  # a late failure does not undo a result
    assert store.done_keys(["k"]) == {"k"}


def test_reset_makes_keys_pending_again(store: JobStore) -> None:
    done(store, "k")
    store.reset(["k"])
    assert store.done_keys(["k"]) == set() and store.codes("k") is None
    assert store.claim(["k"], WORKER_A, LEASE) == ["k"]


# --- crash safety -------------------------------------------------------------------


def test_error_inside_record_done_leaves_segment_not_done(store: JobStore) -> None:
    store.claim(["k"], WORKER_A, LEASE)
    real = store._conn
    store._conn = FailingConn(real, "COMMIT", KeyboardInterrupt())  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        done(store, "k")
    store._conn = real
    assert not real.in_transaction
    assert store.done_keys(["k"]) == set() and store.codes("k") is None
    assert store.segment("k").worker == WORKER_A  # type: ignore[union-attr]


def _child_claim_then_die(work_dir: str) -> None:
    store = JobStore.open(Path(work_dir))
    store.claim(["k1", "k2"], WORKER_B, LEASE)
    os.kill(os.getpid(), signal.SIGKILL)


def _child_die_inside_record_done(work_dir: str) -> None:
    store = JobStore.open(Path(work_dir))
    store.claim(["k1"], WORKER_B, LEASE)

    class KillAtCommit(FailingConn):
        def _check(self, sql: str) -> None:
            if sql.startswith("COMMIT") and self.real.in_transaction:
                os.kill(os.getpid(), signal.SIGKILL)

    store._conn = KillAtCommit(store._conn, "", RuntimeError())  # type: ignore[assignment]
    done(store, "k1", worker=WORKER_B)


@pytest.mark.parametrize("child", [_child_claim_then_die, _child_die_inside_record_done])
def test_killed_worker_loses_nothing_but_its_lease(tmp_path: Path, child: Any) -> None:
    JobStore.open(tmp_path).close()
    process = SPAWN.Process(target=child, args=(str(tmp_path),))
    process.start()
    process.join(CHILD_TIMEOUT_S)
    assert process.exitcode == -signal.SIGKILL
    with JobStore.open(tmp_path) as store:
        assert integrity(store.path) == "ok"
        assert store.done_keys(["k1", "k2"]) == set() and store.codes("k1") is None
        assert store.claim(["k1"], WORKER_A, LEASE) == []  # the dead worker's lease is still live
        assert store.claim(["k1"], WORKER_A, LEASE, now=9e9) == ["k1"]  # ... until it expires
        assert done(store, "k1")


def _child_worker(work_dir: str, keys: list[str], worker: str, queue: Any, start: Any) -> None:
    claimed: list[str] = []
    recorded: list[str] = []
    with JobStore.open(Path(work_dir)) as store:
        start.wait(CHILD_TIMEOUT_S)  # both workers race from the same moment
        while True:
            todo = [key for key in keys if key not in store.done_keys(keys)]
            if not todo:
                break
            got = store.claim(todo, worker, LEASE, limit=3)
            claimed += got
            for key in got:
                time.sleep(WORK_S)
                if done(store, key, [int(key[1:])], worker=worker):
                    recorded.append(key)
    queue.put((claimed, recorded))


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(60)]
    with JobStore.open(tmp_path) as store:
        store.sync_plan(rows(*[(key, 1, i, 1.0) for i, key in enumerate(keys)]))
    queue, start = SPAWN.Queue(), SPAWN.Barrier(2)
    processes = [
        SPAWN.Process(target=_child_worker, args=(str(tmp_path), keys, worker, queue, start))
        for worker in (WORKER_A, WORKER_B)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=CHILD_TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(CHILD_TIMEOUT_S)
        assert process.exitcode == 0
    (claimed_a, recorded_a), (claimed_b, recorded_b) = results
    assert not set(claimed_a) & set(claimed_b)
    assert sorted(recorded_a + recorded_b) == sorted(keys)  # every key done exactly once
    assert recorded_a and recorded_b  # both workers really shared the job
    with JobStore.open(tmp_path) as store:
        assert integrity(store.path) == "ok"
        assert store.status().done == len(keys)
        assert all(store.codes(key).tolist() == [int(key[1:])] for key in keys)  # type: ignore[union-attr]


# --- plan and status ------------------------------------------------------------------


def test_edited_plan_keeps_unchanged_segments(store: JobStore) -> None:
    store.sync_plan(rows(("a", 1, 0, 2.0), ("b", 1, 1, 2.0), ("c", 2, 0, 2.0)))
    for key in ("a", "b", "c"):
        done(store, key)
    store.sync_plan(rows(("x", 1, 0, 3.0), ("a", 1, 1, 2.0), ("b2", 1, 2, 2.0), ("c", 2, 0, 2.0)))
    status = store.status()
    assert (status.total, status.done, status.pending, status.failed) == (4, 2, 2, 0)
    assert store.done_keys(["a", "b", "c", "x", "b2"]) == {"a", "b", "c"}  # b is kept for a revert
    store.sync_plan(rows(("a", 1, 0, 2.0), ("b", 1, 1, 2.0), ("c", 2, 0, 2.0)))
    assert store.status().done == store.status().total
    with pytest.raises(ValueError, match="1.0"):
        store.sync_plan(rows(("a", 1, 0, 2.0), ("b", 1, 0, 2.0)))
    assert store.status().total == 3  # the refused plan changed nothing


def test_status_totals_and_chapters(store: JobStore) -> None:
    store.sync_plan(rows(("a", 1, 0, 2.0), ("b", 1, 1, 3.0), ("c", 2, 0, 4.0), ("d", 2, 1, 5.0), ("a", 3, 0, 2.0)))
    done(store, "a", np.zeros(100, dtype=np.int64))
    store.record_failure("c", "boom", WORKER_A)
    store.claim(["d"], WORKER_A, LEASE)
    status = store.status()
    assert (status.total, status.done, status.failed, status.pending) == (5, 2, 1, 2)
    assert status.done_seconds == pytest.approx(4.0) and status.pending_est_seconds == pytest.approx(12.0)
    one, two, three = status.chapters
    assert (one.chapter, one.total, one.done, one.pending, one.failed) == (1, 2, 1, 1, 0)
    assert one.done_seconds == pytest.approx(2.0) and one.pending_est_seconds == pytest.approx(3.0)
    assert (two.done, two.failed, two.pending, two.pending_est_seconds) == (0, 1, 1, pytest.approx(9.0))
    assert three.done == 1 and status.done < status.total


def test_output_records_are_per_file(store: JobStore) -> None:
    assert store.output_digest("../01.wav") is None
    store.record_outputs([OutputRecord("../01.wav", "wav", 1, "d1", "h1")])
    store.record_outputs(
        [OutputRecord("../01.wav", "wav", 1, "d2", "h2"), OutputRecord("chapters/01.wav", "wav", 1, "d3", None)]
    )
    assert store.output_digest("../01.wav") == "d2" and store.output_digest("chapters/01.wav") == "d3"
    assert [o.name for o in store.outputs()] == ["../01.wav", "chapters/01.wav"]
    store.forget_outputs(["../01.wav"])
    assert store.output_digest("../01.wav") is None and len(store.outputs()) == 1


def test_numpy_values_are_stored_as_plain_json_and_ints(store: JobStore) -> None:
    scores = {"cer": np.float32(0.25), "sims": np.array([0.5, 1.0])}
    store.record_done("k", np.array([1], dtype=np.uint16), attempts=np.int64(2), scores=scores, timings={},
                      hit_cap=np.bool_(True), worker=WORKER_A)  # fmt: skip
    record = store.segment("k")
    assert record is not None and record.scores == {"cer": 0.25, "sims": [0.5, 1.0]} and record.hit_cap is True
    store.sync_plan([PlanRow("k", np.int64(3), np.int64(0), "t", np.float32(1.5))])  # type: ignore[arg-type]
    assert store.status().chapters[0].chapter == 3
    store.record_outputs([OutputRecord("../03.wav", "wav", np.int64(3), "d", None)])  # type: ignore[arg-type]
    assert store.outputs()[0].chapter == 3 and type(store.outputs()[0].chapter) is int


# --- refusing files that are not ours --------------------------------------------


def assert_one_line_store_error(work_dir: Path, match: str) -> None:
    with pytest.raises(JobStoreError, match=match) as info:
        JobStore.open(work_dir)
    assert "\n" not in str(info.value)


def test_random_bytes_are_refused(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(np.random.default_rng(0).bytes(8192))
    assert_one_line_store_error(tmp_path, "not an SQLite file")


def test_corrupt_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"SQLite format 3\x00" + np.random.default_rng(1).bytes(8192))
    assert_one_line_store_error(tmp_path, "not a usable")


def test_foreign_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE recipes (name TEXT)")
    before = path.read_bytes()
    assert_one_line_store_error(tmp_path, "not a llasa-cli job database")
    assert path.read_bytes() == before and not (tmp_path / f"{DB_NAME}-wal").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    JobStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert_one_line_store_error(tmp_path, "upgrade llasa-cli")


def test_older_schema_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with JobStore.open(tmp_path) as store:
        done(store, "k")
    newer = [*jobstore_schema.MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",)]
    monkeypatch.setattr(jobstore_schema, "MIGRATIONS", newer)
    with JobStore.open(tmp_path) as store:
        assert store.done_keys(["k"]) == {"k"}
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        assert dict(raw.execute("SELECT key, value FROM meta"))["schema_version"] == str(len(newer))
        raw.execute("SELECT x FROM extra")


def test_a_job_from_before_flagged_was_a_column_keeps_its_flagged_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 2 kept "flagged" inside the scores; schema 3 moves it to a column that status counts."""
    monkeypatch.setattr(jobstore_schema, "MIGRATIONS", jobstore_schema.MIGRATIONS[:2])
    JobStore.open(tmp_path).close()  # an empty job at schema 2
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:  # filled as schema 2 did
        raw.executemany("INSERT INTO positions VALUES (1, ?, ?, 'text', 1.0)", [(0, "good"), (1, "bad")])
        raw.executemany(
            "INSERT INTO segments (key, status, codes, n_codes, attempts, scores) VALUES (?, 'done', ?, 1, 1, ?)",
            [("good", b"\x01\x00", '{"passed": true}'), ("bad", b"\x04\x00", '{"passed": false, "flagged": true}')],
        )
    with JobStore.open(tmp_path) as store:
        assert store.flagged_keys(["good", "bad"]) == {"bad"}
        status = store.status()
        assert (status.done, status.failed, status.pending, status.finished) == (1, 1, 0, 2)
        assert store.segment("bad").flagged and not store.segment("good").flagged


def test_a_job_from_before_outputs_keeps_its_chapter_files_named_relative_to_the_job_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 4 kept one digest per chapter with an absolute path; schema 5 keeps one per file,
    named relative to the job folder, with its format and (unknown: never removed) content."""
    work = tmp_path / "out" / ".llasa"
    monkeypatch.setattr(jobstore_schema, "MIGRATIONS", jobstore_schema.MIGRATIONS[:4])
    JobStore.open(work).close()
    monkeypatch.undo()
    with sqlite3.connect(work / DB_NAME) as raw:
        raw.executemany(
            "INSERT INTO chapters VALUES (?, ?, ?, 1.0)",
            [(1, "d1", str(tmp_path / "out" / "01-one.wav")), (2, "d2", str(work / "chapters" / "02-two.wav"))],
        )
    with JobStore.open(work) as store:
        assert store.outputs() == [
            OutputRecord("../01-one.wav", "wav", 1, "d1", None),
            OutputRecord("chapters/02-two.wav", "wav", 2, "d2", None),
        ]
    with sqlite3.connect(work / DB_NAME) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "chapters" not in tables


def test_a_read_only_store_reads_and_refuses_to_write(tmp_path: Path) -> None:
    with JobStore.open(tmp_path / "work") as store:
        store.sync_plan(rows(("a", 1, 0, 1.0)))
        done(store, "a")
    with JobStore.open(tmp_path / "work", read_only=True) as store:
        assert store.status().done == 1 and store.codes("a").tolist() == [1, 2, 3]  # type: ignore[union-attr]
        with pytest.raises(OutputError, match="read-only"):
            done(store, "b")
    with pytest.raises(OutputError), JobStore.open(tmp_path / "missing", read_only=True):
        pass
    assert not (tmp_path / "missing").exists()


def test_a_read_only_open_of_an_older_store_migrates_it_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobstore_schema, "MIGRATIONS", jobstore_schema.MIGRATIONS[:3])
    JobStore.open(tmp_path).close()
    monkeypatch.undo()
    with JobStore.open(tmp_path, read_only=True) as store:
        assert store.status().total == 0
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        version = dict(raw.execute("SELECT key, value FROM meta"))["schema_version"]
    assert version == str(len(jobstore_schema.MIGRATIONS))


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE positions SET text = CAST(X'9AFF00' AS TEXT)",  # not UTF-8
        "UPDATE segments SET scores = '{\"cer\": '",  # JSON cut short
    ],
)
def test_damaged_rows_are_a_one_line_store_error(tmp_path: Path, damage: str) -> None:
    with JobStore.open(tmp_path) as store:
        store.sync_plan(rows(("a", 1, 0, 1.0)))
        done(store, "a")
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute(damage)
    with JobStore.open(tmp_path) as store, pytest.raises(JobStoreError, match="not a usable") as info:
        store.plan_records()
    assert "\n" not in str(info.value)


def test_an_undecodable_schema_is_a_one_line_store_error(tmp_path: Path) -> None:
    JobStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute("PRAGMA writable_schema = ON")
        raw.execute("UPDATE sqlite_master SET name = CAST(X'9AFF' AS TEXT) WHERE name = 'voice'")
    for read_only in (False, True):
        with pytest.raises(JobStoreError, match="not a usable"):
            JobStore.open(tmp_path, read_only=read_only).close()


# --- faults -----------------------------------------------------------------------


@pytest.mark.parametrize("fail_on", ["UPDATE", "COMMIT"])
def test_disk_full_is_an_output_error_and_keeps_data(store: JobStore, fail_on: str) -> None:
    done(store, "old", [7, 8])
    store.claim(["new"], WORKER_A, LEASE)
    real = store._conn
    store._conn = FailingConn(real, fail_on, sqlite3.OperationalError("database or disk is full"))  # type: ignore[assignment]
    with pytest.raises(OutputError, match="disk is full") as info:
        done(store, "new", [1])
    assert str(store.path) in str(info.value) and "\n" not in str(info.value)
    store._conn = real
    assert not real.in_transaction
    assert store.codes("old").tolist() == [7, 8]  # type: ignore[union-attr]
    assert store.done_keys(["new"]) == set() and integrity(store.path) == "ok"
    assert done(store, "new", [1])  # works again once space is back


def test_sqlite_errors_map_to_domain_errors(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    cases = {
        "attempt to write a readonly database": OutputError,
        "database is locked": JobBusyError,
        "file is not a database": JobStoreError,
        "database disk image is malformed": JobStoreError,
    }
    for message, error in cases.items():
        assert type(map_sqlite_error(sqlite3.OperationalError(message), path, 1.0)) is error


def test_locked_database_is_busy(store: JobStore) -> None:
    with JobStore.open(store.path.parent, busy_timeout_s=0.2) as other:
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(JobBusyError, match="locked by another llasa run"):
                other.claim(["k"], WORKER_B, LEASE)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert other.claim(["k"], WORKER_B, LEASE) == ["k"]


def test_read_only_work_dir_is_an_output_error(tmp_path: Path) -> None:
    work = tmp_path / "work"
    JobStore.open(work).close()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for folder in (work, fresh):
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(work, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        for folder in (work, fresh):
            with pytest.raises(OutputError, match="read-only"), JobStore.open(folder) as store:
                store.claim(["k"], WORKER_A, LEASE)
    finally:
        for folder in (work, fresh):
            folder.chmod(stat.S_IRWXU)


def test_reset_starts_a_new_take(tmp_path: Path) -> None:
    with JobStore.open(tmp_path) as store:
        done(store, "a")
        done(store, "b")
        assert store.takes(["a", "b", "never"]) == {"a": 0, "b": 0, "never": 0}
        store.reset(["a"])
        store.reset(["a"])
        assert store.takes(["a", "b"]) == {"a": 2, "b": 0}
        assert store.done_keys(["a", "b"]) == {"b"}
