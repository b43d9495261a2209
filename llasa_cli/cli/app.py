"""The `llasa` command: a thin layer over the library.

Options are turned into the frozen dataclasses of `llasa_cli.options` here and
nowhere else; domain errors become one line on stderr and a documented exit code
in `main()` only. Heavy imports (torch, transformers) happen inside the commands
that need them, so `llasa --help` and `llasa split` start fast.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS
from ..errors import LlasaError, OutputError
from .common import (
    ChapterPatternOpt,
    EncodingOpt,
    JsonOpt,
    LangOpt,
    LexiconOpt,
    MaxSegOpt,
    NoChaptersOpt,
    NoNormalizeOpt,
    NoSpeakTitlesOpt,
    build_text_options,
    warn,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="llasa",
    help="Turn a manuscript into chapter audio files with the Llasa TTS model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

@app.command()
def split(
    file: Annotated[str, typer.Argument(help="Manuscript (.txt or .md), or - for standard input.")],
    encoding: EncodingOpt = None,
    lang: LangOpt = "en",
    no_normalize: NoNormalizeOpt = False,
    no_chapters: NoChaptersOpt = False,
    chapter_pattern: ChapterPatternOpt = None,
    no_speak_titles: NoSpeakTitlesOpt = False,
    lexicon: LexiconOpt = None,
    max_segment_seconds: MaxSegOpt = DEFAULT_MAX_SEGMENT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Show how a manuscript splits into chapters and segments (no model needed)."""
    from ..text.manuscript import read_manuscript
    from ..text.planner import build_plan
    from .plan_view import plan_json_lines, print_plan

    options = build_text_options(
        lang, no_normalize, no_chapters, chapter_pattern, no_speak_titles, lexicon, max_segment_seconds
    )
    plan = build_plan(read_manuscript(file, encoding=encoding), options)
    for message in plan.warnings:
        warn(message)
    if as_json:
        for line in plan_json_lines(plan):
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:
        print_plan(plan)


def _register_subcommands() -> None:
    # Imported here so each command module stays small; none of them imports torch at import time.
    from . import check, job, report, synth, verify, voice

    synth.register(app)
    verify.register(app)
    job.register(app)
    report.register(app)
    check.register(app)
    app.add_typer(voice.voice_app, name="voice")


_register_subcommands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning domain errors into one line and an exit code."""
    import click

    try:
        result = app(args=argv, standalone_mode=False)
    except LlasaError as exc:
        typer.echo(f"llasa: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except OSError as exc:  # one the library did not foresee: still one line, never a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(f"llasa: error: {exc.strerror or exc}{where}", err=True)
        return OutputError.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("llasa: interrupted", err=True)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


def entry_point() -> None:
    sys.exit(main())
