"""`llasa report OUTDIR`: what verification found, read from the job store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean
from typing import Annotated, Any

import typer

METRICS = ("wer", "cer", "similarity")


def report(
    outdir: Annotated[Path, typer.Argument(help="The output folder of a synth run.")],
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Job folder, if synth used --work-dir.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Flagged segments (text vs transcript, scores, attempts) and verification totals."""
    from ..job.store import JobStore
    from .job import job_folder

    with JobStore.open(job_folder(outdir, work_dir)) as store:
        data = build_report(store)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        _print(data)


def build_report(store: Any) -> dict[str, Any]:
    from ..pipeline.synthesizer import FLAGGED

    texts = dict(store._conn.execute("SELECT key, text FROM positions"))
    done = [(c, i, r) for c, i, r in store.plan_records() if r.status == "done"]
    flagged = [
        {
            "id": f"{c}.{i}",
            "text": texts.get(r.key, ""),
            "transcript": (r.scores or {}).get("transcript"),
            "failures": (r.scores or {}).get("failures", []),
            "metrics": (r.scores or {}).get("metrics", {}),
            "attempts": r.attempts,
        }
        for c, i, r in done
        if (r.scores or {}).get(FLAGGED)
    ]
    metrics = [(r.scores or {}).get("metrics", {}) for _, _, r in done]
    totals = {name: _mean([m[name] for m in metrics if name in m]) for name in METRICS}
    work = sum((r.timings or {}).get("seconds", 0.0) for _, _, r in done)
    verifying = sum((r.timings or {}).get("verify_seconds", 0.0) for _, _, r in done)
    return {
        "segments_done": len(done),
        "segments_verified": sum(1 for _, _, r in done if r.scores),
        "flagged": flagged,
        "mean_wer": totals["wer"],
        "mean_cer": totals["cer"],
        "mean_similarity": totals["similarity"],
        "retries": sum(max(0, r.attempts - 1) for _, _, r in done),
        "verify_time_share": round(verifying / (work + verifying), 4) if work + verifying else None,
    }


def _mean(values: list[float]) -> float | None:
    return round(mean(values), 4) if values else None


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
