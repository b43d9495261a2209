"""`llasa synth`: flags -> option dataclasses -> `llasa_cli.pipeline.run.synthesize`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS, SAMPLE_RATE
from ..errors import InvalidOptionError
from ..options import EngineOptions, SamplingOptions, StitchOptions, VerifyOptions, parse_batch_size
from ..pipeline.run import RunRequest
from ..search.segment_search import ScoreWeights, SearchOptions
from ..text.manuscript import Manuscript
from .common import (
    EXIT_FLAGGED,
    EXIT_OK,
    EXIT_PARTIAL,
    ChapterPatternOpt,
    EncodingOpt,
    LangOpt,
    LexiconOpt,
    MaxSegOpt,
    NoChaptersOpt,
    NoNormalizeOpt,
    NoSpeakTitlesOpt,
    build_text_options,
    warn,
)
from .verify import (
    AsrBackendOpt,
    AsrModelOpt,
    MaxCerOpt,
    MaxWerOpt,
    MinSimilarityOpt,
    NoAsrCheckOpt,
    NoSpeakerCheckOpt,
    NoVerifyOpt,
    RetriesOpt,
    SpeakerBackendOpt,
    SpeakerModelOpt,
    StrictOpt,
    VerifyBatchSizeOpt,
    build_verify_options,
)

ACX = "acx"


@dataclass(frozen=True)
class OutputMode:
    json: bool
    quiet: bool
    interactive: bool


_DEFAULT_SAMPLING = SamplingOptions()
_DEFAULT_ENGINE = EngineOptions()
_DEFAULT_STITCH = StitchOptions()
_DEFAULT_VERIFY = VerifyOptions()
_DEFAULT_SEARCH = SearchOptions()

_MODELS = "Models and device"
_SAMPLING = "Sampling"
_AUDIO = "Audio output"


def synth(
    file: Annotated[str | None, typer.Argument(help="Manuscript (.txt or .md), or - for standard input.")] = None,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Output folder, or - for one WAV stream on stdout.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Speak this line instead of a file.")] = None,
    voice: Annotated[
        str | None, typer.Option("--voice", help="Narrator: a clip (wav, flac, mp3...) or a stored voice name.")
    ] = None,
    voice_text: Annotated[str | None, typer.Option("--voice-text", help="What the voice clip says.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and stop.")] = False,
    work_dir: Annotated[
        str | None, typer.Option("--work-dir", help="Job folder for resuming (default: OUTPUT/.llasa).")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Stop cleanly after this long; rerun to continue.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines events on standard output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings, errors and a partial summary.")] = False,
    encoding: EncodingOpt = None,
    lang: LangOpt = "en",
    no_normalize: NoNormalizeOpt = False,
    no_chapters: NoChaptersOpt = False,
    chapter_pattern: ChapterPatternOpt = None,
    no_speak_titles: NoSpeakTitlesOpt = False,
    lexicon: LexiconOpt = None,
    max_segment_seconds: MaxSegOpt = DEFAULT_MAX_SEGMENT_SECONDS,
    model: Annotated[
        str, typer.Option("--model", help="1b, 3b, 8b, a Hugging Face id or a local folder.", rich_help_panel=_MODELS)
    ] = _DEFAULT_ENGINE.model,
    codec: Annotated[
        str, typer.Option("--codec", help="X-Codec2 Hugging Face id or local folder.", rich_help_panel=_MODELS)
    ] = _DEFAULT_ENGINE.codec,
    device: Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")] = _DEFAULT_ENGINE.device,
    dtype: Annotated[str, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")] = _DEFAULT_ENGINE.dtype,
    batch_size: Annotated[
        str,
        typer.Option("--batch-size", metavar="<int|auto>", help="Segments per batch, or 'auto': from free GPU memory."),
    ] = str(_DEFAULT_ENGINE.batch_size),
    overlap: Annotated[
        bool | None,
        typer.Option(
            "--overlap/--no-overlap",
            help="Decode and verify a batch while the next one generates (default: on CUDA only).",
            show_default=False,
        ),
    ] = _DEFAULT_ENGINE.overlap,
    temperature: Annotated[float, typer.Option("--temperature")] = _DEFAULT_SAMPLING.temperature,
    top_p: Annotated[float, typer.Option("--top-p")] = _DEFAULT_SAMPLING.top_p,
    top_k: Annotated[int, typer.Option("--top-k", help="0 turns top-k off.")] = _DEFAULT_SAMPLING.top_k,
    repetition_penalty: Annotated[float, typer.Option("--repetition-penalty")] = _DEFAULT_SAMPLING.repetition_penalty,
    seed: Annotated[int, typer.Option("--seed", help="Run seed; each segment derives its own.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="wav, flac, mp3, opus or m4b (one audiobook).")] = (
        _DEFAULT_STITCH.format
    ),
    sample_rate: Annotated[int, typer.Option("--sample-rate", help="Output sample rate in Hz.")] = SAMPLE_RATE,
    loudness: Annotated[str, typer.Option("--loudness", help="Target integrated loudness in LUFS, or 'off'.")] = str(
        _DEFAULT_STITCH.loudness_lufs
    ),
    sentence_pause: Annotated[float, typer.Option("--sentence-pause")] = _DEFAULT_STITCH.sentence_pause,
    paragraph_pause: Annotated[float, typer.Option("--paragraph-pause")] = _DEFAULT_STITCH.paragraph_pause,
    title_pause: Annotated[float, typer.Option("--title-pause")] = _DEFAULT_STITCH.title_pause,
    chapter_pause: Annotated[float, typer.Option("--chapter-pause")] = _DEFAULT_STITCH.chapter_pause,
    subtitles: Annotated[
        bool, typer.Option("--subtitles", help="Write SRT, WebVTT and a JSON manifest beside each chapter.")
    ] = False,
    keep_front_matter: Annotated[
        bool, typer.Option("--keep-front-matter", help="EPUB: keep copyright pages, contents and the like.")
    ] = False,
    title: Annotated[str | None, typer.Option("--title", help="Book title (m4b metadata).")] = None,
    author: Annotated[str | None, typer.Option("--author")] = None,
    narrator: Annotated[str | None, typer.Option("--narrator")] = None,
    year: Annotated[int | None, typer.Option("--year")] = None,
    genre: Annotated[str | None, typer.Option("--genre")] = None,
    cover: Annotated[str | None, typer.Option("--cover", help="Cover image (JPEG or PNG) for m4b.")] = None,
    no_verify: NoVerifyOpt = False,
    strict: StrictOpt = False,
    retries: RetriesOpt = _DEFAULT_VERIFY.retries,
    asr_backend: AsrBackendOpt = _DEFAULT_VERIFY.asr_backend,
    asr_model: AsrModelOpt = None,
    speaker_backend: SpeakerBackendOpt = _DEFAULT_VERIFY.speaker_backend,
    speaker_model: SpeakerModelOpt = None,
    max_wer: MaxWerOpt = _DEFAULT_VERIFY.max_wer,
    max_cer: MaxCerOpt = _DEFAULT_VERIFY.max_cer,
    min_similarity: MinSimilarityOpt = None,
    no_asr_check: NoAsrCheckOpt = False,
    no_speaker_check: NoSpeakerCheckOpt = False,
    verify_batch_size: VerifyBatchSizeOpt = _DEFAULT_VERIFY.batch_size,
    beam: Annotated[
        int, typer.Option("--beam", help="Verifier-guided beam search with N beams (1: plain sampling).")
    ] = 1,
    best_of: Annotated[int, typer.Option("--best-of", help="Sample N complete takes, keep the best.")] = 1,
    beam_candidates: Annotated[
        int, typer.Option("--beam-candidates", help="Continuations sampled per beam and step.")
    ] = _DEFAULT_SEARCH.beam_candidates,
    beam_step_seconds: Annotated[
        float, typer.Option("--beam-step-seconds", help="Speech added per beam step before pruning.")
    ] = _DEFAULT_SEARCH.beam_step_seconds,
    score_weights: Annotated[
        str | None, typer.Option("--score-weights", help="Ranking weights, e.g. asr=0.5,speaker=0.3,signal=0.2.")
    ] = None,
) -> None:
    """Synthesise a manuscript into one audio file per chapter."""
    text_options = build_text_options(
        lang, no_normalize, no_chapters, chapter_pattern, no_speak_titles, lexicon, max_segment_seconds
    )
    request = RunRequest(
        source=_source(file, text),
        inline_text=text,
        output=output or _default_output(file, text),
        encoding=encoding,
        voice=voice,
        voice_text=voice_text,
        dry_run=dry_run,
        work_dir=work_dir,
        keep_front_matter=keep_front_matter,
        metadata={
            k: v
            for k, v in dict(title=title, author=author, narrator=narrator, year=year, genre=genre, cover=cover).items()
            if v is not None
        },
        text=text_options,
        sampling=SamplingOptions(
            temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty, seed=seed
        ),
        engine=EngineOptions(
            model=model,
            codec=codec,
            device=device,
            dtype=dtype,
            batch_size=parse_batch_size(batch_size),
            overlap=overlap,
        ),
        verify=build_verify_options(
            no_verify=no_verify,
            strict=strict,
            retries=retries,
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
        ),
        search=SearchOptions(
            beam=beam,
            best_of=best_of,
            beam_candidates=beam_candidates,
            beam_step_seconds=beam_step_seconds,
            score_weights=ScoreWeights.parse(score_weights) if score_weights else ScoreWeights(),
        ),
        stitch=StitchOptions(
            sentence_pause=sentence_pause,
            paragraph_pause=paragraph_pause,
            title_pause=title_pause,
            chapter_pause=chapter_pause,
            loudness_lufs=None if loudness.strip().lower() == ACX else _parse_loudness(loudness),
            acx=loudness.strip().lower() == ACX,
            subtitles=subtitles,
            format=fmt,
            sample_rate=sample_rate,
        ),
    )
    mode = OutputMode(json=as_json, quiet=quiet, interactive=sys.stderr.isatty())
    raise typer.Exit(_execute(request, mode, max_minutes))


def _execute(
    request: RunRequest, output_mode: OutputMode, max_minutes: float | None, manuscript: Manuscript | None = None
) -> int:
    from ..pipeline.run import (
        RunLog,
        check_request,
        load_models,
        load_plan,
        new_worker_id,
        open_job,
        open_sink,
        read_input,
        resolve_voice,
        run_events,
        work_dir_of,
        worker_alive,
    )
    from ..pipeline.stop import StopController
    from ..pipeline.synthesizer import RunContext
    from .plan_view import print_plan
    from .progress import HumanReporter, JsonReporter

    check_request(request, output_mode.json)
    manuscript = manuscript or read_input(request)
    plan = load_plan(request, manuscript)
    if request.dry_run:
        for message in (*manuscript.warnings, *plan.warnings):
            warn(message)
        print_plan(plan)
        return EXIT_OK
    reporter = (
        JsonReporter(plan) if output_mode.json else HumanReporter(plan, output_mode.interactive, output_mode.quiet)
    )
    for message in (*manuscript.warnings, *plan.warnings):
        reporter.warn(message)
    with open_job(request, manuscript) as store, StopController(max_minutes, notify=reporter.warn) as stop:
        models = load_models(request.engine, request.sampling)
        if models.notice:
            reporter.warn(models.notice)
        voice = resolve_voice(request, models, warn=reporter.warn)
        context = RunContext(
            store=store,
            worker=new_worker_id(),
            stop_reason=stop.stop_reason,
            log=RunLog(work_dir_of(request)),
            worker_alive=worker_alive,
        )
        try:
            for event in run_events(request, plan, models, voice, open_sink(request, manuscript), context):
                reporter.update(event)
        finally:
            reporter.finish()
    summary = reporter.tally.summary()
    if summary["status"] == "partial":
        return EXIT_PARTIAL
    return EXIT_FLAGGED if summary["segments_flagged"] or summary["chapters_held"] else EXIT_OK


def _source(file: str | None, text: str | None) -> str:
    if file and text:
        raise InvalidOptionError("give either a FILE or --text, not both")
    if not file and text is None:
        raise InvalidOptionError("give a manuscript FILE (or - for standard input), or --text")
    return file or "<text>"


def _default_output(file: str | None, text: str | None) -> str:
    if text is not None or file == "-":
        return "llasa-out"
    return f"{Path(file or 'llasa').stem}-audio"


def _parse_loudness(value: str) -> float | None:
    if value.strip().lower() in ("off", "none"):
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidOptionError(f"--loudness must be a number of LUFS or 'off', not {value!r}") from exc


def register(app: typer.Typer) -> None:
    app.command()(synth)
