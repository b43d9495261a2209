"""`llasa status`, `llasa stitch`, `llasa redo`: commands on an existing job folder."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ..errors import InvalidOptionError
from .common import EXIT_PARTIAL, OutdirArg, WorkDirOpt


def status(
    outdir: OutdirArg,
    work_dir: WorkDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Show a job's progress per chapter: done, failed, pending, minutes of audio, ETA."""
    from ..pipeline import find_job_folder, job_status

    report = job_status(find_job_folder(outdir, work_dir))
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from .plan_view import format_duration

    table = Table(title="Job status")
    for column in ("chapter", "done", "failed", "pending", "audio"):
        table.add_column(column, justify="right")
    for c in report["chapters"]:
        table.add_row(
            str(c["chapter"]),
            str(c["done"]),
            str(c["failed"]),
            str(c["pending"]),
            format_duration(c["done_audio_seconds"]),
        )
    console = Console()
    console.print(table)
    eta = "unknown" if report["eta_seconds"] is None else format_duration(report["eta_seconds"])
    console.print(f"{report['done']}/{report['total']} segments done, {report['failed']} failed, ETA {eta}")


def stitch(outdir: OutdirArg, work_dir: WorkDirOpt = None) -> None:
    """Rebuild the chapter files (and the m4b) in OUTDIR from stored codes (no language model is loaded)."""
    from ..pipeline import BookWritten, find_job_folder, stitch_job

    def say(written: Any) -> None:
        typer.echo(f"wrote {written.path if isinstance(written, BookWritten) else written.destination}")
        for subtitles in written.subtitles if isinstance(written, BookWritten) else ():
            typer.echo(f"wrote {subtitles}")

    result = stitch_job(find_job_folder(outdir, work_dir), outdir, on_written=say)
    if result.unfinished:
        chapters = list(result.unfinished)
        book = f" ({result.waiting_book} is built once they are)" if result.waiting_book else ""
        typer.echo(
            f"llasa: warning: chapters {chapters} are not finished{book}; run synth again to finish them", err=True
        )
        raise typer.Exit(EXIT_PARTIAL)


def redo(
    outdir: OutdirArg,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="Segment id such as 3.12 (repeatable).")
    ] = None,
    chapter: Annotated[list[int] | None, typer.Option("--chapter", help="Chapter number (repeatable).")] = None,
    queued: Annotated[
        bool, typer.Option("--queued", help="The segments queued on the review page (llasa review --serve).")
    ] = False,
    work_dir: WorkDirOpt = None,
) -> None:
    """Synthesise chosen segments or chapters again (with fresh seeds), then rebuild their chapters."""
    from ..pipeline import find_job_folder, prepare_redo
    from ..pipeline.job_commands import prepare_queued_redo
    from .synth import OutputMode, execute

    folder = find_job_folder(outdir, work_dir)
    if queued and (segment or chapter):
        raise InvalidOptionError("--queued redoes the review page's queue: give it no --segment or --chapter")
    if queued:
        redo = prepare_queued_redo(folder, outdir=outdir)
        if not redo.segments:
            typer.echo("nothing is queued for redo (queue segments with llasa review OUTDIR --serve)", err=True)
            return
    else:
        redo = prepare_redo(folder, segment or [], chapter or [], outdir=outdir)
    typer.echo(f"redoing {len(redo.segments)} segment(s)", err=True)
    mode = OutputMode(json=False, quiet=False, interactive=sys.stderr.isatty())
    raise typer.Exit(execute(redo.request, mode, None, redo.manuscript))


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(stitch)
    app.command()(redo)
