"""Export: every format round-trips, resampling, atomic writes and the errors a user meets."""

from __future__ import annotations

import errno
import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.audio import export
from llasa_cli.audio.audio_io import FFMPEG_FILE_PROTOCOL, find_ffmpeg
from llasa_cli.audio.export import atomic_write_bytes, export_audio
from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.errors import ExportError, OutputError

SR = SAMPLE_RATE
DURATION_TOLERANCE_S = 0.005
PCM16_STEP = 1.0 / 32768


def tone(seconds: float = 1.25, freq: float = 440.0, sr: int = SR, level: float = 0.4) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode any file with ffmpeg (independent of the code under test's reader)."""
    cmd = [find_ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "wav", "-c:a", "pcm_f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return data, rate


def dominant_frequency(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sr / len(audio))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_lossless_round_trip(tmp_path: Path, fmt: str) -> None:
    audio = tone()
    audio[:10] = [1.5, -1.5, np.nan, 0, 0, 0, 0, 0, 0, 0]  # out-of-range and NaN are clipped/zeroed
    out = export_audio(audio, SR, tmp_path / f"ch.{fmt}", fmt, SR)
    assert out == tmp_path / f"ch.{fmt}"
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    data, _ = sf.read(str(out), dtype="float32")
    expected = np.clip(np.nan_to_num(audio), -1.0, 1.0)
    assert np.max(np.abs(data - expected)) <= PCM16_STEP * 1.01
    assert leftovers(tmp_path) == [f"ch.{fmt}"]


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", SR), ("mp3", 44_100), ("opus", SR), ("opus", 48_000)])
def test_lossy_round_trip_keeps_duration(tmp_path: Path, fmt: str, rate: int) -> None:
    audio = tone(1.3)
    out = export_audio(audio, SR, tmp_path / f"ch.{fmt}", fmt, rate)
    data, decoded_rate = decode(out)
    assert abs(len(data) / decoded_rate - len(audio) / SR) < DURATION_TOLERANCE_S
    assert dominant_frequency(data, decoded_rate) == pytest.approx(440.0, abs=5.0)
    assert leftovers(tmp_path) == [f"ch.{fmt}"]


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_resamples_to_requested_rate(tmp_path: Path, rate: int) -> None:
    audio = tone(1.0, freq=1000.0)
    out = export_audio(audio, SR, tmp_path / "ch.wav", "wav", rate)
    data, got_rate = sf.read(str(out), dtype="float32")
    assert got_rate == rate
    assert abs(len(data) - rate) <= 1
    assert dominant_frequency(data, rate) == pytest.approx(1000.0, abs=3.0)


def test_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "ch.wav"
    target.write_bytes(b"old")
    export_audio(tone(), SR, target, "wav", SR)
    assert sf.info(str(target)).frames == len(tone())


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="aiff"):
        export_audio(tone(), SR, tmp_path / "x.aiff", "aiff", SR)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        export_audio(tone(), SR, tmp_path / "nope" / "x.wav", "wav", SR)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_real(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=str(folder / "x.flac")):
            export_audio(tone(), SR, folder / "x.flac", "flac", SR)
        assert leftovers(folder) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(("code", "words"), [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied")])
def test_read_only_folder_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(export, "_create_temp", refuse)
    for fmt in ("wav", "mp3"):
        with pytest.raises(OutputError, match=words) as info:
            export_audio(tone(), SR, tmp_path / f"x.{fmt}", fmt, SR)
        assert str(tmp_path / f"x.{fmt}") in str(info.value)
    assert leftovers(tmp_path) == []


def test_disk_full_leaves_nothing_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ch.wav"
    target.write_bytes(b"previous complete file")

    def half_then_full(handle: io.BufferedWriter, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export, "_write_all", half_then_full)
    with pytest.raises(OutputError, match="disk full") as info:
        export_audio(tone(), SR, target, "wav", SR)
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    assert leftovers(tmp_path) == ["ch.wav"]
    assert target.read_bytes() == b"previous complete file"


def test_disk_full_in_ffmpeg_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ffmpeg_runs_out_of_space(cmd: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        Path(cmd[-1].removeprefix(FFMPEG_FILE_PROTOCOL)).write_bytes(b"partial mp3")
        stderr = b"frame stats...\n[out#0/mp3] Error writing trailer: No space left on device\n"
        return subprocess.CompletedProcess(cmd, 1, b"", stderr)

    monkeypatch.setattr(export, "_run_ffmpeg", ffmpeg_runs_out_of_space)
    with pytest.raises(OutputError, match="disk full"):
        export_audio(tone(), SR, tmp_path / "ch.mp3", "mp3", SR)
    assert leftovers(tmp_path) == []


def test_ffmpeg_failure_reports_its_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cmd: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(cmd, 1, b"", b"noise\nUnknown encoder 'libopus'\n")

    monkeypatch.setattr(export, "_run_ffmpeg", broken)
    with pytest.raises(ExportError, match="Unknown encoder 'libopus'"):
        export_audio(tone(), SR, tmp_path / "ch.opus", "opus", SR)
    assert leftovers(tmp_path) == []


def test_no_ffmpeg_is_an_export_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    def missing() -> str:
        raise RuntimeError("no ffmpeg exe")

    monkeypatch.setattr("llasa_cli.audio.audio_io.shutil.which", lambda name: None)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(ExportError, match="ffmpeg not found"):
        export_audio(tone(), SR, tmp_path / "ch.mp3", "mp3", SR)
    assert leftovers(tmp_path) == []


def test_files_get_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    out = export_audio(tone(), SR, tmp_path / "ch.flac", "flac", SR)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("name", ["http:ch.mp3", "concat:a.mp3|b.mp3"])
def test_an_output_named_like_an_ffmpeg_protocol_is_written_as_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative name, as a chapter file in `-o .` would be
    written = export_audio(tone(), SR, Path(name), "mp3", SR)
    assert (tmp_path / name).is_file() and written == Path(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_atomic_write_bytes(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"abc")
    atomic_write_bytes(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert leftovers(tmp_path) == ["data.bin"]
    with pytest.raises(OutputError, match="folder"):
        atomic_write_bytes(tmp_path, b"x")
