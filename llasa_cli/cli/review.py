"""`llasa review OUTDIR [--serve]`: a page to listen to a finished book and judge its segments."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import OutdirArg, WorkDirOpt


def review(
    outdir: OutdirArg,
    work_dir: WorkDirOpt = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Serve the page on 127.0.0.1 (a free port, a secret address) to accept takes and queue redos "
            "from it; Ctrl-C stops it.",
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="With --serve: print the address, do not open a browser.")
    ] = False,
) -> None:
    """Write OUTDIR/review.html: every segment with its text, transcript, scores and audio, flagged first."""
    from ..pipeline import find_job_folder
    from ..pipeline.review_actions import reviewer
    from ..pipeline.review_page import ReviewJob, write_review_page

    job = ReviewJob(find_job_folder(outdir, work_dir), outdir)
    typer.echo(f"wrote {write_review_page(job)}")
    if not serve:
        return
    from ..pipeline.review_server import serve_review

    def announce(url: str) -> None:
        typer.echo(f"review page: {url}")
        typer.echo("Ctrl-C stops the server")

    serve_review(job, reviewer(), announce, open_browser=not no_browser)
    typer.echo("review server stopped", err=True)


def register(app: typer.Typer) -> None:
    app.command()(review)
