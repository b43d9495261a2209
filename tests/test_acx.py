"""ACX checks and mastering on synthetic audio, and `llasa check`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from llasa_cli.audio.acx import (
    MASTER_LEAD_S,
    MASTER_TAIL_S,
    acx_master,
    check_acx,
    from_db,
    noise_floor_db,
    running_min,
)
from llasa_cli.cli import check as cli_check

SR = 16_000


def speechlike(seconds: float = 12.0, level: float = 0.1, noise_db: float | None = None, seed: int = 0) -> np.ndarray:
    """Tone bursts with a syllable-rate envelope and pauses between 'words'; optional constant noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    words = (np.sin(2 * np.pi * 0.6 * t) > -0.2).astype(np.float64)
    syllables = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 3.0 * t))
    voice = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t) + 0.2 * rng.standard_normal(len(t))
    audio = level * voice * syllables * words
    if noise_db is not None:
        audio = audio + from_db(noise_db) * rng.standard_normal(len(t))
    return audio.astype(np.float32)


def with_room_tone(audio: np.ndarray, lead: float = 0.7, tail: float = 2.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead * SR), np.float32), audio, np.zeros(int(tail * SR), np.float32)])


@pytest.mark.parametrize(
    "audio",
    [
        speechlike(level=0.005),  # far too quiet
        np.clip(speechlike(level=3.0), -1, 1),  # clipping
        speechlike(noise_db=-45.0, seed=1),  # noisy, no room tone at all
        np.concatenate([np.zeros(5 * SR, np.float32), speechlike(), np.zeros(SR // 5, np.float32)]),  # bad room tone
    ],
    ids=["quiet", "clipping", "noisy", "room-tone"],
)
def test_mastered_audio_passes(audio):
    before = check_acx(audio, SR)
    assert not before.passed
    mastered = acx_master(audio, SR)
    report = check_acx(mastered, SR)
    assert report.passed, report.to_dict()
    assert -20.5 < report.rms_db < -19.5 and report.peak_db <= -3.49
    assert abs(report.leading_silence_s - MASTER_LEAD_S) < 0.05
    assert abs(report.trailing_silence_s - MASTER_TAIL_S) < 0.05


def test_each_rule_fails_on_its_own_fault():
    good = with_room_tone(speechlike())
    scale = from_db(-20.0) / np.sqrt(np.mean(good.astype(np.float64) ** 2))
    good = (good * scale).astype(np.float32)
    assert check_acx(good, SR).passed, check_acx(good, SR).to_dict()
    assert check_acx(good * from_db(-12.0), SR).failures == ("rms",)
    clipped = good.copy()
    clipped[SR * 3 : SR * 3 + 10] = 1.0
    assert check_acx(clipped, SR).failures == ("peak",)
    noisy = good + from_db(-50.0) * np.random.default_rng(2).standard_normal(len(good)).astype(np.float32)
    report = check_acx(noisy, SR)
    assert "noise_floor" in report.failures and report.noise_floor_db == pytest.approx(-50.0, abs=1.0)
    assert check_acx(with_room_tone(good[int(0.7 * SR) :], lead=0.1), SR).failures == ("room_tone_start",)
    assert check_acx(with_room_tone(good[int(0.7 * SR) : -2 * SR], tail=8.0), SR).failures == ("room_tone_end",)


def test_noise_floor_is_the_quietest_half_second():
    audio = np.full(3 * SR, 0.1, np.float32)
    audio[SR : SR + SR // 2] = 0.001
    assert noise_floor_db(audio, SR) == pytest.approx(-60.0, abs=0.5)
    assert noise_floor_db(np.zeros(SR, np.float32), SR) == float("-inf")


def test_running_min_matches_brute_force():
    values = np.random.default_rng(3).random(500)
    for half in (1, 4, 9):
        expected = [values[max(0, i - half) : i + half + 1].min() for i in range(len(values))]
        assert np.allclose(running_min(values, half), expected)


def test_silence_masters_to_room_tone_only():
    out = acx_master(np.zeros(SR, np.float32), SR)
    assert len(out) == round((MASTER_LEAD_S + MASTER_TAIL_S) * SR) and not np.any(out)
    assert "rms" in check_acx(out, SR).failures
    assert check_acx(np.zeros(0, np.float32), SR).to_dict()["passed"] is False


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so the command is invoked by name as in `llasa check`
        pass

    cli_check.register(app)
    return app


def test_check_command_table_json_and_exit_codes(tmp_path):
    good = acx_master(speechlike(), SR)
    sf.write(tmp_path / "01-good.wav", good, SR, subtype="PCM_16")
    sf.write(tmp_path / "02-quiet.flac", good * from_db(-15.0), SR, subtype="PCM_16")
    (tmp_path / "notes.txt").write_text("not audio")
    runner = CliRunner()
    result = runner.invoke(_app(), ["check", str(tmp_path), "--json"])
    assert result.exit_code == cli_check.EXIT_CHECK_FAILED
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["file"], row["passed"]) for row in rows] == [("01-good.wav", True), ("02-quiet.flac", False)]
    assert rows[1]["failures"] == ["rms"]
    (tmp_path / "02-quiet.flac").unlink()
    table = runner.invoke(_app(), ["check", str(tmp_path)])
    assert table.exit_code == 0 and "PASS" in table.stdout
    (tmp_path / "03-broken.mp3").write_bytes(b"not really audio")
    broken = runner.invoke(_app(), ["check", str(tmp_path), "--json"])
    assert broken.exit_code == cli_check.EXIT_CHECK_FAILED and "error" in broken.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(_app(), ["check", str(empty)]).exit_code != 0


def test_check_table_keeps_whole_file_names_in_80_columns(tmp_path):
    """Chapter files share long prefixes; a name cut to fit must never make two rows look alike."""
    import subprocess
    import sys
    from pathlib import Path

    good = acx_master(speechlike(), SR)
    stem = "the-keeper-of-the-lighthouse-and-the-long"
    names = [f"01-{stem}-winter.wav", f"02-{stem}-summer.wav"]
    for name in names:
        sf.write(tmp_path / name, good, SR, subtype="PCM_16")
    llasa = Path(sys.executable).with_name("llasa")
    if not llasa.exists():
        pytest.skip("the llasa entry point is not installed next to this Python")
    result = subprocess.run([str(llasa), "check", str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    file_column = "".join(line[: lines[2].index("length")].strip() for line in lines[4:])
    assert file_column == "".join(names)
    assert "…" not in result.stdout
