"""The speaker check compares each segment with its own voice: real espeak-ng speech, the real
resemblyzer speaker model, and a fake generator that speaks some segments in the wrong voice.

The narrator is espeak-ng's en-us, anna en+f3 and ben en+klatt (resemblyzer: the same voice
0.93-0.95 to its reference, these pairs 0.58-0.69, against the 0.80 threshold). Each voice prompt
"is" its reference clip: the fake codec decodes a code to the clip registered under it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import numpy as np
import pytest

from llasa_cli.engine.protocols import GenerationRequest, GenerationResult, VoicePrompt
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, TextOptions, VerifyOptions
from llasa_cli.pipeline.events import SegmentDone
from llasa_cli.pipeline.report import verification_report
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer, VerifierSetup
from llasa_cli.text.manuscript import Manuscript
from llasa_cli.text.planner import build_plan
from llasa_cli.verify.verdict import SPEAKER

from .realspeech import MATRIX
from .test_synthesis import RecordingSink

ESPEAK_VOICES = {None: "en-us", "anna": "en+f3", "ben": "en+klatt"}
# Lines long enough for the speaker check to judge (MIN_JUDGED_SECONDS of voiced speech).
BOOK = (
    "The keeper climbed the stairs and lit the lamp above the sea. "
    '[voice=anna]"Is anybody still out there on the rocks below us tonight?"[/voice] '
    '[voice=ben]"Only the wind and the gulls, as always at this hour of the night."[/voice]\n\n'
    "The boat drifted closer to the reef in the dark water. "
    '[voice=anna]"We should row out to them before the tide turns against us."[/voice] '
    '[voice=ben]"Not until the morning comes and the fog lifts, I think."[/voice]'
)
# Segment text -> whose voice the fake generator speaks it in, where that is the wrong one.
WRONG = {
    '"Is anybody still out there on the rocks below us tonight?"': "ben",
    '"Not until the morning comes and the fog lifts, I think."': "anna",
    "The boat drifted closer to the reef in the dark water.": "anna",
}


def missing() -> str | None:
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed"
    from llasa_cli.verify.resemblyzer_speaker import is_installed

    return None if is_installed() else "resemblyzer is not installed (pip install --no-deps resemblyzer)"


class ClipCodec:
    """Code n decodes to the n-th registered clip."""

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []

    def register(self, audio: np.ndarray) -> np.ndarray:
        self.clips.append(audio)
        return np.array([len(self.clips) - 1], dtype=np.int64)

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.clips[int(c[0])] for c in codes]

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.register(audio)


class EspeakGenerator:
    """Speaks each request with espeak-ng in the voice its prompt stands for, except the WRONG ones."""

    def __init__(self, codec: ClipCodec, prompts: dict[str | None, VoicePrompt]) -> None:
        self.codec = codec
        self.voice_of = {int(prompt.codes[0]): name for name, prompt in prompts.items()}
        self.batches: list[list[str | None]] = []

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return len(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        voices = [self.voice_of[int(r.voice.codes[0])] if r.voice is not None else None for r in requests]
        self.batches.append(voices)
        results = []
        for request, voice in zip(requests, voices, strict=True):
            spoken = WRONG.get(request.text, voice)
            codes = self.codec.register(MATRIX.espeak(request.text.strip('"'), voice=ESPEAK_VOICES[spoken]))
            results.append(GenerationResult(codes=codes, hit_cap=False, new_tokens=2))
        return results


@pytest.mark.skipif(missing() is not None, reason=str(missing()))
def test_segments_in_the_wrong_characters_voice_are_flagged_by_the_speaker_check(tmp_path) -> None:
    from llasa_cli.verify.composite import CompositeVerifier, load_verifier_models

    plan = build_plan(Manuscript("book.txt", BOOK, False), TextOptions(max_segment_seconds=30.0))
    assert {s.voice for s in plan.segments} == {None, "anna", "ben"}
    codec = ClipCodec()
    prompts = {
        name: VoicePrompt(codec.register(MATRIX.espeak(MATRIX.REFERENCE, voice=espeak)), MATRIX.REFERENCE)
        for name, espeak in ESPEAK_VOICES.items()
    }
    options = VerifyOptions(check_asr=False, check_pace=False, speaker_backend="resemblyzer", retries=0)
    _, embedder = load_verifier_models(options, "cpu")
    setup = VerifierSetup(options, lambda reference: CompositeVerifier(options, None, embedder, reference, "en"))
    generator = EspeakGenerator(codec, prompts)
    synthesizer = Synthesizer(generator, codec, SamplingOptions(), EngineOptions(batch_size=8), setup)
    characters = {name: prompt for name, prompt in prompts.items() if name is not None}
    with JobStore.open(tmp_path / "job") as store:
        run = synthesizer.run(plan, RecordingSink(), RunContext(store=store, worker="test"), prompts[None], characters)
        done = [event for event in run if isinstance(event, SegmentDone)]

    assert len(done) == len(plan.segments) == 6
    flagged_for_speaker = {e.segment.text for e in done if SPEAKER in e.failures}
    assert flagged_for_speaker == set(WRONG)
    assert all(e.flagged for e in done if e.segment.text in WRONG)
    assert not any(e.flagged for e in done if e.segment.text not in WRONG)
    assert any(len(set(batch)) == 3 for batch in generator.batches)  # three voices in one batch
    flagged = verification_report(tmp_path / "job")["flagged"]  # the report names who should have spoken
    assert {(row["voice"], row["text"]) for row in flagged} == {
        (segment.voice, segment.text) for segment in plan.segments if segment.text in WRONG
    }
