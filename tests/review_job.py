"""A small finished job for the review page's tests, made by the real pipeline with fake models.

`FakeGenerator` and `FakeCodec` speak (tones whose length follows the text), a fake verifier fails
the segments that hold a chosen word (with a transcript that mishears it), and one segment hits its
length cap (suspect). Chapters are stitched and written by the real sink and chapter writer, so the
spans, outputs and verdicts in the store are what a real run records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, VerifyOptions
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME, open_job, stored_request
from llasa_cli.pipeline.request import RunRequest
from llasa_cli.pipeline.run import load_plan, open_sink, read_input
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer, VerifierSetup
from llasa_cli.verify.verdict import Verdict, VerifyItem

from .fakes import FakeCodec, FakeGenerator

BOOK = """Chapter One: The Keeper

The keeper climbed the stairs at dusk.

He lit the lamp and watched the sea.

Nothing moved on the water.

Chapter Two: The Storm

Rain came in sideways.

The glass shook in its frame.
"""
MISHEARD = {"lamp": "lamb", "glass": "grass"}  # a segment holding the word fails WER
CAPPED = "Nothing moved on the water."  # hits its length cap: suspect
FLAGGED_IDS = ("1.2", "2.2")
SUSPECT_ID = "1.3"


class Mishears:
    """A fake verifier: a segment holding a word of MISHEARD is heard with that word swapped and
    fails the WER check; the rest pass."""

    def for_partial_speech(self) -> Mishears:
        return self

    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [self._one(item.text) for item in items]

    @staticmethod
    def _one(text: str) -> Verdict:
        heard = text.lower().rstrip(".")
        for word, instead in MISHEARD.items():
            heard = heard.replace(word, instead)
        wrong = heard != text.lower().rstrip(".")
        wer = 0.5 if wrong else 0.0
        metrics = {"wer": wer, "similarity": 0.91, "seconds_per_char": 0.07}
        return Verdict(not wrong, 1.0 - wer, metrics, ("wer",) if wrong else (), heard)


def build_review_job(folder: Path) -> Path:
    """Synthesise BOOK into `folder/out` with the fakes; returns the output folder."""
    book = folder / "the_lighthouse.txt"
    book.write_text(BOOK)
    out = folder / "out"
    request = RunRequest(source=str(book), output=str(out), verify=VerifyOptions(retries=0))
    manuscript = read_input(request)
    plan = load_plan(request, manuscript)
    generator = FakeGenerator()
    generator.enqueue(CAPPED, np.full(40, 7), hit_cap=True)
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    verification = VerifierSetup(request.verify, load=lambda reference: Mishears())
    synthesizer = Synthesizer(generator, FakeCodec(), request.sampling, EngineOptions(batch_size=4), verification)
    with open_job(request, manuscript) as store:
        list(synthesizer.run(plan, open_sink(request, manuscript), RunContext(store=store, worker="test"), voice))
    return out


def job_folder(out: Path) -> Path:
    return out / WORK_DIR_NAME


def speak_again(out: Path, edit: Callable[[str], str] = lambda text: text) -> FakeGenerator:
    """What `llasa redo` and `llasa synth` run, with the fakes: the stored request and the plan of
    its manuscript (`edit`ed); the job's text overrides are the synthesizer's to apply. Returns the
    generator, which saw every request."""
    with JobStore.open(job_folder(out)) as store:
        request, manuscript = stored_request(store)
        voice = store.load_voice()
    manuscript = dataclasses.replace(manuscript, text=edit(manuscript.text))
    generator = FakeGenerator()
    verification = VerifierSetup(request.verify, load=lambda reference: Mishears())
    synthesizer = Synthesizer(generator, FakeCodec(), request.sampling, EngineOptions(batch_size=4), verification)
    with JobStore.open(job_folder(out)) as store:
        context = RunContext(store=store, worker="again")
        list(synthesizer.run(load_plan(request, manuscript), open_sink(request, manuscript), context, voice))
    return generator
