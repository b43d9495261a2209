"""`synth --beam` and `--best-of` end to end with the tiny real-architecture models on the CPU."""

from __future__ import annotations

import json

import pytest

from llasa_cli.cli.app import main
from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME

BOOK = "The tide came in. Gulls cried.\n\nShe lit the lamp.\n"


@pytest.mark.parametrize(("flag", "mode", "width"), [("--beam", "beam", 3), ("--best-of", "best_of", 3)])
def test_search_runs_and_the_job_keeps_its_statistics(tmp_path, tiny_models, capsys, flag, mode, width):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    args = [
        "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2),
        "--device", "cpu", "--top-p", "1.0", "--no-verify", "--no-chapters", flag, str(width), "--json",
    ]  # fmt: skip
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["status"] == "complete"
    with JobStore.open(out / WORK_DIR_NAME) as store:
        records = [p.record for p in store.plan_records()]
    assert records and all(r.status == "done" for r in records)
    for record in records:
        stats = record.timings["search"]
        assert stats["mode"] == mode and stats["width"] == width
        assert stats["tokens_generated"] >= record.n_codes
        assert stats["lm_forward_calls"] > 0 and stats["final_scorer_calls"] >= 1
        scorer_seconds = stats["partial_scorer_seconds"] + stats["final_scorer_seconds"]
        assert 0.0 < stats["codec_seconds"] <= scorer_seconds
        if mode == "beam":
            assert stats["partial_scorer_calls"] >= 1
    assert len(list(out.glob("*.wav"))) == 1
    # `report` adds up what the search cost, in JSON and in its text summary.
    assert main(["report", str(out), "--json"]) == 0
    search = json.loads(capsys.readouterr().out)["search"]
    assert search["segments_searched"] == len(records) and search["modes"] == [f"{mode} {width}"]
    assert search["tokens_generated"] == sum(r.timings["search"]["tokens_generated"] for r in records)
    assert main(["report", str(out)]) == 0
    assert f"search ({mode} {width}) on {len(records)} segments" in " ".join(capsys.readouterr().out.split())


def test_beam_and_best_of_together_are_refused(capsys, tmp_path):
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    assert main(["synth", str(book), "--beam", "2", "--best-of", "2", "--dry-run"]) == 2
    assert "--beam and --best-of" in capsys.readouterr().err
