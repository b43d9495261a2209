"""Running the installed `llasa` command on job folders, as a user would, and looking at what it left.

Shared by the tests of job folders (test_job_folder.py), the m4b's life cycle (test_m4b_lifecycle.py)
and retired outputs (test_outputs.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

LLASA = Path(sys.executable).with_name("llasa")
RUN_TIMEOUT_S = 300


def llasa(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`llasa ARGS` in a subprocess (offline, one thread), its output captured."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(LLASA), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=RUN_TIMEOUT_S)


def model_args(tiny_models: Any) -> list[str]:
    """The flags that make `synth` run on the tiny models, on the CPU, without verification."""
    return ["--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2), "--device", "cpu",
            "--top-p", "1.0", "--no-verify"]  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def events(result: subprocess.CompletedProcess[str], kind: str) -> list[dict[str, Any]]:
    """The `--json` events of one kind a run printed."""
    parsed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [event for event in parsed if event["event"] == kind]


def file_states(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder` (hidden ones too): relative name -> (SHA-256, mtime in ns)."""
    return {
        path.relative_to(folder).as_posix(): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
