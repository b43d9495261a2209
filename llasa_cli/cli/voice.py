"""`llasa voice add|list|remove`: the user's stored narrator voices."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..options import EngineOptions
from .common import warn

voice_app = typer.Typer(
    help="Manage stored narrator voices (encoded once, reused with --voice NAME).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

_DEFAULT_ENGINE = EngineOptions()


@voice_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name to store the voice under (letters, digits, - and _).")],
    clip: Annotated[Path, typer.Argument(help="Reference clip: any common audio format and sample rate.")],
    text: Annotated[
        str | None, typer.Option("--text", help="What the clip says (else Whisper transcribes it).")
    ] = None,
    codec: Annotated[str, typer.Option("--codec", help="X-Codec2 id or local folder.")] = _DEFAULT_ENGINE.codec,
    device: Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")] = _DEFAULT_ENGINE.device,
    asr_model: Annotated[
        str | None, typer.Option("--asr-model", help="Whisper model name or local file for transcription.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a stored voice of the same name.")] = False,
) -> None:
    """Encode a reference clip and store it as a named voice."""
    from ..pipeline import add_voice

    EngineOptions(codec=codec, device=device)  # validates the combination like synth does
    prompt = add_voice(name, clip, text, codec=codec, device=device, asr_model=asr_model, force=force, warn=warn)
    typer.echo(f"stored voice {name!r} ({len(prompt.codes)} codes): {prompt.text}")


@voice_app.command("list")
def list_voices(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """List stored voices."""
    from ..pipeline import list_voices as stored_voices

    voices = stored_voices()
    if as_json:
        for info in voices:
            sys.stdout.write(json.dumps({"name": info.name, "seconds": info.seconds, "text": info.text}) + "\n")
        return
    if not voices:
        typer.echo("no stored voices; add one with: llasa voice add NAME clip.wav --text '...'")
    for info in voices:
        typer.echo(f"{info.name}\t{info.seconds:.1f}s\t{info.text}")


@voice_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Stored voice to delete.")]) -> None:
    """Delete a stored voice."""
    from ..pipeline import remove_voice

    remove_voice(name)
    typer.echo(f"removed voice {name!r}")
