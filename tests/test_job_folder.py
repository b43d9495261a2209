"""A job folder through the `llasa` command: it moves with its output folder, and commands that
only read it work where it cannot be written, and fail in one line where it is damaged."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.job.records import PlanRow
from llasa_cli.job.schema import DB_NAME
from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME

from .job_cli import LLASA, file_states, llasa, model_args, ok, sha256

BOOK = """Chapter One

The tide came in.

Chapter Two

She lit the lamp. The wind rose.
"""


def test_a_copied_job_is_stitched_and_redone_where_it_is_and_the_original_is_left_alone(tmp_path, tiny_models):
    first = tmp_path / "first"
    first.mkdir()
    (first / "book.txt").write_text(BOOK)
    ok(llasa("synth", "book.txt", "-o", "out", *model_args(tiny_models), "--quiet", cwd=first))  # paths as typed
    original = first / "out"
    before = file_states(original)
    copy = tmp_path / "shelf" / "copy"
    shutil.copytree(original, copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = os.path.relpath(copy, elsewhere)

    (copy / "02-chapter-two.wav").unlink()
    stitched = ok(llasa("stitch", target, cwd=elsewhere))
    assert str(copy / "02-chapter-two.wav") in stitched.stdout
    assert sha256(copy / "02-chapter-two.wav") == sha256(original / "02-chapter-two.wav")

    ok(llasa("redo", target, "--segment", "2.1", cwd=elsewhere))
    assert sha256(copy / "01-chapter-one.wav") == sha256(original / "01-chapter-one.wav")
    assert sha256(copy / "02-chapter-two.wav") != sha256(original / "02-chapter-two.wav")
    with JobStore.open(copy / WORK_DIR_NAME) as store:
        keys = _keys(store)
        assert store.takes([keys["1.1"], keys["2.1"]]) == {keys["1.1"]: 0, keys["2.1"]: 1}
    assert sorted(os.listdir(elsewhere)) == []  # nothing written where the command ran
    assert file_states(original) == before  # not a byte, not a timestamp


def _keys(store: JobStore) -> dict[str, str]:
    return {f"{p.chapter}.{p.index}": p.record.key for p in store.plan_records()}


def _small_job(out: Path) -> None:
    """A job store with two finished segments, made without a model (status and report read only it)."""
    with JobStore.open(out / WORK_DIR_NAME) as store:
        store.sync_plan([PlanRow("a", 1, 0, "The tide came in.", 1.0), PlanRow("b", 1, 1, "It rose.", 1.0)])
        for key in ("a", "b"):
            store.record_done(key, np.arange(50), attempts=1, scores={}, timings={"seconds": 1.0}, hit_cap=False,
                              worker="w")  # fmt: skip


def _read_only_mount(folder: Path, *command: str | Path) -> list[str]:
    """`command` run where `folder` is mounted read-only (a private mount namespace, so any user may)."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(folder), *map(str, command)]


def test_status_and_report_work_in_a_read_only_job_folder(tmp_path):
    out = tmp_path / "out"
    _small_job(out)
    probe = subprocess.run(_read_only_mount(out, "touch", out / "probe"), capture_output=True, text=True)
    if probe.returncode == 0 or "Read-only file system" not in probe.stderr:
        pytest.skip(f"no read-only mount here (unshare: {probe.stderr.strip()[:80]})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    status = subprocess.run(_read_only_mount(out, LLASA, "status", out, "--json"), capture_output=True, text=True,
                            env=env)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["done"] == 2
    report = subprocess.run(_read_only_mount(out, LLASA, "report", out, "--json"), capture_output=True, text=True,
                            env=env)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["segments_done"] == 2


NOT_UTF8 = "UPDATE positions SET text = CAST(X'9AFF00' AS TEXT)"
JSON_CUT_SHORT = "INSERT INTO job VALUES (1, 'f', '{\"request\": ', 'm', 'c', 0, 0)"
SCHEMA_NOT_UTF8 = (
    "PRAGMA writable_schema = ON; UPDATE sqlite_master SET name = CAST(X'9AFF' AS TEXT) WHERE name = 'voice'"
)


@pytest.mark.parametrize(
    ("damage", "commands"),
    [(NOT_UTF8, ["report"]), (JSON_CUT_SHORT, ["report", "stitch", "redo"]), (SCHEMA_NOT_UTF8, ["report", "status"])],
)
def test_a_damaged_job_database_is_one_line_and_exit_32_for_every_command(tmp_path, damage, commands):
    out = tmp_path / "out"
    _small_job(out)
    raw = sqlite3.connect(out / WORK_DIR_NAME / DB_NAME)
    raw.executescript(damage)
    raw.close()
    for command in commands:
        extra = ["--segment", "1.0"] if command == "redo" else []
        result = llasa(command, out, *extra)
        assert result.returncode == 32, (command, result.stderr)
        assert result.stderr.startswith("llasa: error:") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
