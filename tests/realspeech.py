"""Shared by the real-speech tests: the scripts that make real speech, each loaded once.

`TABLE` is scripts/verifier_table.py (its cases and espeak-ng helper); `MATRIX` is
scripts/verification_matrix.py (sentences, defects, espeak-ng and sox helpers cached per session,
the confusion matrix); `SCALING_WORLD` is scripts/scaling_world.py (the known world's study: sentences,
the world with its real verifiers, what the chosen takes truly hold). `*_MISSING` says why they cannot
run here (None when they can)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, path: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


TABLE = _script("llasa_verifier_table", "verifier_table.py")
REAL_SPEECH_MISSING = TABLE.missing_tools()
MATRIX = _script("llasa_verification_matrix", "verification_matrix.py")
MATRIX_MISSING = MATRIX.missing_tools()
SCALING_WORLD = _script("llasa_scaling_world", "scaling_world.py")
SCALING_WORLD_MISSING = SCALING_WORLD.missing_tools()
