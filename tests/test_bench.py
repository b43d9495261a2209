"""scripts/bench.py: runs end to end on the tiny models and reports both sides on equal work.

No speed is asserted (the CI machine is shared and noisy): only the report's shape, that the
baseline and the engine generated the same number of tokens, and that verification was timed
(one call per segment on the baseline, one per batch on the engine) or, with --no-verify, not."""

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
    "verify_seconds",
    "tokens",
    "tokens_generated",
    "audio_seconds",
    "real_time_factor",
    "tokens_per_second",
    "lm_share",
    "codec_share",
    "verify_share",
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
    "verify",
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


def _bench_command(*args: str) -> list[str]:
    command = [sys.executable, str(SCRIPT), "--size", "tiny", "--json", "--device", "cpu"]
    return command + ["--min-seconds", "0.2", "--max-seconds", "0.6", *args]


def _run_together(*commands: list[str]) -> list[dict]:
    """Run the bench commands side by side (one core each) and parse each one's JSON report."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        for c in commands
    ]
    reports = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=SUBPROCESS_TIMEOUT_S)
        assert run.returncode == 0, stderr[-3000:]
        reports.append(json.loads(stdout))  # stdout is exactly one JSON object
    return reports


@pytest.mark.slow
def test_tiny_bench_reports_both_sides_on_the_same_tokens() -> None:
    verified, unverified = _run_together(
        _bench_command("--segments", "3", "--beam", "2", "--beam-segments", "0"),
        _bench_command("--segments", "1", "--beam", "0", "--no-verify"),
    )
    report = verified
    assert report.keys() >= REPORT_KEYS
    assert report["size"] == "tiny" and report["device"] == "cpu" and report["segments"] == 3
    for side in ("baseline", "engine"):
        assert report[side].keys() >= SIDE_KEYS
        assert report[side]["seconds"] > 0 and report[side]["peak_memory_bytes"] > 0
        shares = report[side]["lm_share"] + report[side]["codec_share"] + report[side]["verify_share"]
        assert shares == pytest.approx(1.0)
    expected = sum(round(s * 50) for s in (0.2, 0.4, 0.6))
    assert report["baseline"]["tokens"] == report["engine"]["tokens"] == expected
    assert report["tokens_match"] is True
    assert report["audio_seconds"] == pytest.approx(expected / 50)
    assert report["throughput_ratio"] > 0
    _check_verified(report)
    _check_beam(report, expected)
    _check_unverified(unverified)


def _check_verified(report: dict) -> None:
    verify = report["verify"]
    assert verify["enabled"] is True
    assert verify["asr_parameters"] > 0 and verify["speaker_parameters"] > 0 and verify["asr_decoder_steps"] > 0
    for side in ("baseline", "engine"):
        assert report[side]["verify_seconds"] > 0 and report[side]["verify_share"] > 0
        assert report[side]["extra"]["verified"] == 3
    # The baseline verifies each segment alone; the engine its one batch in one call.
    assert report["baseline"]["extra"]["verify_calls"] == 3
    assert report["engine"]["extra"]["verify_calls"] == 1


def _check_beam(report: dict, expected: int) -> None:
    beam = report["beam"]
    if not beam["measured"]:
        assert "not yet measured" in beam["reason"]
        return
    assert beam["beam"] == 2 and beam["segments"] == 3 and beam["cost_ratio"] > 0
    assert beam["beam_1"]["tokens"] == expected
    assert beam["beam_n"]["tokens_generated"] > beam["beam_1"]["tokens_generated"]
    assert "make_scorers" in beam["scorers"]
    assert beam["beam_1"]["verify_seconds"] > 0  # the chosen results are verified, as the pipeline does
    assert "scorer_seconds" not in beam["beam_1"]["extra"]  # --beam 1 runs no scorer
    wide = beam["beam_n"]
    assert wide["extra"]["scorer_seconds"] > 0 and wide["extra"]["scorer_codec_seconds"] > 0
    assert wide["verify_seconds"] > beam["beam_1"]["verify_seconds"]
    assert wide["lm_seconds"] > 0


def _check_unverified(report: dict) -> None:
    assert report["verify"] == {"enabled": False}
    assert report["beam"]["measured"] is False
    for side in ("baseline", "engine"):
        assert report[side]["verify_seconds"] == 0 and report[side]["verify_share"] == 0
        assert "verify_calls" not in report[side]["extra"]
        assert report[side]["lm_share"] + report[side]["codec_share"] == pytest.approx(1.0)
    assert report["baseline"]["tokens"] == report["engine"]["tokens"] == 30


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


def test_whisper_transcripts_are_capped_at_the_longest_segment() -> None:
    _bench_module()
    from bench_models import WHISPER_TURBO, whisper_text_ctx

    # 12 s at 3.75 tokens a second: 45 tokens + the end token = 46 decoder steps = n_text_ctx // 2.
    assert whisper_text_ctx(448, 12.0, 3.75) == 92
    assert whisper_text_ctx(448, 0.2, 3.75) == 10  # never under the 4-token prompt
    assert whisper_text_ctx(448, 1000.0, 3.75) == 448  # never over the model's own context
    assert whisper_text_ctx(WHISPER_TURBO["n_text_ctx"], 12.0, 0) == 448  # 0: Whisper's own cap


def test_scorer_time_moves_from_lm_to_codec_and_verify() -> None:
    bench = _bench_module()

    class Fake:
        codec_seconds = 0.0

        def score(self, items):
            self.codec_seconds += 0.25
            return [0.5] * len(items)

    scorer = bench.TimedScorer(Fake())
    assert scorer.score([1, 2]) == [0.5, 0.5]
    scorer.seconds = 1.0  # as if the call took a second, 0.25 s of it decoding
    assert scorer.codec_seconds == 0.25
    side = bench.Side("x", lm_seconds=3.0)
    bench.book_scorers(side, [scorer], verified=True)
    assert (side.lm_seconds, side.codec_seconds, side.verify_seconds, side.other_seconds) == (2.0, 0.25, 0.75, 0.0)
    unverified = bench.Side("y", lm_seconds=3.0)
    bench.book_scorers(unverified, [scorer], verified=False)
    assert (unverified.verify_seconds, unverified.other_seconds) == (0.0, 0.75)
    assert side.seconds == unverified.seconds == 3.0


def test_decode_step_bench_times_each_cache_and_checks_their_codes_agree(capsys) -> None:
    spec = importlib.util.spec_from_file_location("llasa_bench_step", ROOT / "scripts" / "bench_decode_step.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--size", "tiny", "--device", "cpu", "--batch-sizes", "1,3", "--steps", "4", "--prompt-tokens", "60"]
    assert module.main([*args, "--modes", "dynamic,static", "--json"]) == 0  # torch.compile is left to the GPU run
    results = json.loads(capsys.readouterr().out)
    assert [(r["mode"], r["rows"]) for r in results] == [("dynamic", 1), ("static", 1), ("dynamic", 3), ("static", 3)]
    # Fed the same codes, the caches compute the same logits (a real check: a cache that dropped or
    # misplaced a key would be off by far more than float rounding).
    assert all(r["same_logits"] and r["max_logit_gap"] <= module.LOGIT_TOLERANCE["float32"] for r in results)
    assert all(r["ms_per_step"] > 0 for r in results)
    with pytest.raises(SystemExit):
        module.parse_args(["--modes", "static"])  # the reference mode comes first
