"""`llasa status`, `llasa stitch`, `llasa redo`: commands on an existing job folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputNotFoundError, InvalidOptionError
from .common import EXIT_PARTIAL

OutdirArg = Annotated[Path, typer.Argument(help="The output folder of a synth run.")]
WorkDirOpt = Annotated[Path | None, typer.Option("--work-dir", help="Job folder, if synth used --work-dir.")]


def job_folder(outdir: Path, work_dir: Path | None) -> Path:
    from ..job.store import DB_NAME
    from ..pipeline.run import WORK_DIR_NAME

    folder = work_dir or outdir / WORK_DIR_NAME
    if not (folder / DB_NAME).is_file():
        raise InputNotFoundError(f"no llasa job in {folder} (run `llasa synth FILE -o {outdir}` first)")
    return folder


def status(outdir: OutdirArg, work_dir: WorkDirOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False):
    """Show a job's progress per chapter: done, failed, pending, minutes of audio, ETA."""
    from ..job.store import JobStore

    with JobStore.open(job_folder(outdir, work_dir)) as store:
        report = status_report(store)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    _print_status(report)


def status_report(store: Any) -> dict[str, Any]:
    job = store.status()
    work_seconds, audio_seconds = store.work_rate()
    rtf = work_seconds / audio_seconds if audio_seconds else None
    eta = job.pending_est_seconds * rtf if rtf is not None else None
    return {
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "pending": job.pending,
        "done_audio_seconds": round(job.done_seconds, 2),
        "pending_est_seconds": round(job.pending_est_seconds, 2),
        "real_time_factor": None if rtf is None else round(rtf, 4),
        "eta_seconds": None if eta is None else round(eta, 1),
        "chapters": [
            {
                "chapter": c.chapter,
                "total": c.total,
                "done": c.done,
                "failed": c.failed,
                "pending": c.pending,
                "done_audio_seconds": round(c.done_seconds, 2),
            }
            for c in job.chapters
        ],
    }


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
    """Rebuild the chapter files from stored codes (no language model is loaded)."""
    from ..engine.loading import load_codec, pick_device
    from ..job.store import JobStore
    from ..pipeline.run import open_sink, stored_request
    from ..pipeline.synthesizer import RunContext, keys_for, search_key, write_chapter
    from ..text.planner import build_plan

    with JobStore.open(job_folder(outdir, work_dir)) as store:
        request, manuscript = stored_request(store)
        plan = build_plan(manuscript, request.text)
        voice = store.load_voice()
        if voice is None:
            raise InputNotFoundError(f"the job in {outdir} has no finished narrator yet: nothing to stitch")
        device, _ = pick_device(request.engine.device)
        codec = load_codec(request.engine.codec, device)
        context = RunContext(
            store=store,
            worker="stitch",
            keys=keys_for(plan, request.engine, request.sampling, voice, search_key(request.search)),
        )
        sink = open_sink(request, manuscript)
        done = store.done_keys(list(context.keys.values()))
        skipped = []
        for chapter in plan.chapters:
            if all(context.keys[s.segment_id] in done for s in plan.segments_of(chapter.number)):
                written = write_chapter(plan, chapter, sink, context, codec, force=True)
                typer.echo(f"wrote {written.destination}")
            else:
                skipped.append(chapter.number)
    if skipped:
        typer.echo(f"llasa: warning: chapters {skipped} are not finished; run synth again to finish them", err=True)
        raise typer.Exit(EXIT_PARTIAL)


def redo(
    outdir: OutdirArg,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="Segment id such as 3.12 (repeatable).")
    ] = None,
    chapter: Annotated[list[int] | None, typer.Option("--chapter", help="Chapter number (repeatable).")] = None,
    work_dir: WorkDirOpt = None,
) -> None:
    """Synthesise chosen segments or chapters again (with fresh seeds), then rebuild their chapters."""
    from ..job.store import JobStore
    from ..pipeline.run import stored_request
    from ..pipeline.synthesizer import keys_for, search_key
    from ..text.planner import build_plan
    from .synth import OutputMode, _execute

    if not segment and not chapter:
        raise InvalidOptionError("redo needs --segment ID or --chapter N")
    with JobStore.open(job_folder(outdir, work_dir)) as store:
        request, manuscript = stored_request(store)
        plan = build_plan(manuscript, request.text)
        voice = store.load_voice()
        keys = keys_for(plan, request.engine, request.sampling, voice, search_key(request.search)) if voice else {}
        chosen = _choose(plan, segment or [], chapter or [])
        store.reset([keys[s.segment_id] for s in chosen if s.segment_id in keys])
    typer.echo(f"redoing {len(chosen)} segment(s)", err=True)
    mode = OutputMode(json=False, quiet=False, interactive=sys.stderr.isatty())
    raise typer.Exit(_execute(request, mode, None, manuscript))


def _choose(plan: Any, segment_ids: list[str], chapters: list[int]) -> list[Any]:
    known = {s.segment_id for s in plan.segments}
    unknown = [i for i in segment_ids if i not in known]
    numbers = {c.number for c in plan.chapters}
    unknown += [str(n) for n in chapters if n not in numbers]
    if unknown:
        raise InvalidOptionError(f"no such segment or chapter in this job: {', '.join(unknown)} (see `llasa split`)")
    return [s for s in plan.segments if s.segment_id in segment_ids or s.chapter in chapters]


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(stitch)
    app.command()(redo)
