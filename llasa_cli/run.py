"""One `synth` run as library calls: plan, models, voice, sink, events.

The CLI calls these in order and renders the events; a library user can do the
same without any UI. Model imports happen only in `load_models`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import InputEmptyError
from .options import EngineOptions, SamplingOptions, StitchOptions, TextOptions
from .plan import Plan
from .protocols import SpeechCodec, SpeechGenerator, VoicePrompt
from .synthesis import ChapterSink, Event, Synthesizer

STDOUT = "-"


@dataclass(frozen=True)
class RunRequest:
    source: str  # a path, "-" for standard input, or "<text>" with inline_text
    output: str  # a folder, or "-" for one WAV stream on standard output
    inline_text: str | None = None
    encoding: str | None = None
    voice: str | None = None  # a clip path or a stored voice name
    voice_text: str | None = None
    asr_model: str | None = None
    dry_run: bool = False
    text: TextOptions = field(default_factory=TextOptions)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    stitch: StitchOptions = field(default_factory=StitchOptions)


@dataclass(frozen=True)
class Models:
    generator: SpeechGenerator
    codec: SpeechCodec
    device: str
    notice: str | None  # e.g. the loud line when falling back to CPU


def load_plan(request: RunRequest) -> Plan:
    from .manuscript import Manuscript, read_manuscript
    from .segments import build_plan

    if request.inline_text is not None:
        if not request.inline_text.strip():
            raise InputEmptyError("--text is empty: there is nothing to speak")
        manuscript = Manuscript(name="--text", text=request.inline_text, is_markdown=False)
    else:
        manuscript = read_manuscript(request.source, encoding=request.encoding)
    return build_plan(manuscript, request.text)


def load_models(engine: EngineOptions, sampling: SamplingOptions) -> Models:
    from .models import load_codec, load_generator, pick_device

    device, notice = pick_device(engine.device)
    generator = load_generator(engine, sampling)
    codec = load_codec(engine.codec, device)
    return Models(generator=generator, codec=codec, device=device, notice=notice)


def resolve_voice(request: RunRequest, models: Models) -> VoicePrompt | None:
    from .voice_prompt import resolve_voice as resolve

    return resolve(request.voice, request.voice_text, models.codec, request.asr_model, models.device)


def open_sink(request: RunRequest, stdout: BinaryIO | None = None) -> ChapterSink:
    from .sinks import FolderSink, StreamSink

    if request.output == STDOUT:
        import sys

        return StreamSink(stdout or sys.stdout.buffer, request.stitch)
    return FolderSink(Path(request.output), request.stitch)


def run_events(
    request: RunRequest, plan: Plan, models: Models, voice: VoicePrompt | None, sink: ChapterSink
) -> Iterator[Event]:
    synthesizer = Synthesizer(models.generator, models.codec, request.sampling, request.engine)
    yield from synthesizer.run(plan, sink, voice)
