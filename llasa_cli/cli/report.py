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
        cast = any(row["voice"] for row in data["flagged"])  # a book with characters says who spoke
        for column in ("id", *(["voice"] if cast else []), "attempts", "failed checks", "text", "transcript"):
            table.add_column(column)
        for row in data["flagged"]:
            voice = [row["voice"] or "narrator"] if cast else []
            table.add_row(
                row["id"], *voice, str(row["attempts"]), _failed_checks(row), row["text"], row["transcript"] or ""
            )
        console.print(table)
    share = data["verify_time_share"]
    console.print(
        f"{data['segments_done']} segments done, {data['segments_verified']} verified, "
        f"{len(data['flagged'])} flagged, {len(data['accepted'])} accepted after review, {data['retries']} retries; "
        f"mean WER {_number(data['mean_wer'])}, "
        f"mean CER {_number(data['mean_cer'])}, mean speaker similarity {_number(data['mean_similarity'])}; "
        f"verification took {'n/a' if share is None else f'{share:.0%}'} of the synthesis time"
    )
    if data["search"]:
        search = data["search"]
        console.print(
            f"search ({', '.join(search['modes'])}) on {search['segments_searched']} segments: "
            f"{search['candidates']:.0f} candidates, {search['tokens_generated']:.0f} tokens in "
            f"{search['lm_forward_calls']:.0f} LM passes ({search['lm_seconds']:.1f} s), "
            f"{search['partial_scored'] + search['final_scored']:.0f} candidates scored "
            f"({search['partial_scorer_seconds'] + search['final_scorer_seconds']:.1f} s)"
        )


def _failed_checks(row: dict[str, Any]) -> str:
    """Each failed check with its measured value and the limit that passes, e.g. `wer 0.42 (<= 0.3)`."""
    measured = {c["check"]: c for c in row["checks"] if not c["passed"]}
    return ", ".join(_failed_check(name, measured.get(name)) for name in row["failures"])


def _failed_check(name: str, check: dict[str, Any] | None) -> str:
    return name if check is None else f"{name} {check['value']:.3g} ({check['comparison']} {check['limit']:.3g})"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    app.command()(report)
