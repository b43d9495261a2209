"""`llasa redo` and `llasa stitch` on a finished job, with the tiny real-architecture models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.cli.app import main
from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME

BOOK = """Chapter One

The tide came in.

Chapter Two

She lit the lamp. The wind rose.
"""


@pytest.fixture
def finished_job(tmp_path, tiny_models) -> Path:
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    out = tmp_path / "out"
    args = ["synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa), "--codec",
            str(tiny_models.xcodec2), "--device", "cpu", "--top-p", "1.0", "--no-verify", "--quiet"]  # fmt: skip
    assert main(args) == 0
    return out


def codes_by_position(out: Path) -> dict[tuple[int, int], np.ndarray]:
    with JobStore.open(out / WORK_DIR_NAME) as store:
        rows = store._conn.execute("SELECT chapter, idx, key FROM positions").fetchall()
        return {(c, i): store.codes(k) for c, i, k in rows}


def test_redo_one_segment_gives_it_a_new_take_and_rewrites_only_its_chapter(finished_job: Path):
    before = codes_by_position(finished_job)
    files = {p.name: p.read_bytes() for p in finished_job.glob("*.wav")}
    assert main(["redo", str(finished_job), "--segment", "2.1"]) == 0
    after = codes_by_position(finished_job)
    assert not np.array_equal(before[(2, 1)], after[(2, 1)])
    assert all(np.array_equal(before[p], after[p]) for p in before if p != (2, 1))
    assert (finished_job / "01-chapter-one.wav").read_bytes() == files["01-chapter-one.wav"]
    assert (finished_job / "02-chapter-two.wav").read_bytes() != files["02-chapter-two.wav"]


def test_redo_rejects_unknown_segments(finished_job: Path, capsys):
    assert main(["redo", str(finished_job), "--segment", "9.9"]) == 2
    assert "9.9" in capsys.readouterr().err


def test_stitch_rebuilds_chapters_from_stored_codes_without_the_language_model(finished_job: Path):
    originals = {p.name: p.read_bytes() for p in finished_job.glob("*.wav")}
    for path in finished_job.glob("*.wav"):
        path.unlink()
    code = (
        "import sys; from llasa_cli.cli import main; rc = main(['stitch', sys.argv[1]]);"
        "sys.exit(rc or (5 if 'llasa_cli.engine.generator' in sys.modules else 0))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code, str(finished_job)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in finished_job.glob("*.wav")} == originals
