"""One `synth` run as library calls: plan, job, models, voice, sink, events.

`synthesize` runs a whole request and yields its events; the CLI renders them, and `redo`
runs through it too. The steps it takes are public for a library user who wants to hold on
to loaded models between books: `check_models`, `load_plan`, `load_speech_models` (engine),
`voice_specs` (the cast), `resolve_voice`, `open_sink`, `run_events`; `load_models` and `run_book`
do it for many books with one set of models (library.py). Model imports happen only when models load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np

from ..audio.sinks import ChapterSink
from ..engine.loading import SpeechModels, load_speech_models
from ..engine.protocols import VoicePrompt
from ..errors import InvalidOptionError
from ..job.store import JobStore
from ..options import MODE_PLAIN, EngineOptions
from ..text.manuscript import Manuscript, manuscript_from_text, read_manuscript
from ..text.plan import Plan
from ..text.planner import build_plan
from ..voices.resolve import (
    VoiceSpec,
    cast_specs,
    check_voice_specs,
    needs_transcript,
    resolve_characters,
    resolve_spec,
)
from .events import Event
from .job_folder import M4B_CHAPTERS, WORK_DIR_NAME, RunLog, new_worker_id, open_job, work_dir_of, worker_alive
from .request import STDOUT, RunRequest, book_metadata, book_stem, cast_of
from .run_context import RunContext
from .synthesizer import SearchSetup, Synthesizer, VerifierSetup

if TYPE_CHECKING:
    from ..engine.hub import ModelNeed

Warn = Callable[[str], None]


def read_input(request: RunRequest) -> Manuscript:
    if request.inline_text is not None:
        return manuscript_from_text(request.inline_text, name="--text")
    return read_manuscript(request.source, encoding=request.encoding, keep_front_matter=request.keep_front_matter)


def load_plan(request: RunRequest, manuscript: Manuscript | None = None) -> Plan:
    return build_plan(manuscript or read_input(request), request.text)


def check_models(request: RunRequest, voices: Sequence[VoiceSpec] = ()) -> None:
    """Every model the run will load is on this machine, or the hub can be reached to download it;
    else one ModelNotFoundError naming every missing model and how to fetch it, in seconds (before
    anything is loaded or created, so a first run offline leaves nothing behind). `voices` are the
    cast's (`voice_specs`): a clip among them without its text needs Whisper too."""
    from ..engine.devices import pick_device
    from ..engine.hub import require_available
    from ..engine.loading import speech_model_needs
    from ..verify.asr import asr_need
    from ..verify.composite import verifier_model_needs

    device, _ = pick_device(request.engine.device)
    needs: list[ModelNeed | None] = [*speech_model_needs(request.engine)]
    if request.verify.enabled:
        needs += verifier_model_needs(request.verify, device)
    narrator = [] if request.voice is None else [VoiceSpec(None, request.voice, request.voice_text)]
    if needs_transcript([*narrator, *voices]):
        needs.append(asr_need(request.verify.asr_model, device))  # voices.resolve transcribes the clip
    unique = {(need.what, need.name): need for need in needs if need is not None}
    require_available(list(unique.values()))


def engine_for(engine: EngineOptions, models: SpeechModels) -> EngineOptions:
    """`engine` with a whole-number batch size: --batch-size auto becomes what `load_speech_models`
    chose (or, for models loaded some other way, the size auto picks without a model to measure)."""
    if not engine.auto_batch_size:
        return engine
    batch_size = models.batch_size
    if batch_size is None:
        from ..engine.batch_size import auto_batch_size

        batch_size, _ = auto_batch_size(None, models.device)
    return dataclasses.replace(engine, batch_size=batch_size)


def voice_specs(request: RunRequest, manuscript: Manuscript, plan: Plan, warn: Warn | None = None) -> list[VoiceSpec]:
    """Who speaks with which voice (`--voice` or the cast's narrator, then each character of the
    plan), every one checked now, before any model loads (`--voice` is checked as it resolves, as
    ever): VoiceError naming the character whose voice cannot be used."""
    specs = cast_specs(plan.voices, cast_of(request, manuscript), request.voice, request.voice_text)
    check_voice_specs([s for s in specs if s.character is not None or request.voice is None], warn)
    return specs


def resolve_voice(
    request: RunRequest, models: SpeechModels, warn: Warn | None = None, voices: Sequence[VoiceSpec] = ()
) -> VoicePrompt | None:
    """The narrator's prompt: `--voice`, else the cast's narrator among `voices`, else None (the
    run fixes one itself)."""
    from ..voices.resolve import resolve_voice as resolve

    narrator = next((spec for spec in voices if spec.character is None), None)
    if request.voice is not None or narrator is None:
        codec, asr, device = models.codec, request.verify.asr_model, models.device
        return resolve(request.voice, request.voice_text, codec, asr, device, warn=warn)
    return resolve_spec(narrator, models.codec, request.verify.asr_model, models.device, warn=warn)


def make_search(request: RunRequest, models: SpeechModels) -> SearchSetup | None:
    """The search strategy for --beam / --best-of; None for plain sampling."""
    if request.search.mode == MODE_PLAIN:
        return None
    if models.candidates is None:
        raise InvalidOptionError("--beam and --best-of need a language model that can branch (the Llasa model)")
    return SearchSetup(request.search, models.candidates, request.text.lang)


def make_verification(request: RunRequest, device: str) -> VerifierSetup | None:
    """How the run verifies segments once the narrator is known; None with --no-verify."""
    if not request.verify.enabled:
        return None
    from ..verify.composite import CompositeVerifier, load_verifier_models

    # Loaded now, before any synthesis, so a missing verifier model fails before work is spent.
    transcriber, embedder = load_verifier_models(request.verify, device)

    def load(reference_audio: np.ndarray) -> CompositeVerifier:
        return CompositeVerifier(request.verify, transcriber, embedder, reference_audio, request.text.lang)

    return VerifierSetup(options=request.verify, load=load)


def open_sink(request: RunRequest, manuscript: Manuscript | None = None, stdout: BinaryIO | None = None) -> ChapterSink:
    from ..audio.sinks import FolderSink, M4bSink, StreamSink

    if request.output == STDOUT:
        import sys

        return StreamSink(stdout or sys.stdout.buffer, request.stitch)
    if request.stitch.format == "m4b":
        metadata = book_metadata(request, manuscript)
        folder = work_dir_of(request) or Path(request.output) / WORK_DIR_NAME
        cache = folder / M4B_CHAPTERS
        return M4bSink(Path(request.output), cache, request.stitch, metadata, book_stem(metadata), request.text.lang)
    return FolderSink(Path(request.output), request.stitch, lang=request.text.lang)


def make_synthesizer(request: RunRequest, models: SpeechModels) -> Synthesizer:
    """The request's synthesizer over loaded models (its verifier's models load now); it holds
    no state of a run, so one serves every book of a library."""
    return Synthesizer(
        models.generator,
        models.codec,
        request.sampling,
        engine_for(request.engine, models),
        make_verification(request, models.device),
        make_search(request, models),
        device=models.device,
    )


def run_events(
    request: RunRequest,
    plan: Plan,
    models: SpeechModels,
    voice: VoicePrompt | None,
    sink: ChapterSink,
    context: RunContext,
    characters: Mapping[str, VoicePrompt] | None = None,
) -> Iterator[Event]:
    yield from make_synthesizer(request, models).run(plan, sink, context, voice, characters)


class BookRunner(Protocol):
    """What speaks a book into its job: a `Synthesizer`, or a driver of remote workers (dispatch.py)."""

    def run(
        self,
        plan: Plan,
        sink: ChapterSink,
        context: RunContext,
        voice: VoicePrompt | None = None,
        characters: Mapping[str, VoicePrompt] | None = None,
    ) -> Iterator[Event]: ...


class LoadedModels:
    """A run's models, loaded once for every book it works: the speech models (voices are
    resolved with their codec) and the book runner over them, made when the first book starts
    (after its voice is resolved, so a bad clip fails before the verifier's models load).
    `close` releases what the loading started (a Ray cluster's actors)."""

    def __init__(
        self,
        request: RunRequest,
        models: SpeechModels,
        runner: BookRunner | None = None,
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.request = request
        self.models = models
        self._runner = runner
        self.close = close

    @property
    def runner(self) -> BookRunner:
        if self._runner is None:
            self._runner = make_synthesizer(self.request, self.models)
        return self._runner


def load_models(request: RunRequest, warn: Warn = lambda message: None) -> LoadedModels:
    """The request's speech models on this machine; `warn` hears their notice (a CPU fallback)."""
    models = load_speech_models(request.engine, request.sampling)
    if models.notice:
        warn(models.notice)
    return LoadedModels(request, models)


def run_book(
    request: RunRequest,
    manuscript: Manuscript,
    plan: Plan,
    loaded: LoadedModels,
    voices: Sequence[VoiceSpec],
    store: JobStore,
    *,
    stop_reason: Callable[[], str | None] = lambda: None,
    seconds_left: Callable[[], float | None] = lambda: None,
    warn: Warn = lambda message: None,
) -> Iterator[Event]:
    """One book into its open job with models already loaded: resolve its voices (`voices`, from
    `voice_specs`), then yield the run's events."""
    models = loaded.models
    voice = resolve_voice(request, models, warn=warn, voices=voices)
    codec, asr, device = models.codec, request.verify.asr_model, models.device
    characters = resolve_characters(voices, codec, asr, device, warn=warn)
    context = RunContext(
        store=store,
        worker=new_worker_id(),
        stop_reason=stop_reason,
        seconds_left=seconds_left,
        log=RunLog(work_dir_of(request)),
        worker_alive=worker_alive,
    )
    yield from loaded.runner.run(plan, open_sink(request, manuscript), context, voice, characters)


def synthesize(
    request: RunRequest,
    manuscript: Manuscript,
    plan: Plan,
    *,
    stop_reason: Callable[[], str | None] = lambda: None,
    seconds_left: Callable[[], float | None] = lambda: None,
    warn: Warn = lambda message: None,
) -> Iterator[Event]:
    """Run a request to the end (or until `stop_reason` gives one): open its job, load the models
    and the voice, and yield the run's events. `seconds_left` is the time budget's rest (None: no
    budget), which batches are sized to end within. `warn` hears what the user should know (a CPU
    fallback, a poor voice clip). What `synth` and `redo` both run."""
    voices = voice_specs(request, manuscript, plan, warn)
    check_models(request, voices)
    with open_job(request, manuscript) as store:
        loaded = load_models(request, warn)
        yield from run_book(
            request, manuscript, plan, loaded, voices, store,
            stop_reason=stop_reason, seconds_left=seconds_left, warn=warn,
        )  # fmt: skip
