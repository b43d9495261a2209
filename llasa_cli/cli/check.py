"""`llasa check OUTDIR`: measure every audio file in a folder against the ACX rules.

Exit status: 0 when every file passes, EXIT_CHECK_FAILED (5) when any file fails a
rule or cannot be read. A missing folder, or one with no audio files, is an
InputNotFoundError (10).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from ..audio.file_check import FileCheck

PASS_TEXT, FAIL_TEXT = "PASS", "FAIL"


def _level(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-inf"


def print_table(results: list[FileCheck]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # File names fold onto more lines rather than being cut: chapter files differ at their ends.
    table = Table(title="ACX check (levels in dB, silences in s)", box=box.SIMPLE_HEAD, pad_edge=False, show_lines=True)
    table.add_column("file", overflow="fold", ratio=3)
    for name in ("length", "RMS", "peak", "floor", "lead", "tail"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("result", overflow="fold", ratio=2)
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
        from ..pipeline import check_audio_files

        results = check_audio_files(outdir)
        if as_json:
            for item in results:
                sys.stdout.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
        else:
            print_table(results)
        if not all(item.passed for item in results):
            raise typer.Exit(code=EXIT_CHECK_FAILED)
