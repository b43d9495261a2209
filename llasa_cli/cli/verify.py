"""`llasa verify AUDIO --text "..."`: run the segment verifiers on one audio file.

The flag definitions are exported as `Annotated` aliases (and `build_verify_options`) so that
`synth` takes the same flags with the same defaults. Exit codes: 0 when every check passes,
EXIT_VERIFICATION_FAILED (4) when the audio is flagged, the domain error codes otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..options import EngineOptions, VerifyOptions
from .common import EXIT_FLAGGED as EXIT_VERIFICATION_FAILED
from .common import LangOpt, warn

# "Finished, but verification flagged something": `llasa verify` on failing audio, and (for the
# pipeline) a run that kept segments still failing after their retries.

_DEFAULT = VerifyOptions()
_DEFAULT_ENGINE = EngineOptions()

# --- flags shared with `synth` ---------------------------------------------------------

NoVerifyOpt = Annotated[bool, typer.Option("--no-verify", help="Do not check synthesised segments.")]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Fail the run when a segment still fails its checks after all retries.")
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", help="Regenerations (new seed) of a segment that fails its checks.")
]
AsrBackendOpt = Annotated[str, typer.Option("--asr-backend", help="openai-whisper or faster-whisper.")]
AsrModelOpt = Annotated[
    str | None,
    typer.Option(
        "--asr-model",
        help="Whisper model name, or local folder (openai-whisper: model.safetensors + dims.json; "
        "faster-whisper: a CTranslate2 folder). Default: turbo on CUDA, base elsewhere.",
    ),
]
SpeakerBackendOpt = Annotated[str, typer.Option("--speaker-backend", help="wavlm or ecapa (needs speechbrain).")]
SpeakerModelOpt = Annotated[
    str | None,
    typer.Option(
        "--speaker-model", help="Speaker model hub id or local folder (default: microsoft/wavlm-base-plus-sv)."
    ),
]
MaxWerOpt = Annotated[float, typer.Option("--max-wer", help="Highest word error rate that passes (English).")]
MaxCerOpt = Annotated[float, typer.Option("--max-cer", help="Highest character error rate that passes (Chinese).")]
MinSimilarityOpt = Annotated[
    float | None,
    typer.Option("--min-similarity", help="Lowest speaker similarity that passes (default: 0.80 wavlm, 0.40 ecapa)."),
]
NoAsrCheckOpt = Annotated[bool, typer.Option("--no-asr-check", help="Skip the Whisper transcript check.")]
NoSpeakerCheckOpt = Annotated[bool, typer.Option("--no-speaker-check", help="Skip the speaker similarity check.")]
VerifyBatchSizeOpt = Annotated[int, typer.Option("--verify-batch-size", help="Clips per ASR / speaker batch.")]


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
        typer.Option("--voice", help="Reference clip or stored voice name for the speaker check (else skipped)."),
    ] = None,
    codec: Annotated[
        str, typer.Option("--codec", help="X-Codec2 id or folder, to decode a stored --voice.")
    ] = _DEFAULT_ENGINE.codec,
    lang: LangOpt = "en",
    device: Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")] = "auto",
    asr_backend: AsrBackendOpt = _DEFAULT.asr_backend,
    asr_model: AsrModelOpt = None,
    speaker_backend: SpeakerBackendOpt = _DEFAULT.speaker_backend,
    speaker_model: SpeakerModelOpt = None,
    max_wer: MaxWerOpt = _DEFAULT.max_wer,
    max_cer: MaxCerOpt = _DEFAULT.max_cer,
    min_similarity: MinSimilarityOpt = None,
    no_asr_check: NoAsrCheckOpt = False,
    no_speaker_check: NoSpeakerCheckOpt = False,
    hit_cap: Annotated[bool, typer.Option("--hit-cap", help="Treat the audio as having hit the token cap.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check one audio file against its text (and a reference voice); exit 4 when flagged."""
    from ..engine.loading import pick_device
    from ..options import TextOptions
    from ..verify.composite import VerifyItem, load_verifier

    TextOptions(lang=lang)  # validates --lang
    options = build_verify_options(
        asr_backend=asr_backend, asr_model=asr_model, speaker_backend=speaker_backend, speaker_model=speaker_model,
        max_wer=max_wer, max_cer=max_cer, min_similarity=min_similarity,
        no_asr_check=no_asr_check, no_speaker_check=no_speaker_check,
    )  # fmt: skip
    EngineOptions(codec=codec, device=device)  # validates --device like synth does
    clip = read_input_audio(audio)
    device, notice = pick_device(device)
    if notice:
        warn(notice)
    reference = reference_audio(voice, codec, device) if voice and options.check_speaker else None
    verifier = load_verifier(options, device, reference, lang)
    verdict = verifier.verify([VerifyItem(text=text, audio=clip, hit_cap=hit_cap)])[0]
    skipped = _skipped(options, voice)
    if as_json:
        sys.stdout.write(json.dumps(verdict_json(verdict, options, lang, skipped), ensure_ascii=False) + "\n")
    else:
        print_verdict(verdict, options, lang, skipped)
    if not verdict.passed:
        raise typer.Exit(EXIT_VERIFICATION_FAILED)


def register(app: typer.Typer) -> None:
    """Add `verify` to the `llasa` app."""
    app.command("verify")(verify)


def _skipped(options: VerifyOptions, voice: str | None) -> dict[str, str]:
    skipped = {}
    if not options.check_asr:
        skipped["asr"] = "--no-asr-check"
    if not options.check_speaker:
        skipped["speaker"] = "--no-speaker-check"
    elif not voice:
        skipped["speaker"] = "no --voice given"
    return skipped


def read_input_audio(path: Path) -> Any:
    """The audio to verify, with input-file exit codes (10 missing, 11 folder, 14 empty, 12 unreadable)."""
    from ..audio.audio_io import load_audio
    from ..errors import InputDecodeError, InputEmptyError, InputIsDirectoryError, InputNotFoundError, VoiceError

    if not path.exists():
        raise InputNotFoundError(f"audio file not found: {path}")
    if path.is_dir():
        raise InputIsDirectoryError(f"{path} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputEmptyError(f"audio file is empty (0 bytes): {path}")
    try:
        return load_audio(path)
    except VoiceError as exc:
        raise InputDecodeError(str(exc)) from exc


def reference_audio(voice: str, codec: str, device: str) -> Any:
    """A reference clip's audio, or a stored voice's codes decoded with the codec."""
    from ..audio.audio_io import load_audio
    from ..voices.store import VoiceStore

    path = Path(voice).expanduser()
    if path.exists() or voice not in VoiceStore().names():
        return load_audio(path)  # VoiceError (exit 23) names a missing or unreadable clip
    from ..engine.loading import load_codec

    codes = VoiceStore().get(voice).codes
    return load_codec(codec, device).decode([codes])[0]


# --- output --------------------------------------------------------------------------


def check_rows(verdict: Any, options: VerifyOptions, lang: str) -> list[dict[str, Any]]:
    """One row per check that ran: name, metric, value, comparison, limit, passed."""
    from ..verify.composite import failure_limits

    rows = []
    for name, (metric, comparison, limit) in failure_limits(options, lang).items():
        if metric not in verdict.metrics:
            continue
        value = float(verdict.metrics[metric])
        rows.append(
            {"check": name, "metric": metric, "value": round(value, 6), "comparison": comparison, "limit": limit,
             "passed": name not in verdict.failures}
        )  # fmt: skip
    return rows


def verdict_json(verdict: Any, options: VerifyOptions, lang: str, skipped: dict[str, str]) -> dict[str, Any]:
    data = verdict.to_dict()
    data["checks"] = check_rows(verdict, options, lang)
    data["skipped"] = skipped
    return data


def print_verdict(verdict: Any, options: VerifyOptions, lang: str, skipped: dict[str, str]) -> None:
    from ..verify.composite import FAILURE_HELP

    status = "PASSED" if verdict.passed else "FLAGGED"
    typer.echo(f"{status} (score {verdict.score:.2f})")
    if verdict.transcript is not None:
        typer.echo(f"  transcript: {verdict.transcript!r}")
    for row in check_rows(verdict, options, lang):
        mark = "ok" if row["passed"] else "FAIL"
        limit = f"({row['comparison']} {row['limit']:g})"
        line = f"  {mark:<4} {row['check']:<14} {row['metric']:<17} {row['value']:>9.3f}  {limit}"
        if not row["passed"]:
            line += f"  {FAILURE_HELP[row['check']]}"
        typer.echo(line)
    for check, reason in skipped.items():
        typer.echo(f"  skip {check} check: {reason}")
