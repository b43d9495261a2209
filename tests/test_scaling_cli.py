"""`llasa scaling` through the installed command, on the tiny random models: it writes scaling.json and
a PNG with the axes the JSON names, says the curve is flat (random verifiers tell nothing apart), and
refuses a bad --n in one line."""

from __future__ import annotations

import json

import pytest

from tests.job_cli import llasa

matplotlib_image = pytest.importorskip("matplotlib.image", reason="llasa scaling draws with matplotlib")

BOOK = "The tide came in. Gulls cried over the harbour.\n\nShe lit the lamp and waited.\n\nA boat lay on the rocks.\n"


def tiny_args(tiny_models) -> list[str]:
    return ["--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--top-p", "1.0",
            "--asr-model", str(tiny_models.whisper), "--speaker-model", str(tiny_models.wavlm)]  # fmt: skip


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(BOOK)
    return path


@pytest.mark.slow
def test_scaling_on_the_tiny_models_writes_json_and_plot_and_says_the_curve_is_flat(tmp_path, tiny_models, book):
    if tiny_models.whisper is None:
        pytest.skip("openai-whisper is not installed")
    out = tmp_path / "study"
    result = llasa("scaling", book, "-o", out, "--sample", "2", "--n", "1,2", *tiny_args(tiny_models))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "scaling.json").read_text())
    assert [s["label"] for s in report["settings"]] == ["plain", "beam 2", "best-of 2"]
    assert len(report["segments"]) == 2
    for setting in report["settings"]:
        assert len(setting["segments"]) == 2 and setting["lm_tokens"] > 0 and setting["rtf"] > 0
        assert {"mean_wer", "mean_similarity", "flagged_share", "codec_seconds", "verifier_seconds"} <= set(setting)
    by_label = {s["label"]: s for s in report["settings"]}
    # Beam 2 grows 2 x 2 continuations per step: about twice best-of 2's tokens, four times plain's.
    assert by_label["plain"]["lm_tokens"] < by_label["best-of 2"]["lm_tokens"] < by_label["beam 2"]["lm_tokens"]
    assert report["flat"] is True and report["recommended"] == "plain"
    assert "flat" in report["summary"] and "cannot tell these candidates apart" in report["summary"]
    plot = report["plot"]
    image = matplotlib_image.imread(out / plot["file"])
    assert image.shape[:2] == (plot["height"], plot["width"])
    assert plot["panels"] == ["mean verdict score", "mean WER", "mean speaker similarity"]
    assert plot["x"].startswith("real-time factor")
    # The table on standard output, one row per setting, and the recommendation with its reason.
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["setting", "score", "WER", "similarity"]
    assert [line.split()[0] for line in lines[1:4]] == ["plain", "beam", "best-of"]
    assert "the curve is flat" in result.stdout and "use plain" in result.stdout


@pytest.mark.slow
def test_scaling_json_prints_the_report_it_writes(tmp_path, tiny_models, book):
    if tiny_models.whisper is None:
        pytest.skip("openai-whisper is not installed")
    out = tmp_path / "study"
    result = llasa("scaling", book, "-o", out, "--sample", "1", "--n", "1", "--json", *tiny_args(tiny_models))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((out / "scaling.json").read_text())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--n", "1,two"], "--n takes comma-separated whole numbers"),
        (["--n", "0,4"], "--n values must be between 1 and 64"),
        (["--n", "2,2"], "--n lists a number twice"),
        (["--mode", "sideways"], "--mode must be one of beam, best-of, both"),
        (["--sample", "0"], "--sample must be between 1"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, book, flags, message):
    result = llasa("scaling", book, "-o", tmp_path / "study", *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("llasa: error: ") and message in result.stderr
    assert not (tmp_path / "study").exists()
