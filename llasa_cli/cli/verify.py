"""`llasa verify AUDIO --text "..."`: run the segment verifiers on one audio file.

The flag definitions are exported as `Annotated` aliases (and `build_verify_options`) so that
`synth` takes the same flags with the same defaults. Exit codes: 0 when every check passes,
EXIT_FLAGGED (4) when the audio is flagged, the domain error codes otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..options import EngineOptions, VerifyOptions
from .common import EXIT_FLAGGED, PANEL_MODELS, PANEL_VERIFY, LangOpt, warn

if TYPE_CHECKING:
    from ..pipeline import ClipVerification

_DEFAULT = VerifyOptions()
_DEFAULT_ENGINE = EngineOptions()

# --- flags shared with `synth` ---------------------------------------------------------

NoVerifyOpt = Annotated[
    bool, typer.Option("--no-verify", help="Do not check synthesised segments.", rich_help_panel=PANEL_VERIFY)
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Leave chapters unwritten where a segment still fails its checks after all retries.",
        rich_help_panel=PANEL_VERIFY,
    ),
]
RetriesOpt = Annotated[
    int,
    typer.Option(
        "--retries", help="Regenerations (new seed) of a segment that fails its checks.", rich_help_panel=PANEL_VERIFY
    ),
]
AsrBackendOpt = Annotated[
    str, typer.Option("--asr-backend", help="openai-whisper or faster-whisper.", rich_help_panel=PANEL_VERIFY)
]
AsrModelOpt = Annotated[
    str | None,
    typer.Option(
        "--asr-model",
        help="Whisper model name, or local folder (openai-whisper: model.safetensors + dims.json; "
        "faster-whisper: a CTranslate2 folder). Default: turbo on CUDA, base elsewhere.",
        rich_help_panel=PANEL_VERIFY,
    ),
]
SpeakerBackendOpt = Annotated[
    str,
    typer.Option("--speaker-backend", help="wavlm or ecapa (needs speechbrain).", rich_help_panel=PANEL_VERIFY),
]
SpeakerModelOpt = Annotated[
    str | None,
    typer.Option(
        "--speaker-model",
        help="Speaker model hub id or local folder (default: microsoft/wavlm-base-plus-sv).",
        rich_help_panel=PANEL_VERIFY,
    ),
]
MaxWerOpt = Annotated[
    float,
    typer.Option("--max-wer", help="Highest word error rate that passes (English).", rich_help_panel=PANEL_VERIFY),
]
MaxCerOpt = Annotated[
    float,
    typer.Option("--max-cer", help="Highest character error rate that passes (Chinese).", rich_help_panel=PANEL_VERIFY),
]
MinSimilarityOpt = Annotated[
    float | None,
    typer.Option(
        "--min-similarity",
        help="Lowest speaker similarity that passes (default: 0.80 wavlm, 0.40 ecapa).",
        rich_help_panel=PANEL_VERIFY,
    ),
]
NoAsrCheckOpt = Annotated[
    bool, typer.Option("--no-asr-check", help="Skip the Whisper transcript check.", rich_help_panel=PANEL_VERIFY)
]
NoSpeakerCheckOpt = Annotated[
    bool,
    typer.Option("--no-speaker-check", help="Skip the speaker similarity check.", rich_help_panel=PANEL_VERIFY),
]
VerifyBatchSizeOpt = Annotated[
    int, typer.Option("--verify-batch-size", help="Clips per ASR / speaker batch.", rich_help_panel=PANEL_VERIFY)
]


def build_verify_options(
    *,
    no_verify: bool = False,
    strict: bool = _DEFAULT.strict,
    retries: int = _DEFAULT.retries,
    asr_backend: str = _DEFAULT.asr_backend,
    asr_model: str | None = None,
    speaker_backend: str = _DEFAULT.speaker_backend,
    speaker_model: str | None = None,
    max_wer: float = _DEFAULT.max_wer,
    max_cer: float = _DEFAULT.max_cer,
    min_similarity: float | None = None,
    no_asr_check: bool = False,
    no_speaker_check: bool = False,
    batch_size: int = _DEFAULT.batch_size,
) -> VerifyOptions:
    return VerifyOptions(
        enabled=not no_verify,
        strict=strict,
        retries=retries,
        check_asr=not no_asr_check,
        check_speaker=not no_speaker_check,
        asr_backend=asr_backend,
        asr_model=asr_model,
        speaker_backend=speaker_backend,
        speaker_model=speaker_model,
        batch_size=batch_size,
        max_wer=max_wer,
        max_cer=max_cer,
        min_similarity=min_similarity,
    )


# --- the command ---------------------------------------------------------------------


def verify(
    audio: Annotated[Path, typer.Argument(help="Audio file to check (any common format and sample rate).")],
    text: Annotated[str, typer.Option("--text", help="What the audio should say.")],
    voice: Annotated[
        str | None,
        typer.Option(
            "--voice",
            help="Reference clip or stored voice name for the speaker check (else skipped).",
            rich_help_panel=PANEL_MODELS,
        ),
    ] = None,
    codec: Annotated[
        str,
        typer.Option(
            "--codec", help="X-Codec2 id or folder, to decode a stored --voice.", rich_help_panel=PANEL_MODELS
        ),
    ] = _DEFAULT_ENGINE.codec,
    lang: LangOpt = "en",
    device: Annotated[
        str, typer.Option("--device", help="auto, cuda, mps or cpu.", rich_help_panel=PANEL_MODELS)
    ] = "auto",
    asr_backend: AsrBackendOpt = _DEFAULT.asr_backend,
    asr_model: AsrModelOpt = None,
    speaker_backend: SpeakerBackendOpt = _DEFAULT.speaker_backend,
    speaker_model: SpeakerModelOpt = None,
    max_wer: MaxWerOpt = _DEFAULT.max_wer,
    max_cer: MaxCerOpt = _DEFAULT.max_cer,
    min_similarity: MinSimilarityOpt = None,
    no_asr_check: NoAsrCheckOpt = False,
    no_speaker_check: NoSpeakerCheckOpt = False,
    hit_cap: Annotated[
        bool,
        typer.Option("--hit-cap", help="Treat the audio as having hit the token cap.", rich_help_panel=PANEL_VERIFY),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check one audio file against its text (and a reference voice); exit 4 when flagged."""
    from ..pipeline import verify_clip

    options = build_verify_options(
        asr_backend=asr_backend, asr_model=asr_model, speaker_backend=speaker_backend, speaker_model=speaker_model,
        max_wer=max_wer, max_cer=max_cer, min_similarity=min_similarity,
        no_asr_check=no_asr_check, no_speaker_check=no_speaker_check,
    )  # fmt: skip
    EngineOptions(codec=codec, device=device)  # validates --device like synth does
    result = verify_clip(
        audio, text, options, voice=voice, codec=codec, lang=lang, device=device, hit_cap=hit_cap, warn=warn
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        print_result(result)
    if not result.verdict.passed:
        raise typer.Exit(EXIT_FLAGGED)


def register(app: typer.Typer) -> None:
    """Add `verify` to the `llasa` app."""
    app.command("verify")(verify)


def print_result(result: ClipVerification) -> None:
    verdict = result.verdict
    status = "PASSED" if verdict.passed else "FLAGGED"
    typer.echo(f"{status} (score {verdict.score:.2f})")
    if verdict.transcript is not None:
        typer.echo(f"  transcript: {verdict.transcript!r}")
    for row in result.checks:
        mark = "ok" if row.passed else "FAIL"
        limit = f"({row.comparison} {row.limit:g})"
        line = f"  {mark:<4} {row.check:<14} {row.metric:<17} {row.value:>9.3f}  {limit}"
        if not row.passed:
            line += f"  {row.help}"
        typer.echo(line)
    for check, reason in result.skipped.items():
        typer.echo(f"  skip {check} check: {reason}")
