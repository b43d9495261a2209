"""A segment the model cannot speak at all is flagged loudly, through the installed `llasa` command.

A single 20,000-letter "word" cannot be split, and its prompt fills the model's whole context, so
no code fits after it. The run used to record it as done with 0 codes and exit 0; now it is
flagged with the reason, named in the output, and the run exits 4."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME
from llasa_cli.pipeline.renderer import PROMPT_TOO_LONG

from .test_cli import installed_llasa

EXIT_FLAGGED = 4


def test_a_word_longer_than_the_context_is_flagged_named_and_exits_4(tmp_path: Path, tiny_models) -> None:
    word = "".join(random.Random(14).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000))
    book = tmp_path / "book.txt"
    book.write_text(f"Chapter One\n\nA short line first.\n\n{word}\n\nAnd a line after.\n")
    out = tmp_path / "out"
    args = [
        installed_llasa(), "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa),
        "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--no-verify", "--json",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == EXIT_FLAGGED, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    segments = {e["id"]: e for e in events if e["event"] == "segment"}
    assert segments["1.2"]["codes"] == 0
    assert segments["1.2"]["flagged"] and segments["1.2"]["failures"] == [PROMPT_TOO_LONG]
    assert not any(e["flagged"] for sid, e in segments.items() if sid != "1.2")
    summary = events[-1]
    assert summary["event"] == "summary" and summary["segments_flagged"] == ["1.2"]
    with JobStore.open(out / WORK_DIR_NAME) as store:
        record = next(r.record for r in store.plan_records() if (r.chapter, r.index) == (1, 2))
    assert record.flagged and record.scores["failures"] == [PROMPT_TOO_LONG]
