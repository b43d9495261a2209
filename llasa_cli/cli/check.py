"""`llasa check OUTDIR`: measure every audio file in a folder against the ACX rules.

Exit status: 0 when every file passes, EXIT_CHECK_FAILED (5) when any file fails a
rule or cannot be read. A missing folder, or one with no audio files, is an
InputNotFoundError (10).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ..audio.acx import AcxReport, check_acx
from ..errors import InputNotFoundError, VoiceError

EXIT_CHECK_FAILED = 5  # a result, like verify's 4 and synth's 3 (partial); errors are 10 and up
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".opus", ".ogg", ".m4b", ".m4a")
PASS_TEXT, FAIL_TEXT = "PASS", "FAIL"


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

    from ..audio.audio_io import load_audio, to_mono
    from ..constants import SAMPLE_RATE

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


def _level(value: float) -> str:
    return f"{value:.1f}" if np.isfinite(value) else "-inf"


def print_table(results: list[FileCheck]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ACX check")
    for name in ("file", "length", "RMS dB", "peak dB", "floor dB", "start s", "end s", "result"):
        table.add_column(name, justify="left" if name in ("file", "result") else "right")
    for item in results:
        report = item.report
        if report is None:
            table.add_row(item.path.name, "", "", "", "", "", "", f"{FAIL_TEXT}: {item.error}")
            continue
        verdict = PASS_TEXT if report.passed else f"{FAIL_TEXT}: {', '.join(report.failures)}"
        table.add_row(
            item.path.name,
            f"{report.duration_s:.1f}s",
            _level(report.rms_db),
            _level(report.peak_db),
            _level(report.noise_floor_db),
            f"{report.leading_silence_s:.2f}",
            f"{report.trailing_silence_s:.2f}",
            verdict,
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `llasa check` to `app`."""

    @app.command()
    def check(
        outdir: Annotated[Path, typer.Argument(help="Folder of chapter files (or one audio file) to check.")],
        as_json: Annotated[bool, typer.Option("--json", help="Write JSON Lines (one object per file).")] = False,
    ) -> None:
        """Check chapter files against ACX rules (RMS, peak, noise floor, room tone)."""
        results = [check_file(path) for path in audio_files(outdir)]
        if as_json:
            for item in results:
                sys.stdout.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
        else:
            print_table(results)
        if not all(item.passed for item in results):
            raise typer.Exit(code=EXIT_CHECK_FAILED)
