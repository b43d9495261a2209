"""The layering contracts of pyproject.toml hold, and they catch what they are for: run on a copy
of the package with one forbidden import added, `lint-imports` names the broken contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` (all contracts, or those ids) on the package at `root`: a copy of the
    repository's package and pyproject.toml."""
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.skip("import-linter is not installed next to this Python")
    env = {**os.environ, "PYTHONPATH": str(root)}
    chosen = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(script), "--no-cache", *chosen], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "llasa_cli", tmp_path / "llasa_cli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_line(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_on_the_package_as_it_is(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("text/plan.py", "import torch", "no-torch"),  # directly
        ("search/scorers.py", "from ..verify.composite import CompositeVerifier", "no-torch"),  # through Whisper
        ("cli/split.py", "from ..text import build_plan", "thin-cli"),
        ("text/planner.py", "from ..pipeline import synthesize", "layers"),
        ("options.py", "from .text import Plan", "shared"),
        ("engine/oom.py", "from .loading import SpeechModels", "acyclic"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = copy_of_the_package(tmp_path)  # which keeps every contract: the test above
    add_line(root / "llasa_cli" / module, line)
    broken = lint_imports(root, contract)
    assert broken.returncode != 0
    assert "0 kept, 1 broken" in broken.stdout, broken.stdout
