"""The search's scorers over the codec and the verifiers: partial candidates judged on their newest audio."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.constants import CHARS_PER_SECOND, CODES_PER_SECOND, SAMPLES_PER_CODE
from llasa_cli.engine.protocols import GenerationRequest
from llasa_cli.options import ScoreWeights
from llasa_cli.search.scorers import (
    FINAL_CHECKS,
    PARTIAL_CHECKS,
    PARTIAL_CONTEXT_SECONDS,
    PARTIAL_WINDOW_SECONDS,
    VerdictScorer,
    make_scorers,
)
from llasa_cli.search.segment_search import Candidate
from llasa_cli.verify.composite import CompositeVerifier
from llasa_cli.verify.verdict import Verdict, VerifyItem

from .fakes import FakeCodec

WINDOW = round(PARTIAL_WINDOW_SECONDS * CODES_PER_SECOND)
CONTEXT = round(PARTIAL_CONTEXT_SECONDS * CODES_PER_SECOND)
LONG_TEXT = "A sentence long enough that a few seconds of it is far too short for the whole. " * 3


def candidate(codes: np.ndarray, text: str = LONG_TEXT, ended: bool = False) -> Candidate:
    return Candidate(0, GenerationRequest(text, seed=1, max_new_tokens=2_000), codes, ended, False)


def signal_scorers(codec: FakeCodec) -> tuple[VerdictScorer, VerdictScorer]:
    """The (partial, final) scorers a run without verification searches with: the signal checks only."""
    scorers = make_scorers(codec, ScoreWeights(), CompositeVerifier.signal_only("en"))
    return scorers.partial, scorers.final


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

    def for_partial_speech(self) -> Listening:
        return self

    def verify(self, items):
        self.seen.extend(item.audio for item in items)
        return [Verdict(passed=True, score=1.0) for _ in items]


def test_partial_candidates_decode_only_their_newest_audio() -> None:
    codec = FakeCodec()
    partial, final = signal_scorers(codec)
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
    partial, final = signal_scorers(SilentTail())
    speaking = np.arange(4 * CODES_PER_SECOND, dtype=np.int64) % 399 + 1
    stalled = speaking.copy()
    stalled[-2 * CODES_PER_SECOND :] = 0  # the newest two seconds are silence
    good, bad = partial.score([candidate(speaking), candidate(stalled)])
    assert good == 1.0  # a few seconds of a long sentence: "too short" does not count mid-sentence
    assert bad < good
    assert PARTIAL_CHECKS < FINAL_CHECKS and "too_short" not in PARTIAL_CHECKS
    whole_good = final.score([candidate(speaking, ended=True)])[0]
    assert whole_good < 1.0  # the same audio as a finished candidate is too short for its text


class Recording(Listening):
    """A fake verifier that keeps the items it was given, and fails the named checks."""

    def __init__(self, failures: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.items: list[VerifyItem] = []
        self.failures = failures

    def verify(self, items):
        self.items.extend(items)
        return [Verdict(passed=not self.failures, score=0.0, failures=self.failures) for _ in items]


def test_partial_candidates_say_how_long_they_have_spoken() -> None:
    partial, final = signal_scorers(FakeCodec())
    partial.verifier = recording = Recording()
    codes = np.arange(WINDOW + CONTEXT + 100, dtype=np.int64) % 400
    partial.score([candidate(codes)])
    assert recording.items[0].spoken_seconds == pytest.approx(codes.size / CODES_PER_SECOND)
    final.verifier = recording = Recording()
    final.score([candidate(codes, ended=True)])
    assert recording.items[0].spoken_seconds is None  # a finished candidate is judged whole


@pytest.mark.parametrize("check", ["speaker", "too_slow", "noisy"])
def test_partial_scores_count_the_calibrated_speaker_check_and_the_pace(check) -> None:
    partial, _ = signal_scorers(FakeCodec())
    codes = np.arange(WINDOW, dtype=np.int64) % 400
    partial.verifier = Recording()
    [clean] = partial.score([candidate(codes)])
    partial.verifier = Recording(failures=(check,))
    [failed] = partial.score([candidate(codes)])
    assert failed < clean
    assert check in PARTIAL_CHECKS and check in FINAL_CHECKS


def test_a_partial_candidate_past_its_sentences_length_loses_to_one_in_time() -> None:
    """The real verifier's partial form, its narrator's pace known: speech already longer than the
    whole sentence should take is a stall or a loop."""
    from llasa_cli.options import VerifyOptions

    verifier = CompositeVerifier(VerifyOptions(check_asr=False, check_speaker=False), None, None, None, "en")
    text = "A short sentence."
    for _ in range(4):  # the narrator's pace learnt from passed segments: the fake codec's tones
        done = FakeCodec().decode([np.arange(round(len(LONG_TEXT) / CHARS_PER_SECOND * CODES_PER_SECOND)) % 400])[0]
        verifier.verify([VerifyItem(LONG_TEXT, done)])
    assert verifier.pace.seconds_per_char is not None
    partial = make_scorers(FakeCodec(), ScoreWeights(), verifier).partial
    in_time = np.arange(round(1.0 * CODES_PER_SECOND), dtype=np.int64) % 400
    too_long = np.arange(round(8.0 * CODES_PER_SECOND), dtype=np.int64) % 400
    good, stalled = partial.score([candidate(in_time, text), candidate(too_long, text)])
    assert stalled < good


# --- the pipeline takes the chosen candidate's audio and verdict from the final scorer --------


class CountingComposite:
    """A signal-only CompositeVerifier that counts the clips it is asked about."""

    def __new__(cls, counts: list[int]):
        from llasa_cli.options import VerifyOptions
        from llasa_cli.verify.composite import CompositeVerifier

        class Counting(CompositeVerifier):
            def verify(self, items):
                counts.append(len(items))
                return super().verify(items)

        # No pace check: the pace learnt from passed segments would make a second verification of
        # the chosen candidate differ from the first.
        options = VerifyOptions(check_asr=False, check_speaker=False, check_pace=False, retries=1)
        return Counting(options, None, None, None, "en")


def _search_run(tmp_path, name: str, monkeypatch, recall: bool):
    from llasa_cli.engine.protocols import VoicePrompt
    from llasa_cli.job.store import JobStore
    from llasa_cli.options import EngineOptions, SamplingOptions, SearchOptions, VerifyOptions
    from llasa_cli.pipeline.events import SegmentDone
    from llasa_cli.pipeline.run_context import RunContext
    from llasa_cli.pipeline.synthesizer import SearchSetup, Synthesizer, VerifierSetup
    from llasa_cli.search.scorers import VerdictScorer

    from .fakes import FakeGenerator
    from .test_search import SyntheticLM
    from .test_synthesis import BOOK, RecordingSink, make_plan

    if not recall:
        monkeypatch.setattr(VerdictScorer, "recall", lambda self, text, codes: None)
    counts: list[int] = []
    verification = VerifierSetup(
        VerifyOptions(check_asr=False, check_speaker=False, retries=1), load=lambda ref: CountingComposite(counts)
    )
    search = SearchSetup(SearchOptions(best_of=3), SyntheticLM(alphabet=400, end_prob=0.05, min_len=30))
    codec = FakeCodec()
    synth = Synthesizer(FakeGenerator(), codec, SamplingOptions(), EngineOptions(batch_size=3), verification, search)
    voice = VoicePrompt(codes=np.arange(60, dtype=np.int64), text="Hi there.")
    with JobStore.open(tmp_path / name) as store:
        events = list(synth.run(make_plan(BOOK), RecordingSink(), RunContext(store=store, worker="w"), voice))
        records = {
            key: (store.codes(key).tolist(), store.segment(key).scores)
            for key, _ in store._conn.execute("SELECT key, text FROM positions")
        }
    done = [(e.segment.segment_id, e.attempts, e.flagged) for e in events if isinstance(e, SegmentDone)]
    return done, records, sum(counts), sum(n for n in codec.decode_calls)


def test_the_chosen_candidate_is_not_decoded_and_verified_twice(tmp_path, monkeypatch) -> None:
    reused = _search_run(tmp_path, "reused", monkeypatch, recall=True)
    monkeypatch.undo()
    again = _search_run(tmp_path, "again", monkeypatch, recall=False)
    assert reused[0] == again[0] and reused[1] == again[1]  # the same choices, attempts and verdicts
    attempts = sum(a for _, a, _ in reused[0])
    assert again[2] - reused[2] == attempts  # one verification fewer per attempt
    assert again[3] - reused[3] == attempts  # and one decode fewer


def test_a_searched_segment_books_its_judging_as_verification_time(tmp_path, monkeypatch) -> None:
    from llasa_cli.job.store import JobStore

    _search_run(tmp_path, "timed", monkeypatch, recall=True)
    with JobStore.open(tmp_path / "timed") as store:
        timings = [p.record.timings for p in store.plan_records()]
    for timing in timings:
        judged = timing["search"]["partial_scorer_seconds"] + timing["search"]["final_scorer_seconds"]
        assert timing["verify_seconds"] >= judged > 0
