"""The known world (llasa_cli/testing/known_world.py): its codes are espeak-ng speech, its LM keeps the
engine's seed contract, and it errs at the rates it is given. espeak-ng only, no verifier."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from llasa_cli.constants import SAMPLES_PER_CODE
from llasa_cli.engine.protocols import Branch, GenerationRequest
from llasa_cli.testing.known_world import (
    DRIFT_VOICE,
    NARRATOR_VOICE,
    STALL_SECONDS,
    WORD_GAP_CODES,
    FailureRates,
    KnownWorld,
    words_of,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

TEXT = "The old man walked slowly to the market."
REFERENCE = "This is the narrator's own voice."
CAP = 1_000
NO_MISTAKES = FailureRates(wrong=0, skip=0, loop=0, stall=0, drift=0, babble=0)


def world_with(rates: FailureRates) -> tuple[KnownWorld, list[GenerationRequest]]:
    world = KnownWorld(rates)
    world.prepare([TEXT, REFERENCE])
    voice = world.voice_prompt(REFERENCE)
    return world, [GenerationRequest(TEXT, seed=seed, max_new_tokens=CAP, voice=voice) for seed in range(200)]


def test_a_word_decodes_to_its_espeak_rendering_and_a_gap():
    world = KnownWorld()
    codes = world.speak("harbour")
    audio = world.codec.decode([codes])[0]
    spoken = world.espeak.word("harbour", NARRATOR_VOICE)
    assert audio.size == codes.size * SAMPLES_PER_CODE
    assert np.array_equal(audio[: spoken.size], spoken) and spoken.size > 0.2 * 16_000
    assert not np.any(audio[-WORD_GAP_CODES * SAMPLES_PER_CODE :])  # the gap after the word is silence
    other = world.codec.decode([world.speak("harbour", DRIFT_VOICE)])[0]
    assert not np.array_equal(other[: min(other.size, audio.size)], audio[: min(other.size, audio.size)])


def test_encode_gives_codes_that_decode_to_the_audio():
    world = KnownWorld()
    audio = np.sin(np.arange(SAMPLES_PER_CODE * 5) / 7.0).astype(np.float32)
    assert np.array_equal(world.codec.decode([world.codec.encode(audio)])[0], audio)


def test_without_mistakes_every_take_is_the_text_said_right():
    world, requests = world_with(NO_MISTAKES)
    for result in world.lm.generate(requests[:5]):
        assert not result.hit_cap and np.array_equal(result.codes, world.speak(TEXT))
        truth = world.truth(result.codes)
        assert truth.words == words_of(TEXT) and truth.clean(TEXT) and truth.voices == {NARRATOR_VOICE}


def test_a_branch_with_the_request_seed_reproduces_generate_in_one_go_or_step_by_step():
    world, requests = world_with(FailureRates(wrong=0.1, skip=0.1, loop=0.1, stall=0.1, drift=0.1, babble=0.5))
    requests = requests[:6]
    plain = world.lm.generate(requests)
    started = world.lm.start(requests)
    grown = world.lm.extend(started.state, [Branch(n, r.seed, CAP) for n, r in enumerate(requests)], CAP)
    assert all(np.array_equal(g.tokens, p.codes) for g, p in zip(grown, plain, strict=True))
    started = world.lm.start(requests[:1])
    codes: list[int] = []
    while True:  # 50 tokens a step, each step's branch continuing the row before it
        step = world.lm.extend(started.state, [Branch(0, requests[0].seed, 50)], 50)[0]
        codes += step.tokens.tolist()
        if step.ended or len(codes) >= started.caps[0]:
            break
    assert codes == plain[0].codes.tolist()
    assert len({p.codes.tobytes() for p in plain}) > 1  # seeds matter


def test_an_ended_row_cannot_be_continued():
    world, requests = world_with(NO_MISTAKES)
    started = world.lm.start(requests[:1])
    assert world.lm.extend(started.state, [Branch(0, 1, CAP)], CAP)[0].ended
    with pytest.raises(ValueError, match="cannot be continued"):
        world.lm.extend(started.state, [Branch(0, 1, 10)], 10)


@pytest.mark.parametrize(
    ("rates", "check"),
    [
        (FailureRates(drift=1.0, wrong=0, skip=0, loop=0, stall=0, babble=0), lambda t: t.voices == {DRIFT_VOICE}),
        (FailureRates(skip=1.0, wrong=0, loop=0, stall=0, drift=0, babble=0), lambda t: t.words == ()),
        (FailureRates(babble=1.0, wrong=0, skip=0, loop=0, stall=0, drift=0), lambda t: len(t.words) > 8),
    ],
)
def test_a_certain_mistake_is_always_made(rates, check):
    world, requests = world_with(rates)
    assert all(check(world.truth(r.codes)) for r in world.lm.generate(requests[:10]))


def test_mistakes_come_at_about_their_rates():
    rates = FailureRates(wrong=0.0, skip=0.0, loop=0.0, stall=0.05, drift=0.05, babble=0.0)
    world, requests = world_with(rates)
    truths = [world.truth(r.codes) for r in world.lm.generate(requests)]
    boundaries = len(words_of(TEXT))
    # A drift can come at any word boundary; a stall too (and again after one).
    expected = 1 - (1 - 0.05) ** boundaries
    for share in (np.mean([t.drifted for t in truths]), np.mean([t.stalled for t in truths])):
        assert abs(share - expected) < 0.12, (share, expected)
    stalled = next(t for t in truths if t.stalled)
    assert stalled.longest_silence >= STALL_SECONDS and stalled.word_errors(TEXT) == 0
