"""Audio in and out of memory: read any common file as 16 kHz mono, find ffmpeg, WAV bytes.

NumPy only. Audio is always a 1-D float32 array; `SAMPLE_RATE` unless a rate is given.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..constants import SAMPLE_RATE
from ..errors import ExportError, VoiceError

# soxr quality for every resampling step ("HQ": 20-bit precision, ample for speech).
RESAMPLE_QUALITY = "HQ"
# Decoding a clip with ffmpeg should never take this long; a hung decoder is an error.
FFMPEG_DECODE_TIMEOUT_S = 120.0
WAV_SUBTYPE = "PCM_16"
# ffmpeg reads a path like `concat:a.wav|b.wav` or `http:x` as a protocol URL; `file:` and an
# absolute path make it the local file of that name, whatever it is called.
FFMPEG_FILE_PROTOCOL = "file:"


def find_ffmpeg() -> str:
    """Path of an ffmpeg binary: the one on PATH, else the one bundled with imageio-ffmpeg.

    Raises ExportError when neither is available.
    """
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError, OSError) as exc:
        raise ExportError(
            "ffmpeg not found: install ffmpeg (or the imageio-ffmpeg package) to read or write mp3/opus"
        ) from exc


def ffmpeg_path(path: str | Path) -> str:
    """`path` as an ffmpeg argument that can only mean the local file of that name."""
    return FFMPEG_FILE_PROTOCOL + str(Path(path).absolute())


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample 1-D audio with soxr; returns float32 (the same array when the rates match)."""
    audio = np.asarray(audio, dtype=np.float32)
    if from_rate == to_rate or audio.size == 0:
        return audio
    return np.asarray(soxr.resample(audio, from_rate, to_rate, quality=RESAMPLE_QUALITY), dtype=np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of (frames, channels) audio; 1-D input is returned as is."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1, dtype=np.float64).astype(np.float32)


def load_audio(path: str | Path) -> np.ndarray:
    """Read an audio file of any common format and rate as float32 mono at SAMPLE_RATE.

    soundfile (libsndfile) reads wav/flac/ogg/mp3 and friends; anything it cannot read
    (m4a, aac, webm, ...) goes through ffmpeg. Stereo is averaged to mono and the result
    resampled with soxr. A missing, unreadable, empty or non-audio file raises VoiceError
    naming the file (this is the entry point for voice clips).
    """
    path = Path(path)
    if not path.exists():
        raise VoiceError(f"audio file not found: {path}")
    if not path.is_file():
        raise VoiceError(f"not an audio file (it is a folder or device): {path}")
    if path.stat().st_size == 0:
        raise VoiceError(f"audio file is empty (0 bytes): {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        data, rate = _decode_with_ffmpeg(path)
    except OSError as exc:
        raise VoiceError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    mono = to_mono(data)
    if mono.size == 0:
        raise VoiceError(f"audio file contains no audio: {path}")
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    return resample(mono, int(rate), SAMPLE_RATE)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to float WAV on a pipe, keeping the file's own rate and channels."""
    try:
        ffmpeg = find_ffmpeg()
    except ExportError as exc:
        raise VoiceError(f"cannot read audio file {path}: unknown format and {exc}") from exc
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", ffmpeg_path(path)]
    cmd += ["-vn", "-f", "wav", "-c:a", "pcm_f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_DECODE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VoiceError(f"cannot read audio file {path}: ffmpeg failed to run ({exc})") from exc
    if proc.returncode != 0 or not proc.stdout:
        reason = last_line(proc.stderr) or "not an audio file"
        raise VoiceError(f"cannot read audio file {path}: {reason}")
    try:
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise VoiceError(f"cannot read audio file {path}: ffmpeg output unreadable ({exc})") from exc
    return data, int(rate)


def last_line(stderr: bytes | str | None) -> str:
    """The last non-empty line of a process's stderr, for one-line error messages."""
    if not stderr:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def to_pcm16_range(audio: np.ndarray) -> np.ndarray:
    """Float32 copy clipped to [-1, 1] with non-finite values zeroed, ready for integer PCM."""
    clean = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(clean, -1.0, 1.0)


def write_wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    """Encode mono audio as a 16-bit PCM WAV file in memory (e.g. for `-o -` streaming)."""
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16_range(audio), int(sr), subtype=WAV_SUBTYPE, format="WAV")
    return buffer.getvalue()
