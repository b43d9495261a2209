"""Checking finished audio files against the ACX rules: which files, read at their own rate.

A missing target, or a folder with no audio files, is an InputNotFoundError (10); a file that
cannot be read is reported in its `FileCheck`, beside the others' reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import InputNotFoundError, VoiceError
from .acx import AcxReport, check_acx

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".opus", ".ogg", ".m4b", ".m4a")


@dataclass(frozen=True)
class FileCheck:
    """The outcome for one file: a report, or why it could not be read."""

    path: Path
    report: AcxReport | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.passed

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.path.name, "passed": self.passed}
        if self.report is not None:
            data.update(self.report.to_dict())
            data["failures"] = list(self.report.failures)
        if self.error is not None:
            data["error"] = self.error
        return data


def audio_files(target: Path) -> list[Path]:
    """The audio files to check: `target` itself, or the audio files in the folder (sorted, not hidden)."""
    if not target.exists():
        raise InputNotFoundError(f"{target}: no such file or folder")
    if target.is_file():
        return [target]
    found = sorted(
        path
        for path in target.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in AUDIO_SUFFIXES
    )
    if not found:
        raise InputNotFoundError(f"{target}: no audio files ({', '.join(AUDIO_SUFFIXES)}) to check")
    return found


def read_audio_native(path: Path) -> tuple[np.ndarray, int]:
    """Mono audio at the file's own rate (peaks are not moved by resampling); ffmpeg formats at 16 kHz."""
    import soundfile as sf

    from .audio_io import load_audio, to_mono

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        return load_audio(path), SAMPLE_RATE
    if data.size == 0:
        raise VoiceError(f"audio file contains no audio: {path}")
    return to_mono(data), int(rate)


def check_file(path: Path) -> FileCheck:
    try:
        audio, rate = read_audio_native(path)
    except VoiceError as exc:
        return FileCheck(path, error=str(exc))
    return FileCheck(path, report=check_acx(audio, rate))
