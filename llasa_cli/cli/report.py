"""`llasa report OUTDIR`: what verification found, read from the job store."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from .common import OutdirArg, WorkDirOpt


def report(
    outdir: OutdirArg,
    work_dir: WorkDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Flagged segments (text vs transcript, scores, attempts) and verification totals."""
    from ..pipeline import find_job_folder, verification_report

    data = verification_report(find_job_folder(outdir, work_dir))
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        _print(data)


def _print(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if data["flagged"]:
        table = Table(title="Flagged segments (the best attempt was kept)")
        for column in ("id", "attempts", "failures", "text", "transcript"):
            table.add_column(column)
        for row in data["flagged"]:
            table.add_row(row["id"], str(row["attempts"]), ", ".join(row["failures"]), row["text"],
                          row["transcript"] or "")  # fmt: skip
        console.print(table)
    share = data["verify_time_share"]
    console.print(
        f"{data['segments_done']} segments done, {data['segments_verified']} verified, "
        f"{len(data['flagged'])} flagged, {data['retries']} retries; mean WER {data['mean_wer']}, "
        f"mean CER {data['mean_cer']}, mean speaker similarity {data['mean_similarity']}; "
        f"verification took {'n/a' if share is None else f'{share:.0%}'} of the synthesis time"
    )


def register(app: typer.Typer) -> None:
    app.command()(report)
