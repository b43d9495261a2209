"""One `synth` run as library calls: plan, job, models, voice, sink, events.

The CLI calls these in order and renders the events; a library user can do the
same without any UI. Model imports happen only in `load_models`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..engine.protocols import SpeechCodec, SpeechGenerator, VoicePrompt
from ..errors import InputEmptyError, InvalidOptionError, JobStoreError
from ..job.store import JobStore, manuscript_fingerprint
from ..options import EngineOptions, SamplingOptions, StitchOptions, TextOptions, VerifyOptions
from ..search.segment_search import ScoreWeights, SearchOptions
from ..text.manuscript import STDIN_SOURCE, Manuscript
from ..text.metadata import BookMetadata
from ..text.plan import Plan
from .events import ChapterSink, Event
from .synthesizer import RunContext, Search, Synthesizer, Verification

STDOUT = "-"
WORK_DIR_NAME = ".llasa"
LOG_NAME = "llasa.log"
M4B_CHAPTERS = "chapters"
REQUEST_FORMAT = 1


@dataclass(frozen=True)
class RunRequest:
    source: str  # a path, "-" for standard input, or "<text>" with inline_text
    output: str  # a folder, or "-" for one WAV stream on standard output
    inline_text: str | None = None
    encoding: str | None = None
    voice: str | None = None  # a clip path or a stored voice name
    voice_text: str | None = None
    dry_run: bool = False
    work_dir: str | None = None  # default: OUTPUT/.llasa; a temporary folder for "-" (no resume)
    keep_front_matter: bool = False  # EPUB: keep copyright pages, table of contents...
    metadata: dict[str, Any] = field(default_factory=dict)  # book title, author... from flags (win over the file)
    text: TextOptions = field(default_factory=TextOptions)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    stitch: StitchOptions = field(default_factory=StitchOptions)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    search: SearchOptions = field(default_factory=SearchOptions)

    def to_json(self) -> dict[str, Any]:
        return {"format": REQUEST_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRequest:
        if data.get("format") != REQUEST_FORMAT:
            raise JobStoreError("the job was recorded by another llasa-cli version; run synth again")
        nested = {"text", "sampling", "engine", "stitch", "verify", "search", "format"}
        text = dict(data["text"])
        text["lexicon"] = tuple(tuple(pair) for pair in text.get("lexicon", ()))
        return cls(
            **{k: v for k, v in data.items() if k not in nested},
            text=TextOptions(**text),
            sampling=SamplingOptions(**data["sampling"]),
            engine=EngineOptions(**data["engine"]),
            stitch=StitchOptions(**data["stitch"]),
            verify=VerifyOptions(**data["verify"]),
            search=SearchOptions(
                **{**data["search"], "score_weights": ScoreWeights(**data["search"]["score_weights"])}
            ),
        )


@dataclass(frozen=True)
class Models:
    generator: SpeechGenerator
    codec: SpeechCodec
    device: str
    notice: str | None  # e.g. the loud line when falling back to CPU, or the size --batch-size auto chose
    batch_size: int | None = None  # what --batch-size auto resolved to; None: the engine's own number


def read_input(request: RunRequest) -> Manuscript:
    from ..text.manuscript import read_manuscript

    if request.inline_text is not None:
        if not request.inline_text.strip():
            raise InputEmptyError("--text is empty: there is nothing to speak")
        return Manuscript(name="--text", text=request.inline_text, is_markdown=False)
    return read_manuscript(request.source, encoding=request.encoding, keep_front_matter=request.keep_front_matter)


def load_plan(request: RunRequest, manuscript: Manuscript | None = None) -> Plan:
    from ..text.planner import build_plan

    return build_plan(manuscript or read_input(request), request.text)


def load_models(engine: EngineOptions, sampling: SamplingOptions) -> Models:
    """The LM (under the out-of-memory back-off) and the codec. `--batch-size auto` is resolved here,
    once both are loaded, so their weights are already out of the free memory it is sized from."""
    from ..engine.loading import load_codec, load_generator, pick_device
    from ..engine.oom import OomBackoffGenerator

    device, notice = pick_device(engine.device)
    # A batch that runs out of accelerator memory is halved and retried instead of ending the run.
    generator = OomBackoffGenerator(load_generator(engine, sampling))
    codec = load_codec(engine.codec, device)
    batch_size: int | None = None
    if engine.auto_batch_size:
        batch_size, chosen = _auto_batch_size(generator, device)
        notice = f"{notice}; {chosen}" if notice else chosen
    return Models(generator=generator, codec=codec, device=device, notice=notice, batch_size=batch_size)


def _auto_batch_size(generator: SpeechGenerator, device: str) -> tuple[int, str]:
    from ..engine.oom import auto_batch_size

    # The device the weights landed on, with its index ("cuda:0"), when the generator knows it.
    return auto_batch_size(generator, str(getattr(generator, "device", device)))


def engine_for(engine: EngineOptions, models: Models) -> EngineOptions:
    """`engine` with a whole-number batch size: --batch-size auto becomes what `load_models` chose
    (or is chosen now, for models loaded some other way)."""
    if not engine.auto_batch_size:
        return engine
    batch_size = models.batch_size
    if batch_size is None:
        batch_size, _ = _auto_batch_size(models.generator, models.device)
    return dataclasses.replace(engine, batch_size=batch_size)


def resolve_voice(
    request: RunRequest, models: Models, warn: Callable[[str], None] | None = None
) -> VoicePrompt | None:
    from ..voices.resolve import resolve_voice as resolve

    return resolve(
        request.voice, request.voice_text, models.codec, request.verify.asr_model, models.device, warn=warn
    )


def make_search(request: RunRequest, models: Models) -> Search | None:
    """The search strategy for --beam / --best-of; None for plain sampling."""
    from ..search.segment_search import MODE_PLAIN

    if request.search.mode == MODE_PLAIN:
        return None
    from ..engine.candidates import LmCandidateGenerator
    from ..engine.generator import LlasaGenerator

    language_model = getattr(models.generator, "inner", models.generator)  # under the OOM back-off
    if not isinstance(language_model, LlasaGenerator):
        raise InvalidOptionError("--beam and --best-of need the Llasa language model")
    return Search(request.search, LmCandidateGenerator(language_model), request.text.lang)


def make_verification(request: RunRequest, device: str) -> Verification | None:
    """How the run verifies segments once the narrator is known; None with --no-verify."""
    if not request.verify.enabled:
        return None
    from ..verify.composite import CompositeVerifier, load_verifier_models

    # Loaded now, before any synthesis, so a missing verifier model fails before work is spent.
    transcriber, embedder = load_verifier_models(request.verify, device)

    def load(reference_audio: Any) -> Any:
        return CompositeVerifier(request.verify, transcriber, embedder, reference_audio, request.text.lang)

    return Verification(options=request.verify, load=load)


def open_sink(request: RunRequest, manuscript: Manuscript | None = None, stdout: BinaryIO | None = None) -> ChapterSink:
    from ..audio.sinks import FolderSink, M4bSink, StreamSink

    if request.output == STDOUT:
        import sys

        return StreamSink(stdout or sys.stdout.buffer, request.stitch)
    if request.stitch.format == "m4b":
        metadata = book_metadata(request, manuscript)
        folder = work_dir_of(request) or Path(request.output) / WORK_DIR_NAME
        return M4bSink(Path(request.output), folder / M4B_CHAPTERS, request.stitch, metadata, book_stem(metadata))
    return FolderSink(Path(request.output), request.stitch, lang=request.text.lang)


def book_metadata(request: RunRequest, manuscript: Manuscript | None) -> BookMetadata:
    from ..text.metadata import merge_metadata

    front = dict(manuscript.front_matter) if manuscript else {}
    if manuscript and not front.get("title") and request.inline_text is None and request.source != STDIN_SOURCE:
        front["title"] = Path(request.source).stem.replace("_", " ").title()
    return merge_metadata(front, request.metadata)


def book_stem(metadata: BookMetadata) -> str:
    """The audiobook's file name: the title as a slug (never leaving the folder)."""
    from ..text.chapters import chapter_slug

    return chapter_slug(1, metadata.title or "audiobook", 1).split("-", 1)[1]


def work_dir_of(request: RunRequest) -> Path | None:
    """Where the job lives; None for a stream without --work-dir (a throwaway job)."""
    if request.work_dir:
        return Path(request.work_dir)
    if request.output == STDOUT:
        return None
    return Path(request.output) / WORK_DIR_NAME


@contextmanager
def open_job(request: RunRequest, manuscript: Manuscript) -> Iterator[JobStore]:
    """The job store for this request, recording the request so `redo` and `stitch` can repeat it."""
    folder = work_dir_of(request)
    throwaway = tempfile.TemporaryDirectory(prefix="llasa-job-") if folder is None else None
    with throwaway or contextlib.nullcontext(str(folder)) as where, JobStore.open(Path(where)) as store:
        store.set_job(
            manuscript_fingerprint(manuscript.text),
            {"request": request.to_json(), "manuscript": manuscript.text, "is_markdown": manuscript.is_markdown},
            request.engine.model,
            request.engine.codec,
        )
        yield store


def stored_request(store: JobStore) -> tuple[RunRequest, Manuscript]:
    """The request and manuscript the job's last `synth` ran with."""
    job = store.job()
    if job is None or "request" not in job.options:
        raise JobStoreError(f"{store.path}: no synth run was recorded in this job")
    request = RunRequest.from_json(job.options["request"])
    manuscript = Manuscript(
        name=request.source,
        text=job.options["manuscript"],
        is_markdown=job.options["is_markdown"],
        front_matter=job.options.get("front_matter", {}),
    )
    return request, manuscript


class RunLog:
    """Appends timestamped lines to the work folder's log, flushed at once so a crash keeps them."""

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / LOG_NAME if folder else None

    def __call__(self, message: str) -> None:
        if self.path is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} pid={os.getpid()} {message}\n")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_alive(worker: str) -> bool:
    """False only when the worker ran on this host and its process is gone; other hosts count as alive."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_events(
    request: RunRequest,
    plan: Plan,
    models: Models,
    voice: VoicePrompt | None,
    sink: ChapterSink,
    context: RunContext,
) -> Iterator[Event]:
    verification = make_verification(request, models.device)
    search = make_search(request, models)
    engine = engine_for(request.engine, models)
    synthesizer = Synthesizer(models.generator, models.codec, request.sampling, engine, verification, search)
    yield from synthesizer.run(plan, sink, context, voice)


def check_request(request: RunRequest, json_events: bool) -> None:
    """Combinations no single option class can see."""
    if request.output == STDOUT and json_events:
        raise InvalidOptionError("-o - writes audio to standard output, so --json cannot share it")
    if request.output == STDOUT and request.stitch.format != "wav":
        raise InvalidOptionError(f"-o - streams WAV; --format {request.stitch.format} needs an output folder")
