"""The `llasa` command: a thin layer over the library.

Options are turned into the frozen dataclasses of `llasa_cli.options` here and
nowhere else; domain errors become one line on stderr and a documented exit code
in `main()` only. Heavy imports (the pipeline, torch, transformers) happen inside the
commands that need them, so `llasa --help` and `llasa split` start fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import LlasaError, OutputError
from .common import EXIT_INTERRUPTED, EXIT_OK

app = typer.Typer(
    name="llasa",
    help="Turn a manuscript into chapter audio files with the Llasa TTS model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"llasa-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version of llasa-cli and exit."
        ),
    ] = False,
) -> None:
    """Turn a manuscript into chapter audio files with the Llasa TTS model."""


def _register_commands() -> None:
    # Each command in a module of its own; none of them imports the pipeline or torch at import time.
    from . import check, job, report, split, synth, verify, voice

    split.register(app)
    synth.register(app)
    verify.register(app)
    job.register(app)
    report.register(app)
    check.register(app)
    app.add_typer(voice.voice_app, name="voice")


_register_commands()


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
