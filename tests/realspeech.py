"""Shared by the real-speech tests: `scripts/verifier_table.py` (its cases and espeak-ng helper), loaded once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_NAME = "llasa_verifier_table"


def _table_script():
    if MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, ROOT / "scripts" / "verifier_table.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[MODULE_NAME]


TABLE = _table_script()
REAL_SPEECH_MISSING = TABLE.missing_tools()
