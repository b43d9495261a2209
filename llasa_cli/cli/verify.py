"""`llasa verify AUDIO --text "..."`: run the segment verifiers on one audio file;
`llasa verify --manifest FILE.tsv`: on every clip a manifest lists, the models loaded once.

The flag definitions are exported as `Annotated` aliases (and `build_verify_options`) so that
`synth` takes the same flags with the same defaults. Exit codes: 0 when every check passes,
EXIT_FLAGGED (4) when the audio (any row of a manifest) is flagged, the domain error codes otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import InvalidOptionError
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
    typer.Option(
        "--speaker-backend",
        help="wavlm, resemblyzer (offline, its weights ship with `pip install --no-deps resemblyzer`) "
        "or ecapa (needs speechbrain).",
        rich_help_panel=PANEL_VERIFY,
    ),
]
SpeakerModelOpt = Annotated[
    str | None,
    typer.Option(
        "--speaker-model",
        help="Speaker model hub id or local folder (default: microsoft/wavlm-base-plus-sv); "
        "for resemblyzer, a weights file (default: the package's own).",
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
        help="Lowest speaker similarity that passes (default: 0.80 wavlm, 0.80 resemblyzer, 0.40 ecapa).",
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
NoPaceCheckOpt = Annotated[
    bool,
    typer.Option("--no-pace-check", help="Skip the check against the narrator's pace.", rich_help_panel=PANEL_VERIFY),
]
PaceFactorOpt = Annotated[
    float,
    typer.Option(
        "--pace-factor",
        help="Flag speech longer than this times the length the narrator's pace predicts, or shorter than it "
        "over this.",
        rich_help_panel=PANEL_VERIFY,
    ),
]
MaxOmittedWordsOpt = Annotated[
    int,
    typer.Option(
        "--max-omitted-words",
        help="Most consecutive words of the text that may be missing.",
        rich_help_panel=PANEL_VERIFY,
    ),
]
MaxRepeatedWordsOpt = Annotated[
    int,
    typer.Option(
        "--max-repeated-words",
        help="Longest phrase that may be said again at once when the text does not repeat it (a loop).",
        rich_help_panel=PANEL_VERIFY,
    ),
]
MaxWordsAfterEndOpt = Annotated[
    int,
    typer.Option(
        "--max-words-after-end", help="Most words heard after the text's last word.", rich_help_panel=PANEL_VERIFY
    ),
]
MinSnrOpt = Annotated[
    float,
    typer.Option(
        "--min-snr", help="Lowest estimated signal-to-noise ratio (dB) that passes.", rich_help_panel=PANEL_VERIFY
    ),
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
    no_pace_check: bool = False,
    pace_factor: float = _DEFAULT.pace_factor,
    max_omitted_words: int = _DEFAULT.max_omitted_words,
    max_repeated_words: int = _DEFAULT.max_repeated_words,
    max_words_after_end: int = _DEFAULT.max_words_after_end,
    min_snr: float = _DEFAULT.min_snr_db,
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
        check_pace=not no_pace_check,
        pace_factor=pace_factor,
        max_omitted_words=max_omitted_words,
        max_repeated_words=max_repeated_words,
        max_words_after_end=max_words_after_end,
        min_snr_db=min_snr,
    )


# --- the command ---------------------------------------------------------------------


def verify(
    audio: Annotated[
        Path | None, typer.Argument(help="Audio file to check (any common format and sample rate).")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="What the audio should say.")] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="Check every clip a TSV lists instead: audio<TAB>text[<TAB>voice] per line, paths relative "
            "to the file; the models load once.",
        ),
    ] = None,
    voice: Annotated[
        str | None,
        typer.Option(
            "--voice",
            help="Reference clip or stored voice name for the speaker and pace checks (else skipped); "
            "with --manifest, for rows that name none.",
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
    no_pace_check: NoPaceCheckOpt = False,
    pace_factor: PaceFactorOpt = _DEFAULT.pace_factor,
    max_omitted_words: MaxOmittedWordsOpt = _DEFAULT.max_omitted_words,
    max_repeated_words: MaxRepeatedWordsOpt = _DEFAULT.max_repeated_words,
    max_words_after_end: MaxWordsAfterEndOpt = _DEFAULT.max_words_after_end,
    min_snr: MinSnrOpt = _DEFAULT.min_snr_db,
    batch_size: VerifyBatchSizeOpt = _DEFAULT.batch_size,
    hit_cap: Annotated[
        bool,
        typer.Option("--hit-cap", help="Treat the audio as having hit the token cap.", rich_help_panel=PANEL_VERIFY),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (with --manifest, one line per row).")
    ] = False,
) -> None:
    """Check audio against its text (and a reference voice); exit 4 when flagged."""
    options = build_verify_options(
        asr_backend=asr_backend, asr_model=asr_model, speaker_backend=speaker_backend, speaker_model=speaker_model,
        max_wer=max_wer, max_cer=max_cer, min_similarity=min_similarity,
        no_asr_check=no_asr_check, no_speaker_check=no_speaker_check, batch_size=batch_size,
        no_pace_check=no_pace_check, pace_factor=pace_factor, max_omitted_words=max_omitted_words,
        max_repeated_words=max_repeated_words, max_words_after_end=max_words_after_end, min_snr=min_snr,
    )  # fmt: skip
    EngineOptions(codec=codec, device=device)  # validates --device like synth does
    _check_inputs(audio, text, manifest, hit_cap)
    if manifest is not None:
        flagged = _verify_manifest(manifest, options, voice, codec, lang, device, as_json)
    else:
        assert audio is not None and text is not None
        flagged = _verify_one(audio, text, options, voice, codec, lang, device, hit_cap, as_json)
    if flagged:
        raise typer.Exit(EXIT_FLAGGED)


def _check_inputs(audio: Path | None, text: str | None, manifest: Path | None, hit_cap: bool) -> None:
    """One clip with its --text, or --manifest alone."""
    if manifest is not None:
        if audio is not None or text is not None:
            raise InvalidOptionError("--manifest lists the clips and their texts: give no AUDIO or --text with it")
        if hit_cap:
            raise InvalidOptionError("--hit-cap describes one clip and cannot be used with --manifest")
    elif audio is None or text is None:
        raise InvalidOptionError("give an AUDIO file and its --text, or --manifest FILE.tsv")


def _verify_one(
    audio: Path, text: str, options: VerifyOptions, voice: str | None, codec: str, lang: str, device: str,
    hit_cap: bool, as_json: bool,
) -> bool:  # fmt: skip
    from ..pipeline import verify_clip

    result = verify_clip(
        audio, text, options, voice=voice, codec=codec, lang=lang, device=device, hit_cap=hit_cap, warn=warn
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        print_result(result)
    return not result.verdict.passed


def _verify_manifest(
    manifest: Path, options: VerifyOptions, voice: str | None, codec: str, lang: str, device: str, as_json: bool
) -> bool:
    """Each row's result as it comes (one JSON line with --json); whether any row was flagged."""
    from ..pipeline.checks import verify_manifest

    flagged = 0
    rows = 0
    for row in verify_manifest(manifest, options, voice=voice, codec=codec, lang=lang, device=device, warn=warn):
        rows += 1
        flagged += not row.result.verdict.passed
        if as_json:
            sys.stdout.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            typer.echo(f"line {row.row.line}: {row.row.audio}")
            print_result(row.result)
    if not as_json:
        typer.echo(f"{rows} clips, {flagged} flagged")
    return flagged > 0


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
