"""`llasa scaling FILE`: is --beam or --best-of worth its compute on this book? A thin layer over
`pipeline.scaling.measure_scaling`: each setting's line on standard error as it ends, then the
table and the recommendation (or, with --json, the report scaling.json holds) on standard output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS
from ..options import (
    DEFAULT_SCALING_MARGIN,
    DEFAULT_SCALING_SAMPLE,
    DEFAULT_SCALING_WIDTHS,
    EngineOptions,
    SamplingOptions,
    ScalingOptions,
    ScoreWeights,
    SearchOptions,
    VerifyOptions,
    parse_batch_size,
    parse_widths,
)
from .common import (
    BatchSizeOpt,
    BeamCandidatesOpt,
    BeamStepSecondsOpt,
    ChapterPatternOpt,
    CodecOpt,
    DeviceOpt,
    DtypeOpt,
    EncodingOpt,
    KeepFrontMatterOpt,
    LangOpt,
    LexiconOpt,
    MaxSegOpt,
    ModelOpt,
    NoChaptersOpt,
    NoNormalizeOpt,
    RepetitionPenaltyOpt,
    ScoreWeightsOpt,
    SeedOpt,
    TemperatureOpt,
    TopKOpt,
    TopPOpt,
    VoiceOpt,
    VoiceTextOpt,
    build_text_options,
    warn,
)
from .verify import (
    AsrBackendOpt,
    AsrModelOpt,
    MaxCerOpt,
    MaxOmittedWordsOpt,
    MaxRepeatedWordsOpt,
    MaxWerOpt,
    MaxWordsAfterEndOpt,
    MinSimilarityOpt,
    MinSnrOpt,
    NoAsrCheckOpt,
    NoPaceCheckOpt,
    NoSpeakerCheckOpt,
    PaceFactorOpt,
    SpeakerBackendOpt,
    SpeakerModelOpt,
    VerifyBatchSizeOpt,
    build_verify_options,
)

if TYPE_CHECKING:
    from ..pipeline.scaling import ScalingReport, SettingResult

_ENGINE = EngineOptions()
_SAMPLING = SamplingOptions()
_SEARCH = SearchOptions()
_VERIFY = VerifyOptions()


def scaling(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Manuscript (.txt, .md or .epub).", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Folder for scaling.json and scaling.png (default: STEM-scaling)."),
    ] = None,
    sample: Annotated[
        int, typer.Option("--sample", help="Segments to measure, spread over the book (seeded by --seed).")
    ] = DEFAULT_SCALING_SAMPLE,
    widths: Annotated[
        str, typer.Option("--n", metavar="LIST", help="Search widths to try, e.g. 1,2,4,8 (1: plain sampling).")
    ] = ",".join(map(str, DEFAULT_SCALING_WIDTHS)),
    mode: Annotated[str, typer.Option("--mode", help="beam, best-of or both.")] = "both",
    margin: Annotated[
        float, typer.Option("--margin", help="Recommend the cheapest setting within this of the best mean score.")
    ] = DEFAULT_SCALING_MARGIN,
    encoding: EncodingOpt = None,
    keep_front_matter: KeepFrontMatterOpt = False,
    lang: LangOpt = "en",
    no_normalize: NoNormalizeOpt = False,
    no_chapters: NoChaptersOpt = False,
    chapter_pattern: ChapterPatternOpt = None,
    lexicon: LexiconOpt = None,
    max_segment_seconds: MaxSegOpt = DEFAULT_MAX_SEGMENT_SECONDS,
    model: ModelOpt = _ENGINE.model,
    codec: CodecOpt = _ENGINE.codec,
    device: DeviceOpt = _ENGINE.device,
    dtype: DtypeOpt = _ENGINE.dtype,
    batch_size: BatchSizeOpt = str(_ENGINE.batch_size),
    voice: VoiceOpt = None,
    voice_text: VoiceTextOpt = None,
    temperature: TemperatureOpt = _SAMPLING.temperature,
    top_p: TopPOpt = _SAMPLING.top_p,
    top_k: TopKOpt = _SAMPLING.top_k,
    repetition_penalty: RepetitionPenaltyOpt = _SAMPLING.repetition_penalty,
    seed: SeedOpt = _SAMPLING.seed,
    beam_candidates: BeamCandidatesOpt = _SEARCH.beam_candidates,
    beam_step_seconds: BeamStepSecondsOpt = _SEARCH.beam_step_seconds,
    score_weights: ScoreWeightsOpt = None,
    asr_backend: AsrBackendOpt = _VERIFY.asr_backend,
    asr_model: AsrModelOpt = None,
    speaker_backend: SpeakerBackendOpt = _VERIFY.speaker_backend,
    speaker_model: SpeakerModelOpt = None,
    max_wer: MaxWerOpt = _VERIFY.max_wer,
    max_cer: MaxCerOpt = _VERIFY.max_cer,
    min_similarity: MinSimilarityOpt = None,
    no_asr_check: NoAsrCheckOpt = False,
    no_speaker_check: NoSpeakerCheckOpt = False,
    verify_batch_size: VerifyBatchSizeOpt = _VERIFY.batch_size,
    no_pace_check: NoPaceCheckOpt = False,
    pace_factor: PaceFactorOpt = _VERIFY.pace_factor,
    max_omitted_words: MaxOmittedWordsOpt = _VERIFY.max_omitted_words,
    max_repeated_words: MaxRepeatedWordsOpt = _VERIFY.max_repeated_words,
    max_words_after_end: MaxWordsAfterEndOpt = _VERIFY.max_words_after_end,
    min_snr: MinSnrOpt = _VERIFY.min_snr_db,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Measure what --beam N and --best-of N buy on a sample of a book: WER, speaker similarity,
    flagged share and score against real-time factor; writes scaling.json and scaling.png."""
    from ..pipeline import RunRequest
    from ..pipeline.scaling import measure_scaling

    options = ScalingOptions(sample=sample, widths=parse_widths(widths), mode=mode, margin=margin)
    outdir = output or Path(f"{Path(file).stem}-scaling")
    request = RunRequest(
        source=file,
        output=str(outdir),
        encoding=encoding,
        voice=voice,
        voice_text=voice_text,
        keep_front_matter=keep_front_matter,
        text=build_text_options(
            lang, no_normalize, no_chapters, chapter_pattern, lexicon=lexicon, max_segment_seconds=max_segment_seconds
        ),
        sampling=SamplingOptions(
            temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty, seed=seed
        ),
        engine=EngineOptions(
            model=model, codec=codec, device=device, dtype=dtype, batch_size=parse_batch_size(batch_size)
        ),
        verify=build_verify_options(
            asr_backend=asr_backend,
            asr_model=asr_model,
            speaker_backend=speaker_backend,
            speaker_model=speaker_model,
            max_wer=max_wer,
            max_cer=max_cer,
            min_similarity=min_similarity,
            no_asr_check=no_asr_check,
            no_speaker_check=no_speaker_check,
            batch_size=verify_batch_size,
            no_pace_check=no_pace_check,
            pace_factor=pace_factor,
            max_omitted_words=max_omitted_words,
            max_repeated_words=max_repeated_words,
            max_words_after_end=max_words_after_end,
            min_snr=min_snr,
        ),  # fmt: skip
        search=SearchOptions(
            beam_candidates=beam_candidates,
            beam_step_seconds=beam_step_seconds,
            score_weights=ScoreWeights.parse(score_weights) if score_weights else ScoreWeights(),
        ),
    )
    report = measure_scaling(request, options, outdir, warn=warn, on_result=_progress)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        return
    print_report(report, outdir)


def _progress(result: SettingResult) -> None:
    typer.echo(f"llasa: measured {result.setting.label} ({result.compute.wall_seconds:.1f} s)", err=True)


def print_report(report: ScalingReport, outdir: Path) -> None:
    rows = [("setting", "score", "WER", "similarity", "flagged", "LM tokens/seg", "RTF")]
    for r in report.results:
        rows.append(
            (
                r.setting.label,
                f"{r.mean_score:.3f}",
                _maybe(r.mean_error_rate),
                _maybe(r.mean_similarity),
                f"{100 * r.flagged_share:.0f}%",
                f"{r.lm_tokens_per_segment:.0f}",
                f"{r.rtf:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        typer.echo("  ".join(cells))
    segments = len(report.results[0].segments)
    typer.echo(f"\n{segments} segments; {report.summary()}")
    from ..pipeline.scaling import SCALING_JSON, SCALING_PNG

    typer.echo(f"wrote {outdir / SCALING_JSON} and {outdir / SCALING_PNG}")


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    app.command()(scaling)
