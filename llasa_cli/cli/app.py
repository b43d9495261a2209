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
from typer.exceptions import TyperException

from .. import __version__
from ..errors import InvalidOptionError, LlasaError, OutputError
from .common import EXIT_INTERRUPTED, EXIT_OK

app = typer.Typer(
    name="llasa",
    help="Turn a manuscript into chapter audio files with the Llasa TTS model.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


_NO_COMMAND = "no command given: pick one of the commands above"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"llasa-cli {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version of llasa-cli and exit."
        ),
    ] = False,
) -> None:
    """Turn a manuscript into chapter audio files with the Llasa TTS model."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise InvalidOptionError(_NO_COMMAND)


def _register_commands() -> None:
    # Each command in a module of its own; none of them imports the pipeline or torch at import time.
    from . import check, job, report, review, scaling, split, synth, verify, voice

    split.register(app)
    synth.register(app)
    verify.register(app)
    job.register(app)
    report.register(app)
    review.register(app)
    check.register(app)
    scaling.register(app)
    app.add_typer(voice.voice_app, name="voice")


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning domain errors and usage mistakes into one line and an exit code."""
    try:
        result = app(args=argv, standalone_mode=False)
    except LlasaError as exc:
        _error(str(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # a usage mistake: unknown option or command, bad value, missing argument
        _error(_usage_message(exc))
        return getattr(exc, "exit_code", InvalidOptionError.exit_code)
    except OSError as exc:  # one the library did not foresee: still one line, never a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        _error(f"{exc.strerror or exc}{where}")
        return OutputError.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("llasa: interrupted", err=True)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


def _error(message: str) -> None:
    typer.echo(f"llasa: error: {message}", err=True)


def _usage_message(exc: TyperException) -> str:
    """Typer's message on one line, with the command it concerns and where to read its options."""
    message = " ".join(exc.format_message().split()) if hasattr(exc, "format_message") else str(exc)
    message = message or _NO_COMMAND  # a command group run bare has printed its help already
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{message} (see '{ctx.command_path} --help')"


def entry_point() -> None:
    sys.exit(main())
