"""Working the review queue: `prepare_queued_redo` and a run with fake models speak the queued
segments again (an edited one with its new text, kept by later runs), rebuild their chapters and
keep the previous takes to be heard beside the new; `llasa redo OUTDIR --queued` does it all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.cli.app import main
from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_commands import prepare_queued_redo
from llasa_cli.pipeline.review_actions import queue_redo
from llasa_cli.pipeline.review_page import ReviewJob, book_info, review_data

from .fakes import FakeGenerator
from .review_job import build_review_job, job_folder, speak_again

EDITED = "The pane rattled in its frame."


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_review_job(tmp_path_factory.mktemp("review-redo-job"))


@pytest.fixture
def out(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    return copy


def spoken(generator: FakeGenerator) -> set[str]:
    return {r.text for r in generator.requests if r.voice is not None}


def by_id(out: Path) -> dict[str, dict]:
    job = ReviewJob(job_folder(out), out)
    return {s["id"]: s for s in review_data(job, job.file_link, book_info(job))["segments"]}


def test_the_queue_is_spoken_again_and_the_previous_takes_play_beside_the_new(out: Path) -> None:
    before = by_id(out)
    queue_redo(job_folder(out), "1.1", "ann")
    queue_redo(job_folder(out), "2.2", "ann", text=EDITED)
    redo = prepare_queued_redo(job_folder(out))
    assert [s.segment_id for s in redo.segments] == ["1.1", "2.2"]
    with JobStore.open(job_folder(out)) as store:
        assert store.redo_queue() == []

    generator = speak_again(out)
    assert spoken(generator) == {"The keeper climbed the stairs at dusk.", EDITED}
    after = by_id(out)
    assert after["2.2"]["text"] == EDITED and after["2.2"]["orig"] == "The glass shook in its frame."
    assert after["2.2"]["cat"] == "ok"  # no "glass" for the fake verifier to mishear any more
    assert after["1.1"]["take"] == before["1.1"]["take"] + 1
    for segment_id in ("1.1", "2.2"):
        new, old = after[segment_id], before[segment_id]
        assert new["span"] is not None and new["prev"] is not None
        start, end = old["span"]
        previous = sf.info(out / new["prev"]["src"])
        assert previous.duration == pytest.approx(end - start, abs=0.01)  # the old take, cut from its chapter
    assert after["1.0"]["prev"] is None and after["1.0"]["take"] == 0


def test_a_later_run_keeps_the_edited_text_until_the_manuscript_line_changes(out: Path) -> None:
    queue_redo(job_folder(out), "2.2", "ann", text=EDITED)
    prepare_queued_redo(job_folder(out))
    speak_again(out)
    assert spoken(speak_again(out)) == set()  # nothing to redo: the override still applies
    assert by_id(out)["2.2"]["text"] == EDITED
    queue_redo(job_folder(out), "2.2", "ann", text="The pane shook.")  # edited again: still of the same line
    with JobStore.open(job_folder(out)) as store:
        assert [o.original for o in store.text_overrides()] == ["The glass shook in its frame."]
        store.dequeue([(2, 2)])
    queue_redo(job_folder(out), "2.2", "ann", text=EDITED)
    edited = speak_again(out, lambda text: text.replace("shook in", "trembled in"))
    assert spoken(edited) == {"The glass trembled in its frame."}
    assert by_id(out)["2.2"]["orig"] is None


def test_redo_queued_through_the_cli(tiny_models, tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("The tide came in.\n\nThe gulls cried.\n")
    out = tmp_path / "out"
    models = ["--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2), "--device", "cpu"]
    assert main(["synth", str(book), "-o", str(out), *models, "--top-p", "1.0", "--no-verify", "--quiet"]) == 0
    assert main(["redo", str(out), "--queued"]) == 0  # nothing queued: nothing to do
    wav = next(out.glob("*.wav"))
    original = wav.read_bytes()
    queue_redo(job_folder(out), "1.1", "ann", text="The gulls cried out loud.")
    assert main(["redo", str(out), "--queued"]) == 0
    assert wav.read_bytes() != original
    with JobStore.open(job_folder(out)) as store:
        texts = [p.text for p in store.plan_records()]
        assert texts == ["The tide came in.", "The gulls cried out loud."] and store.redo_queue() == []
        assert all(p.record.status == "done" for p in store.plan_records())
    assert np.isfinite(sf.read(wav)[0]).all()
    assert by_id(out)["1.1"]["prev"] is not None
