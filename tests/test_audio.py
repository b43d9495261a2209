"""Reading audio of any common format as 16 kHz mono, ffmpeg discovery, WAV bytes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.audio import audio_io as audio_mod
from llasa_cli.audio.audio_io import find_ffmpeg, load_audio, write_wav_bytes
from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.errors import ExportError, VoiceError

SR = SAMPLE_RATE


def tone(seconds: float, sr: int, freq: float = 440.0, level: float = 0.5) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def dominant_frequency(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sr / len(audio))


def ffmpeg_encode(src: Path, dst: Path, *codec: str) -> Path:
    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", str(src), *codec, str(dst)], check=True)
    return dst


def test_stereo_44k_wav_becomes_16k_mono(tmp_path: Path) -> None:
    left, right = tone(2.0, 44_100, 440.0), tone(2.0, 44_100, 440.0, level=0.3)
    path = tmp_path / "clip.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 44_100)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 2 * SR) <= 1
    assert dominant_frequency(out, SR) == pytest.approx(440.0, abs=2.0)
    assert np.max(np.abs(out)) == pytest.approx(0.4, abs=0.02)  # average of 0.5 and 0.3


def test_16k_flac_is_read_unchanged(tmp_path: Path) -> None:
    audio = tone(1.0, SR)
    path = tmp_path / "clip.flac"
    sf.write(str(path), audio, SR, subtype="PCM_16")
    assert np.max(np.abs(load_audio(path) - audio)) < 1e-4


@pytest.mark.parametrize(("name", "codec"), [("clip.m4a", ("-c:a", "aac")), ("clip.mp3", ("-c:a", "libmp3lame"))])
def test_compressed_formats(tmp_path: Path, name: str, codec: tuple[str, ...]) -> None:
    wav = tmp_path / "src.wav"
    sf.write(str(wav), tone(1.5, 48_000), 48_000)
    out = load_audio(ffmpeg_encode(wav, tmp_path / name, *codec))
    assert abs(len(out) / SR - 1.5) < 0.05
    assert dominant_frequency(out, SR) == pytest.approx(440.0, abs=3.0)


def test_ffmpeg_fallback_is_used_when_soundfile_cannot_read(tmp_path: Path) -> None:
    wav = tmp_path / "src.wav"
    sf.write(str(wav), tone(1.0, 22_050), 22_050)
    m4a = ffmpeg_encode(wav, tmp_path / "clip.m4a", "-c:a", "aac")
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(m4a))
    assert abs(len(load_audio(m4a)) - SR) < 0.05 * SR


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="not found.*nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_folder_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="folder"):
        load_audio(tmp_path)


@pytest.mark.parametrize("content", [b"just some text, not audio\n" * 40, b"", b"RIFF\x00\x00"])
def test_non_audio_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.wav"
    path.write_bytes(content)
    with pytest.raises(VoiceError, match="notes.wav"):
        load_audio(path)


def test_empty_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(VoiceError, match="no audio.*empty.wav"):
        load_audio(path)


def test_unreadable_without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ffmpeg() -> str:
        raise ExportError("ffmpeg not found")

    monkeypatch.setattr(audio_mod, "find_ffmpeg", no_ffmpeg)
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(VoiceError, match="clip.m4a.*ffmpeg not found"):
        load_audio(path)


def test_write_wav_bytes_round_trip() -> None:
    audio = tone(0.5, SR)
    audio[0] = 3.0  # clipped, not wrapped
    data = write_wav_bytes(audio, SR)
    assert data[:4] == b"RIFF"
    back, rate = sf.read(io.BytesIO(data), dtype="float32")
    info = sf.info(io.BytesIO(data))
    assert (rate, info.subtype, len(back)) == (SR, "PCM_16", len(audio))
    assert back[0] == pytest.approx(1.0, abs=1e-4)
    assert np.max(np.abs(back[1:] - audio[1:])) < 1e-4


def test_find_ffmpeg_prefers_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_mod.shutil, "which", lambda name: "/opt/bin/ffmpeg")
    assert find_ffmpeg() == "/opt/bin/ffmpeg"


def test_find_ffmpeg_falls_back_to_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_mod.shutil, "which", lambda name: None)
    assert Path(find_ffmpeg()).is_file()
