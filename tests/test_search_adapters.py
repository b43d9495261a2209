"""The search's scorers over the codec and the verifiers: partial candidates judged on their newest audio."""

from __future__ import annotations

import numpy as np

from llasa_cli.constants import CODES_PER_SECOND, SAMPLE_RATE, SAMPLES_PER_CODE
from llasa_cli.protocols import GenerationRequest
from llasa_cli.search import Candidate, ScoreWeights
from llasa_cli.search_adapters import (
    PARTIAL_CONTEXT_SECONDS,
    PARTIAL_SIGNAL_FAILURES,
    PARTIAL_WINDOW_SECONDS,
    SIGNAL_FAILURES,
    make_scorers,
)
from llasa_cli.verify import Verdict

from .fakes import FakeCodec

WINDOW = round(PARTIAL_WINDOW_SECONDS * CODES_PER_SECOND)
CONTEXT = round(PARTIAL_CONTEXT_SECONDS * CODES_PER_SECOND)
LONG_TEXT = "A sentence long enough that a few seconds of it is far too short for the whole. " * 3


def candidate(codes: np.ndarray, text: str = LONG_TEXT, ended: bool = False) -> Candidate:
    return Candidate(0, GenerationRequest(text, seed=1, max_new_tokens=2_000), codes, ended, False)


class SilentTail(FakeCodec):
    """The fake codec's tones, except codes of value 0, which come out as silence."""

    def decode(self, codes):
        out = super().decode(codes)
        for audio, row in zip(out, codes, strict=True):
            for index in np.flatnonzero(np.asarray(row) == 0):
                audio[index * SAMPLES_PER_CODE : (index + 1) * SAMPLES_PER_CODE] = 0.0
        return out


class Listening:
    """A fake verifier that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def verify(self, items):
        self.seen.extend(item.audio for item in items)
        return [Verdict(passed=True, score=1.0) for _ in items]


def test_partial_candidates_decode_only_their_newest_audio() -> None:
    codec = FakeCodec()
    partial, final = make_scorers(None, np.zeros(SAMPLE_RATE, dtype=np.float32), codec, ScoreWeights(), "en")
    lengths = []
    for size in (10, WINDOW, WINDOW + CONTEXT + 500):
        partial.verifier = listening = Listening()
        codes = np.arange(size, dtype=np.int64) % 400
        partial.score([candidate(codes), candidate(codes[::-1].copy())])
        lengths.append(codec.decode_calls[-1])
        # What is judged is the newest window exactly: the lead-in decoded for context is cut off.
        expected_samples = min(size, WINDOW) * SAMPLES_PER_CODE
        assert [a.size for a in listening.seen] == [expected_samples] * 2
        assert np.allclose(listening.seen[0], FakeCodec().decode([codes[-min(size, WINDOW) :]])[0])
    assert lengths == [2, 2, 2]  # one decode call per scoring, both candidates in it
    final.verifier = listening = Listening()
    codes = np.arange(WINDOW * 3, dtype=np.int64) % 400
    final.score([candidate(codes, ended=True)])
    assert listening.seen[0].size == codes.size * SAMPLES_PER_CODE  # finished candidates: all of it


def test_partial_scoring_ignores_rate_but_not_a_stalled_window() -> None:
    partial, final = make_scorers(None, np.zeros(SAMPLE_RATE, dtype=np.float32), SilentTail(), ScoreWeights(), "en")
    speaking = np.arange(4 * CODES_PER_SECOND, dtype=np.int64) % 399 + 1
    stalled = speaking.copy()
    stalled[-2 * CODES_PER_SECOND :] = 0  # the newest two seconds are silence
    good, bad = partial.score([candidate(speaking), candidate(stalled)])
    assert good == 1.0  # a few seconds of a long sentence: "too short" does not count mid-sentence
    assert bad < good
    assert PARTIAL_SIGNAL_FAILURES < SIGNAL_FAILURES and "too_short" not in PARTIAL_SIGNAL_FAILURES
    whole_good = final.score([candidate(speaking, ended=True)])[0]
    assert whole_good < 1.0  # the same audio as a finished candidate is too short for its text
