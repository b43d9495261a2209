"""scripts/bench_workers.py: the job store's claim+record loop records every segment exactly once,
alone and with processes sharing the store (no speed is asserted: the machine is shared)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script():
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # spawned processes get this path too, and import the script by name
    return importlib.import_module("bench_workers")


def test_the_store_loop_records_each_segment_once_alone_and_shared() -> None:
    bench = load_script()
    for processes in (1, 2):
        rate = bench.store_rate(segments=120, batch=8, processes=processes)  # asserts all 120 recorded once
        assert rate["segments_per_second"] > 0


def test_the_book_has_a_segment_of_its_own_text_per_paragraph(tmp_path: Path) -> None:
    bench = load_script()
    book = tmp_path / "book.txt"
    bench.write_book(book, 12)
    paragraphs = book.read_text().strip().split("\n\n")
    assert len(paragraphs) == len(set(paragraphs)) == 12
