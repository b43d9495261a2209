"""`llasa synth`: flags -> option dataclasses -> `pipeline.synthesize`, its events shown as they come.

`execute` runs a request and shows its events; `llasa redo` runs through it too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS, SAMPLE_RATE
from ..errors import InvalidOptionError
from ..options import (
    EngineOptions,
    SamplingOptions,
    ScoreWeights,
    SearchOptions,
    StitchOptions,
    VerifyOptions,
    WorkerOptions,
    parse_batch_size,
    parse_devices,
)
from .common import (
    EXIT_FLAGGED,
    EXIT_OK,
    EXIT_PARTIAL,
    PANEL_AUDIO,
    PANEL_INPUT,
    PANEL_JOB,
    PANEL_MODELS,
    PANEL_SEARCH,
    BatchSizeOpt,
    BeamCandidatesOpt,
    BeamStepSecondsOpt,
    ChapterPatternOpt,
    CodecOpt,
    DeviceOpt,
    DialogueVoiceOpt,
    DtypeOpt,
    EncodingOpt,
    KeepFrontMatterOpt,
    LangOpt,
    LexiconOpt,
    MaxSegOpt,
    ModelOpt,
    NoChaptersOpt,
    NoNormalizeOpt,
    NoSpeakTitlesOpt,
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
    NoVerifyOpt,
    PaceFactorOpt,
    RetriesOpt,
    SpeakerBackendOpt,
    SpeakerModelOpt,
    StrictOpt,
    VerifyBatchSizeOpt,
    build_verify_options,
)

if TYPE_CHECKING:
    from ..pipeline import RunRequest
    from ..text.manuscript import Manuscript

ACX = "acx"
LOUDNESS_OFF = ("off", "none")


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


def _opt(*names: str, help: str, panel: str, **kwargs: Any) -> Any:
    """A `typer.Option` shown under `panel` in `llasa synth --help`."""
    return typer.Option(*names, help=help, rich_help_panel=panel, **kwargs)


def synth(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILE",
            help="Manuscript (.txt, .md or .epub), or - for standard input. Several files, a folder or a "
            "quoted glob make a library: one book per manuscript in OUTPUT/<book-slug>/.",
            show_default=False,
        ),
    ] = None,
    text: Annotated[str | None, _opt("--text", help="Speak this line instead of a file.", panel=PANEL_INPUT)] = None,
    keep_front_matter: KeepFrontMatterOpt = False,
    encoding: EncodingOpt = None,
    lang: LangOpt = "en",
    no_normalize: NoNormalizeOpt = False,
    no_chapters: NoChaptersOpt = False,
    chapter_pattern: ChapterPatternOpt = None,
    no_speak_titles: NoSpeakTitlesOpt = False,
    lexicon: LexiconOpt = None,
    max_segment_seconds: MaxSegOpt = DEFAULT_MAX_SEGMENT_SECONDS,
    dialogue_voice: DialogueVoiceOpt = None,
    model: ModelOpt = _DEFAULT_ENGINE.model,
    codec: CodecOpt = _DEFAULT_ENGINE.codec,
    device: DeviceOpt = _DEFAULT_ENGINE.device,
    dtype: DtypeOpt = _DEFAULT_ENGINE.dtype,
    batch_size: BatchSizeOpt = str(_DEFAULT_ENGINE.batch_size),
    overlap: Annotated[
        bool | None,
        _opt(
            "--overlap/--no-overlap",
            help="Decode and verify a batch while the next one generates (default: on CUDA only).",
            show_default=False,
            panel=PANEL_MODELS,
        ),
    ] = _DEFAULT_ENGINE.overlap,
    voice: VoiceOpt = None,
    cast: Annotated[
        Path | None,
        _opt(
            "--cast",
            metavar="FILE",
            help="YAML file of characters' voices (clips or stored names), over the front matter's cast.",
            panel=PANEL_MODELS,
        ),
    ] = None,
    voice_text: VoiceTextOpt = None,
    temperature: TemperatureOpt = _DEFAULT_SAMPLING.temperature,
    top_p: TopPOpt = _DEFAULT_SAMPLING.top_p,
    top_k: TopKOpt = _DEFAULT_SAMPLING.top_k,
    repetition_penalty: RepetitionPenaltyOpt = _DEFAULT_SAMPLING.repetition_penalty,
    seed: SeedOpt = _DEFAULT_SAMPLING.seed,
    beam: Annotated[
        int, _opt("--beam", help="Verifier-guided beam search with N beams (1: plain sampling).", panel=PANEL_SEARCH)
    ] = _DEFAULT_SEARCH.beam,
    best_of: Annotated[
        int, _opt("--best-of", help="Sample N complete takes, keep the best.", panel=PANEL_SEARCH)
    ] = _DEFAULT_SEARCH.best_of,
    beam_candidates: BeamCandidatesOpt = _DEFAULT_SEARCH.beam_candidates,
    beam_step_seconds: BeamStepSecondsOpt = _DEFAULT_SEARCH.beam_step_seconds,
    score_weights: ScoreWeightsOpt = None,
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
    no_pace_check: NoPaceCheckOpt = False,
    pace_factor: PaceFactorOpt = _DEFAULT_VERIFY.pace_factor,
    max_omitted_words: MaxOmittedWordsOpt = _DEFAULT_VERIFY.max_omitted_words,
    max_repeated_words: MaxRepeatedWordsOpt = _DEFAULT_VERIFY.max_repeated_words,
    max_words_after_end: MaxWordsAfterEndOpt = _DEFAULT_VERIFY.max_words_after_end,
    min_snr: MinSnrOpt = _DEFAULT_VERIFY.min_snr_db,
    output: Annotated[
        str | None,
        _opt(
            "-o",
            "--output",
            help="Output folder (default: STEM-audio, e.g. book-audio for book.epub; llasa-out for --text), "
            "or - for one WAV stream on stdout.",
            panel=PANEL_AUDIO,
        ),
    ] = None,
    fmt: Annotated[
        str, _opt("--format", help="wav, flac, mp3, opus or m4b (one audiobook).", panel=PANEL_AUDIO)
    ] = _DEFAULT_STITCH.format,
    sample_rate: Annotated[int, _opt("--sample-rate", help="Output sample rate in Hz.", panel=PANEL_AUDIO)] = (
        SAMPLE_RATE
    ),
    loudness: Annotated[
        str,
        _opt("--loudness", help="Target integrated loudness in LUFS, 'acx' or 'off'.", panel=PANEL_AUDIO),
    ] = str(_DEFAULT_STITCH.loudness_lufs),
    sentence_pause: Annotated[
        float, _opt("--sentence-pause", help="Seconds of silence between sentences.", panel=PANEL_AUDIO)
    ] = _DEFAULT_STITCH.sentence_pause,
    paragraph_pause: Annotated[
        float, _opt("--paragraph-pause", help="Seconds of silence between paragraphs.", panel=PANEL_AUDIO)
    ] = _DEFAULT_STITCH.paragraph_pause,
    title_pause: Annotated[
        float, _opt("--title-pause", help="Seconds of silence after a spoken chapter title.", panel=PANEL_AUDIO)
    ] = _DEFAULT_STITCH.title_pause,
    chapter_pause: Annotated[
        float, _opt("--chapter-pause", help="Seconds of silence at the end of every chapter.", panel=PANEL_AUDIO)
    ] = _DEFAULT_STITCH.chapter_pause,
    subtitles: Annotated[
        bool,
        _opt("--subtitles", help="Write SRT, WebVTT and a JSON manifest beside each chapter.", panel=PANEL_AUDIO),
    ] = False,
    title: Annotated[str | None, _opt("--title", help="Book title (m4b metadata).", panel=PANEL_AUDIO)] = None,
    author: Annotated[str | None, _opt("--author", help="Author (m4b metadata).", panel=PANEL_AUDIO)] = None,
    narrator: Annotated[str | None, _opt("--narrator", help="Narrator (m4b metadata).", panel=PANEL_AUDIO)] = None,
    year: Annotated[int | None, _opt("--year", help="Year of publication (m4b metadata).", panel=PANEL_AUDIO)] = None,
    genre: Annotated[str | None, _opt("--genre", help="Genre (m4b metadata).", panel=PANEL_AUDIO)] = None,
    cover: Annotated[str | None, _opt("--cover", help="Cover image (JPEG or PNG) for m4b.", panel=PANEL_AUDIO)] = None,
    dry_run: Annotated[bool, _opt("--dry-run", help="Show the plan and stop.", panel=PANEL_JOB)] = False,
    work_dir: Annotated[
        str | None, _opt("--work-dir", help="Job folder for resuming (default: OUTPUT/.llasa).", panel=PANEL_JOB)
    ] = None,
    devices: Annotated[
        str | None,
        _opt(
            "--devices",
            metavar="<list|all>",
            help="One worker process per device, e.g. cuda:0,cuda:1 (or all GPUs), sharing the job.",
            panel=PANEL_MODELS,
        ),
    ] = None,
    ray: Annotated[
        str | None,
        _opt(
            "--ray",
            metavar="<auto|ADDRESS>",
            help="Speak on a Ray cluster, one actor per GPU; the job stays here (pip install 'llasa-cli\\[ray]').",
            panel=PANEL_MODELS,
        ),
    ] = None,
    max_minutes: Annotated[
        float | None,
        _opt("--max-minutes", help="Stop cleanly after this long; rerun to continue.", panel=PANEL_JOB),
    ] = None,
    as_json: Annotated[bool, _opt("--json", help="JSON Lines events on standard output.", panel=PANEL_JOB)] = False,
    quiet: Annotated[
        bool, _opt("--quiet", "-q", help="Only warnings, errors and a partial summary.", panel=PANEL_JOB)
    ] = False,
) -> None:
    """Synthesise a manuscript into one audio file per chapter (or a library: one folder per book)."""
    from ..pipeline import INLINE_SOURCE, RunRequest, is_library

    library = files if files and is_library(files) else None
    file = files[0] if files and library is None else None
    placement = WorkerOptions(devices=parse_devices(devices) if devices is not None else (), ray=ray)

    request = RunRequest(
        source=_source(file, text) if library is None else INLINE_SOURCE,
        inline_text=text,
        output=output or _default_output(file, text) if library is None else output or "",
        encoding=encoding,
        voice=voice,
        voice_text=voice_text,
        cast=None if cast is None else str(cast.expanduser().resolve()),
        dry_run=dry_run,
        work_dir=work_dir,
        keep_front_matter=keep_front_matter,
        metadata={
            k: v
            for k, v in dict(title=title, author=author, narrator=narrator, year=year, genre=genre, cover=cover).items()
            if v is not None
        },
        text=build_text_options(
            lang,
            no_normalize,
            no_chapters,
            chapter_pattern,
            no_speak_titles,
            lexicon,
            max_segment_seconds,
            dialogue_voice,
        ),
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
            no_pace_check=no_pace_check,
            pace_factor=pace_factor,
            max_omitted_words=max_omitted_words,
            max_repeated_words=max_repeated_words,
            max_words_after_end=max_words_after_end,
            min_snr=min_snr,
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
    if library is not None:
        raise typer.Exit(execute_library(request, library, mode, max_minutes, placement))
    if placement.in_process or dry_run:
        raise typer.Exit(execute(request, mode, max_minutes))
    raise typer.Exit(execute_placed(request, mode, max_minutes, placement))


def execute(
    request: RunRequest, output_mode: OutputMode, max_minutes: float | None, manuscript: Manuscript | None = None
) -> int:
    """Run `request` (reading its manuscript unless given), show its events, and return the exit code."""
    from ..pipeline import StopController, check_request, load_plan, read_input, synthesize
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
    started = False  # a run that fails before its first event (a missing model) has nothing to sum up
    with StopController(max_minutes) as stop:
        try:
            events = synthesize(
                request,
                manuscript,
                plan,
                stop_reason=stop.stop_reason,
                seconds_left=stop.seconds_left,
                warn=reporter.warn,
            )
            for event in events:
                started = True
                if (notice := stop.take_notice()) is not None:
                    reporter.warn(notice)
                reporter.update(event)
        finally:
            reporter.finish(summary=started)
    summary = reporter.tally.summary()
    if summary["status"] == "partial":
        return EXIT_PARTIAL
    return EXIT_FLAGGED if summary["segments_flagged"] or summary["chapters_held"] else EXIT_OK


def execute_library(
    template: RunRequest,
    specs: list[str],
    output_mode: OutputMode,
    max_minutes: float | None,
    placement: WorkerOptions,
) -> int:
    """A library: each manuscript the arguments name, as `template` asks, into OUTPUT/<book-slug>/."""
    from ..pipeline import check_placement, check_request, library_books, load_plan, read_input
    from .library_view import execute_books
    from .plan_view import print_plan

    check_request(template, output_mode.json)
    books = library_books(template, specs)
    check_placement(template, placement)
    if template.dry_run:
        for book in books:
            print(f"== {book.slug} ({book.source} -> {book.output})")
            print_plan(load_plan(book.request, read_input(book.request)))
        return EXIT_OK
    return execute_books(books, output_mode, max_minutes, placement, single=False)


def execute_placed(
    request: RunRequest, output_mode: OutputMode, max_minutes: float | None, placement: WorkerOptions
) -> int:
    """One book worked by several workers (--devices, --ray), shown as a plain run of it."""
    from ..pipeline import Book, check_placement, check_request
    from .library_view import execute_books

    check_request(request, output_mode.json)
    check_placement(request, placement)
    return execute_books([Book.of(request)], output_mode, max_minutes, placement, single=True)


def _source(file: str | None, text: str | None) -> str:
    from ..pipeline import INLINE_SOURCE

    if file and text:
        raise InvalidOptionError("give either a FILE or --text, not both")
    if not file and text is None:
        raise InvalidOptionError("give a manuscript FILE (or - for standard input), or --text")
    return file or INLINE_SOURCE


def _default_output(file: str | None, text: str | None) -> str:
    if text is not None or file == "-":
        return "llasa-out"
    return f"{Path(file or 'llasa').stem}-audio"


def _parse_loudness(value: str) -> float | None:
    if value.strip().lower() in LOUDNESS_OFF:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidOptionError(f"--loudness must be a number of LUFS, 'acx' or 'off', not {value!r}") from exc


def register(app: typer.Typer) -> None:
    app.command()(synth)
