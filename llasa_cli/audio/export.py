"""Write audio files atomically: wav/flac with soundfile, mp3/opus through ffmpeg.

Every file is written under a temporary name in its final folder, flushed to disk,
then moved over the final name with `os.replace`, so the final name only ever holds
a complete file. A full disk, read-only folder or missing permission raises
OutputError naming the path and leaves no temporary file behind; an encoder failure
raises ExportError with ffmpeg's last error line.

A temporary name says which process wrote it (`.NAME.HOST-PID-TOKEN.part`), so the temporary
file of a run killed mid-write (SIGKILL, power cut) is removed by the next run on the same host
(`remove_dead_temps`) while a live run's is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from ..errors import ExportError, OutputError
from ..options import EXPORT_FORMATS
from .audio_io import ffmpeg_path, find_ffmpeg, last_line, resample, to_pcm16_range, write_wav_bytes

PCM_SUBTYPE = "PCM_16"
SOUNDFILE_FORMATS = {"wav": "WAV", "flac": "FLAC"}
# ffmpeg settings per format: container, codec, bitrate. Mono speech: 64 kb/s CBR mp3
# is transparent enough for narration; 32 kb/s Opus is near-transparent for speech.
FFMPEG_FORMATS = {
    "mp3": ("mp3", "libmp3lame", "64k"),
    "opus": ("ogg", "libopus", "32k"),
}
FFMPEG_ENCODE_TIMEOUT_S = 3600.0
TEMP_SUFFIX = ".part"
TEMP_TOKEN_BYTES = 6
HOST_TAG_CHARS = 8  # of a digest of the host name: a temp file from another host is never removed
TEMP_NAME = re.compile(
    rf"\..+\.(?P<host>[0-9a-f]{{{HOST_TAG_CHARS}}})-(?P<pid>\d+)-[0-9a-f]{{{2 * TEMP_TOKEN_BYTES}}}\.part"
)
TEMP_NAME_ATTEMPTS = 100
DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
FFMPEG_DISK_FULL_TEXT = "No space left on device"


def output_error(path: Path, exc: OSError) -> OutputError:
    """A one-line OutputError for an OSError met while writing `path`."""
    code = exc.errno
    if code in DISK_FULL_ERRNOS:
        reason = "disk full (no space left on device)"
    elif code == errno.EROFS:
        reason = "the folder is on a read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied (the folder is not writable)"
    elif code == errno.ENOENT:
        reason = "the folder does not exist"
    elif code == errno.ENOTDIR:
        reason = "a parent of the path is not a folder"
    else:
        reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}")


def _write_all(handle: BinaryIO, data: bytes) -> None:
    """Write bytes and force them to disk (the seam tests patch to simulate a full disk)."""
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())


def _discard(temp: Path) -> None:
    # Already gone, or nothing more can be done: the original error is what matters.
    with contextlib.suppress(OSError):
        temp.unlink()


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:HOST_TAG_CHARS]


def _create_temp(path: Path) -> tuple[int, Path]:
    """Open a new, uniquely named temp file next to `path` (mode 0666 minus umask, unlike mkstemp)."""
    owner = f"{_host_tag()}-{os.getpid()}"
    for _ in range(TEMP_NAME_ATTEMPTS):
        temp = path.with_name(f".{path.name}.{owner}-{secrets.token_hex(TEMP_TOKEN_BYTES)}{TEMP_SUFFIX}")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"could not create a temporary file next to {path}")


def remove_dead_temps(folder: Path) -> list[Path]:
    """Remove the temporary files in `folder` left by writers on this host that are no longer
    running (killed mid-write); returns them. Files not named by `atomic_write` are never touched."""
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed  # a folder that cannot be listed holds nothing this run could clean
    host = _host_tag()
    for temp in candidates:
        match = TEMP_NAME.fullmatch(temp.name)
        if match is None or match["host"] != host or _process_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            temp.unlink()
            removed.append(temp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _sync_folder(folder: Path) -> None:
    """Best effort: make the rename itself durable (POSIX only)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, fill: Callable[[Path, BinaryIO], None]) -> Path:
    """Create a temp file next to `path`, let `fill` write it, then os.replace it into place."""
    path = Path(path)
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: a folder of that name exists")
    try:
        fd, temp = _create_temp(path)
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(temp, handle)
        os.replace(temp, path)
    except OSError as exc:
        _discard(temp)
        raise output_error(path, exc) from exc
    except BaseException:
        _discard(temp)
        raise
    _sync_folder(folder)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder + os.replace)."""
    return atomic_write(Path(path), lambda _temp, handle: _write_all(handle, data))


def encode_soundfile(audio: np.ndarray, sr: int, fmt: str) -> bytes:
    """Encode mono audio as 16-bit wav or flac, in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16_range(audio), int(sr), subtype=PCM_SUBTYPE, format=SOUNDFILE_FORMATS[fmt])
    return buffer.getvalue()


def _run_ffmpeg(cmd: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with WAV on stdin (the seam tests patch)."""
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=FFMPEG_ENCODE_TIMEOUT_S, check=False)


def _ffmpeg_command(ffmpeg: str, fmt: str, out: Path) -> list[str]:
    container, codec, bitrate = FFMPEG_FORMATS[fmt]
    read = ["-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "wav", "-i", "pipe:0"]
    write = ["-vn", "-ac", "1", "-c:a", codec, "-b:a", bitrate, "-f", container, ffmpeg_path(out)]
    return [ffmpeg, *read, *write]


def _ffmpeg_fill(audio: np.ndarray, sr: int, fmt: str, path: Path) -> Callable[[Path, BinaryIO], None]:
    ffmpeg = find_ffmpeg()
    wav = write_wav_bytes(audio, sr)

    def fill(temp: Path, handle: BinaryIO) -> None:
        handle.close()  # ffmpeg writes the temp file itself
        try:
            proc = _run_ffmpeg(_ffmpeg_command(ffmpeg, fmt, temp), wav)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExportError(f"ffmpeg could not encode {path.name} as {fmt}: {exc}") from exc
        if proc.returncode != 0:
            reason = last_line(proc.stderr) or f"exit status {proc.returncode}"
            if FFMPEG_DISK_FULL_TEXT.lower() in (proc.stderr or b"").decode("utf-8", "replace").lower():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise ExportError(f"ffmpeg could not encode {path.name} as {fmt}: {reason}")
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())

    return fill


def export_audio(audio: np.ndarray, sr: int, path: Path, fmt: str, sample_rate: int) -> Path:
    """Write mono `audio` (at rate `sr`) to `path` as wav/flac/mp3/opus at `sample_rate`.

    Resamples with soxr when the rates differ. Atomic; returns `path`.
    Raises OutputError (cannot write: disk full, read-only, permission, missing folder)
    or ExportError (unknown format, ffmpeg missing or failing).
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown audio format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    data = resample(np.asarray(audio, dtype=np.float32).reshape(-1), int(sr), int(sample_rate))
    if fmt in SOUNDFILE_FORMATS:
        encoded = encode_soundfile(data, sample_rate, fmt)
        return atomic_write_bytes(path, encoded)
    return atomic_write(path, _ffmpeg_fill(data, sample_rate, fmt, path))
