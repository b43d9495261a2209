"""The job store's review records (schema v4): spans, accepted takes, the redo queue, text overrides."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.job import schema as jobstore_schema
from llasa_cli.job.records import PlanRow
from llasa_cli.job.review_state import PreviousTake, SegmentSpan, TextOverride, apply_text_overrides
from llasa_cli.job.schema import DB_NAME
from llasa_cli.job.store import JobStore
from llasa_cli.options import TextOptions
from llasa_cli.text.manuscript import manuscript_from_text
from llasa_cli.text.planner import build_plan

CODES = np.arange(10, 60, dtype=np.int64)
VERDICT = {"passed": False, "score": 0.2, "failures": ["wer"], "transcript": "the tied came", "wer": 0.5}


@pytest.fixture
def store(tmp_path: Path):
    with JobStore.open(tmp_path) as opened:
        opened.sync_plan([PlanRow("k-a", 1, 0, "The tide came in.", 1.0), PlanRow("k-b", 1, 1, "It went out.", 1.0)])
        opened.record_done("k-a", CODES, attempts=2, scores=VERDICT, timings={}, hit_cap=False, worker="w",
                           flagged=True)  # fmt: skip
        opened.record_done("k-b", CODES, attempts=1, scores={}, timings={}, hit_cap=False, worker="w")
        yield opened


def test_accepting_a_flagged_take_stops_it_counting_as_failed_and_records_who_and_when(store: JobStore) -> None:
    assert store.status().failed == 1
    accepted = store.accept("k-a", "ann", now=100.0)
    assert accepted is not None and (accepted.who, accepted.at, accepted.failures) == ("ann", 100.0, ("wer",))
    assert store.status().failed == 0 and store.status().done == 2
    assert store.flagged_keys(["k-a", "k-b"]) == set()
    assert store.acceptances()["k-a"].take == 0


def test_only_a_flagged_finished_take_can_be_accepted(store: JobStore) -> None:
    assert store.accept("k-b", "ann") is None  # passed: nothing to accept
    assert store.accept("unknown", "ann") is None
    assert store.acceptances() == {}


def test_a_redone_segment_loses_its_acceptance(store: JobStore) -> None:
    store.accept("k-a", "ann")
    store.reset(["k-a"])
    assert store.acceptances() == {}


def test_spans_record_the_take_that_was_stitched(store: JobStore) -> None:
    store.reset(["k-b"])  # take 1 of k-b
    store.record_spans(1, [SegmentSpan(1, 0, "k-a", 0.5, 1.5), SegmentSpan(1, 1, "k-b", 1.9, 3.0)])
    spans = store.spans()
    assert spans[(1, 0)] == SegmentSpan(1, 0, "k-a", 0.5, 1.5, take=0)
    assert spans[(1, 1)].take == 1
    store.record_spans(1, [SegmentSpan(1, 0, "k-a", 0.25, 1.0)])  # a rewrite replaces the chapter's spans
    assert list(store.spans()) == [(1, 0)]


def test_redo_queue_holds_one_row_a_position_until_dequeued(store: JobStore) -> None:
    store.queue_redo(1, 0, "k-a", "ann", now=5.0)
    store.queue_redo(1, 0, "k-a", "bob", now=6.0)
    store.queue_redo(1, 1, "k-b", "ann")
    assert [(q.index, q.who) for q in store.redo_queue()] == [(0, "bob"), (1, "ann")]
    store.dequeue([(1, 0)])
    assert [q.index for q in store.redo_queue()] == [1]


def test_a_text_override_equal_to_the_manuscript_is_removed(store: JobStore) -> None:
    assert store.set_text_override(1, 0, "The tide came in.", "The tide came in fast.", "ann") is not None
    assert [o.text for o in store.text_overrides()] == ["The tide came in fast."]
    assert store.set_text_override(1, 0, "The tide came in.", "The tide came in.", "ann") is None
    assert store.text_overrides() == []


def test_previous_takes_keep_the_latest_per_position(store: JobStore) -> None:
    store.record_previous_take(PreviousTake(1, 0, "k-a", 0, "review/takes/a0.wav", 1.0))
    store.record_previous_take(PreviousTake(1, 0, "k-a", 1, "review/takes/a1.wav", 2.0))
    assert store.previous_takes()[(1, 0)].path == "review/takes/a1.wav"


def test_overrides_apply_while_the_manuscript_line_is_unchanged() -> None:
    plan = build_plan(manuscript_from_text("The tide came in.\n\nIt went out.", name="t"), TextOptions())
    first = plan.segments[0]
    override = TextOverride(first.chapter, first.index, first.text, "The sea came in slowly, grey and cold.", "a", 0)
    applied = apply_text_overrides(plan, [override])
    assert applied.segments[0].text == override.text
    assert applied.segments[0].est_seconds > first.est_seconds  # the token cap follows the longer text
    assert applied.segments[1] == plan.segments[1]
    edited = TextOverride(first.chapter, first.index, "A line the manuscript no longer has.", "x", "a", 0)
    assert apply_text_overrides(plan, [edited]) == plan


def test_a_schema_3_job_gains_the_review_tables_and_keeps_its_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(jobstore_schema, "MIGRATIONS", jobstore_schema.MIGRATIONS[:3])
        with JobStore.open(tmp_path) as old:
            old.record_done("k", CODES, attempts=1, scores=VERDICT, timings={}, hit_cap=False, worker="w", flagged=True)
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        assert "spans" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
    with JobStore.open(tmp_path) as migrated:
        assert migrated.accept("k", "ann") is not None
        assert migrated.spans() == {} and migrated.redo_queue() == []
