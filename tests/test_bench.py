"""scripts/bench.py: runs end to end on the tiny models and reports both sides on equal work.

No speed is asserted (the CI machine is shared and noisy): only the report's shape and that
the baseline and the engine generated the same number of tokens."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "bench.py"
SIDE_KEYS = {
    "name",
    "seconds",
    "lm_seconds",
    "codec_seconds",
    "tokens",
    "tokens_generated",
    "audio_seconds",
    "real_time_factor",
    "tokens_per_second",
    "lm_share",
    "codec_share",
    "peak_memory_bytes",
    "peak_memory_kind",
}
REPORT_KEYS = {
    "size",
    "device",
    "dtype",
    "threads",
    "segments",
    "batch_size",
    "audio_seconds",
    "baseline",
    "engine",
    "tokens_match",
    "throughput_ratio",
    "beam",
}
SUBPROCESS_TIMEOUT_S = 300


def _bench_module():
    spec = importlib.util.spec_from_file_location("llasa_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_bench_reports_both_sides_on_the_same_tokens() -> None:
    command = [sys.executable, str(SCRIPT), "--size", "tiny", "--segments", "3", "--json", "--device", "cpu"]
    command += ["--min-seconds", "0.2", "--max-seconds", "0.6", "--beam", "2", "--beam-segments", "0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert report.keys() >= REPORT_KEYS
    assert report["size"] == "tiny" and report["device"] == "cpu" and report["segments"] == 3
    for side in ("baseline", "engine"):
        assert report[side].keys() >= SIDE_KEYS
        assert report[side]["seconds"] > 0 and report[side]["peak_memory_bytes"] > 0
        assert report[side]["lm_share"] + report[side]["codec_share"] == pytest.approx(1.0)
    expected = sum(round(s * 50) for s in (0.2, 0.4, 0.6))
    assert report["baseline"]["tokens"] == report["engine"]["tokens"] == expected
    assert report["tokens_match"] is True
    assert report["audio_seconds"] == pytest.approx(expected / 50)
    assert report["throughput_ratio"] > 0
    beam = report["beam"]
    if beam["measured"]:
        assert beam["beam"] == 2 and beam["segments"] == 3 and beam["cost_ratio"] > 0
        assert beam["beam_1"]["tokens"] == expected
        assert beam["beam_n"]["tokens_generated"] > beam["beam_1"]["tokens_generated"]
    else:
        assert "not yet measured" in beam["reason"]


def test_segments_spread_over_the_asked_lengths() -> None:
    bench = _bench_module()
    requests = bench.make_segments(5, 3.0, 12.0, seed=7)
    assert sorted(r.max_new_tokens for r in requests) == [150, 262, 375, 488, 600]
    assert [r.max_new_tokens for r in requests] != sorted(r.max_new_tokens for r in requests)  # book order, not sorted
    assert len({r.seed for r in requests}) == 5 and all(r.text for r in requests)
    assert bench.make_segments(5, 3.0, 12.0, seed=7) == requests
    assert [r.max_new_tokens for r in bench.make_segments(1, 2.0, 4.0, seed=1)] == [200]


def test_engine_batches_are_sorted_by_length() -> None:
    bench = _bench_module()
    requests = bench.make_segments(7, 1.0, 7.0, seed=3)
    batches = bench._batches(requests, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    lengths = [r.max_new_tokens for b in batches for r in b]
    assert lengths == sorted(lengths)


def test_baseline_folds_text_ids_into_codes() -> None:
    bench = _bench_module()

    class Vocab:
        id_to_code = np.array([-1, -1, 0, 1, 2], dtype=np.int64)  # ids 2..4 are speech codes 0..2

    codes = bench._speech_codes(np.array([2, 4, 1, 70_000]), Vocab())
    assert codes.tolist() == [0, 2, 1, 70_000 % 65_536]
