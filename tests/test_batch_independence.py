"""A segment's codes do not depend on --batch-size (on the CPU), through the installed `llasa` command.

A segment's key leaves the batch size out, so a run resumed (or a cron run started) with another
batch size must store the codes the first run would have: every segment of the book, spoken at
batch sizes 1, 2 and 5, has the same stored codes. (Before the generator computed each row as it
would alone, segment 2.1 here changed at batch size 5 after 150 codes.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME

from .test_cli import installed_llasa

# Segments of varied lengths (one word to a long sentence), so batches mix short and long prompts:
# rows are padded to the longest and leave the batch at different steps.
BOOK = """Chapter One

Yes. The keeper climbed the stairs at dusk, slowly, one worn step after another.

He lit the lamp. Rain came in sideways off the sea.

Chapter Two

No. A boat lay on the rocks, empty, its oars gone and its rope trailing in the surf.

Then morning.
"""


def stored_codes(out: Path) -> dict[tuple[int, int], np.ndarray]:
    with JobStore.open(out / WORK_DIR_NAME) as store:
        records = store.plan_records()
        codes = {(r.chapter, r.index): store.codes(r.record.key) for r in records}
    assert all(c is not None for c in codes.values()), "every segment is finished"
    return codes  # type: ignore[return-value]


@pytest.mark.slow
def test_every_segment_has_the_same_codes_at_batch_sizes_1_2_and_5(tmp_path: Path, tiny_models) -> None:
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    codes = {}
    for size in (1, 2, 5):
        out = tmp_path / f"batch-{size}"
        args = [
            installed_llasa(), "synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa),
            "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--no-verify", "--quiet",
            "--max-segment-seconds", "4", "--batch-size", str(size),
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, timeout=600)  # conftest: offline, 1 thread
        assert result.returncode == 0, result.stderr
        codes[size] = stored_codes(out)
    positions = sorted(codes[1])
    assert len(positions) >= 8
    lengths = {len(c) for c in codes[1].values()}
    assert len(lengths) >= 3, f"segments of varied lengths, not {sorted(lengths)}"
    for size in (2, 5):
        assert sorted(codes[size]) == positions
        differing = [p for p in positions if not np.array_equal(codes[1][p], codes[size][p])]
        assert not differing, f"batch size {size} changed the codes of segments {differing}"
