"""The synthesis pipeline with fake models: batching, narrator, token caps, sinks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.audio.sinks import FolderSink, StreamSink, WrittenChapter
from llasa_cli.constants import CODES_PER_SECOND, CONTEXT_TOKENS, SAMPLE_RATE, SAMPLES_PER_CODE
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.engine.sampling import segment_seed
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, StitchOptions, VerifyOptions
from llasa_cli.pipeline.events import ChapterHeld, ChapterWritten, JobFinished, NarratorFixed, RunStopped, SegmentDone
from llasa_cli.pipeline.renderer import PROMPT_TOKENS_METRIC, PROMPT_TOO_LONG, token_cap
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer, VerifierSetup, choose_narrator_segment
from llasa_cli.text.plan import Chapter, Pause, Plan, Segment
from llasa_cli.verify.signal_checks import EMPTY

from .fakes import FakeCodec, FakeGenerator, integrity


def make_plan(chapter_texts: list[list[str]]) -> Plan:
    chapters, segments = [], []
    for number, texts in enumerate(chapter_texts, start=1):
        chapters.append(Chapter(number, f"Part {number}", f"{number:02d}-part-{number}", tuple(texts)))
        for index, text in enumerate(texts):
            last = index == len(texts) - 1
            segments.append(
                Segment(
                    chapter=number,
                    chapter_title=f"Part {number}",
                    index=index,
                    paragraph=index,
                    text=text,
                    est_seconds=len(text) / 15,
                    pause_after=Pause.CHAPTER if last else Pause.PARAGRAPH,
                )
            )
    return Plan(tuple(chapters), tuple(segments))


BOOK = [
    ["The keeper climbed the stairs at dusk.", "Wind.", "He lit the lamp and watched the sea for ships."],
    ["Morning came grey and cold over the rocks.", "A boat was drifting near the reef, empty."],
    ["She rowed out alone.", "Nobody on the shore believed what she found."],
]


class RecordingSink:
    def __init__(self) -> None:
        self.chapters: list[tuple[Chapter, list[tuple[np.ndarray, Segment]]]] = []
        self.closed = False

    def destination(self, chapter):
        return f"mem:{chapter.slug}"

    def exists(self, chapter):
        return False

    def fingerprint(self):
        return "recording"

    def write(self, chapter, pieces):
        self.chapters.append((chapter, list(pieces)))
        return WrittenChapter(f"mem:{chapter.slug}", sum(len(a) for a, _ in pieces) / SAMPLE_RATE)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def store(tmp_path):
    with JobStore.open(tmp_path / "job") as opened:
        yield opened


def run(plan, store, voice=None, batch_size=2, generator=None):
    generator = generator or FakeGenerator()
    codec = FakeCodec()
    sink = RecordingSink()
    synth = Synthesizer(generator, codec, SamplingOptions(seed=7), EngineOptions(batch_size=batch_size))
    events = list(synth.run(plan, sink, RunContext(store=store, worker="test"), voice))
    return events, generator, codec, sink


def voiced(generator: FakeGenerator) -> list:
    return [r for r in generator.requests if r.voice is not None]


def test_every_segment_spoken_once_in_order_and_chapters_written(store):
    plan = make_plan(BOOK)
    events, generator, _, sink = run(plan, store)
    done = [e.segment.segment_id for e in events if isinstance(e, SegmentDone)]
    assert sorted(done) == sorted(s.segment_id for s in plan.segments)
    assert sorted(r.text for r in voiced(generator)) == sorted(s.text for s in plan.segments)
    assert [c.number for c, _ in sink.chapters] == [1, 2, 3]
    for chapter, pieces in sink.chapters:
        assert [s.text for _, s in pieces] == list(chapter.paragraphs)
        assert all(len(audio) > 0 for audio, _ in pieces)
    assert sink.closed
    assert sum(isinstance(e, ChapterWritten) for e in events) == 3


def test_without_voice_the_first_comfortable_segment_becomes_the_narrator(store):
    plan = make_plan(BOOK)
    events, generator, _, _ = run(plan, store)
    narrator = next(e for e in events if isinstance(e, NarratorFixed))
    assert narrator.segment.text == BOOK[0][0]
    first, *rest = generator.requests
    assert first.voice is None and first.text == BOOK[0][0]
    assert rest and all(np.array_equal(r.voice.codes, narrator.voice.codes) for r in rest)
    assert narrator.voice.text == BOOK[0][0]


def test_a_resumed_job_keeps_its_narrator_and_redoes_nothing(store):
    plan = make_plan(BOOK)
    first_events, _, _, _ = run(plan, store)
    narrator = next(e for e in first_events if isinstance(e, NarratorFixed)).voice
    events, generator, _, sink = run(plan, store)
    assert generator.requests == []
    assert not any(isinstance(e, NarratorFixed) for e in events)
    assert np.array_equal(store.load_voice().codes, narrator.codes)
    assert len(sink.chapters) == 3


def test_given_voice_is_used_for_every_segment_and_no_narrator_is_fixed(store):
    voice = VoicePrompt(codes=np.arange(100, dtype=np.int64), text="Hello there.")
    events, generator, _, _ = run(make_plan(BOOK), store, voice=voice)
    assert not any(isinstance(e, NarratorFixed) for e in events)
    assert all(r.voice is voice for r in generator.requests)


def test_batches_respect_size_and_group_similar_lengths(store):
    events, generator, codec, _ = run(make_plan(BOOK), store, batch_size=2)
    assert all(len(b) <= 2 for b in generator.batches)
    chapter_one = generator.batches[1]  # the first batch after the narrator's
    assert [r.text for r in chapter_one] == ["Wind.", "The keeper climbed the stairs at dusk."]
    # one decode per generated batch and nothing more: chapters reuse the audio decoded for their batches
    assert codec.decode_calls == [len(b) for b in generator.batches]


def test_seeds_depend_on_text_and_run_seed_only(tmp_path):
    with JobStore.open(tmp_path / "a") as store_a, JobStore.open(tmp_path / "b") as store_b:
        _, gen_a, _, _ = run(make_plan(BOOK), store_a, batch_size=1)
        _, gen_b, _, _ = run(make_plan(BOOK), store_b, batch_size=8)
    seeds_a = {r.text: r.seed for r in voiced(gen_a)}
    seeds_b = {r.text: r.seed for r in voiced(gen_b)}
    assert seeds_a == seeds_b
    assert seeds_a[BOOK[1][0]] == segment_seed(7, BOOK[1][0])


def test_narrator_that_runs_away_is_sampled_again(store):
    generator = FakeGenerator()
    generator.enqueue(BOOK[0][0], [1] * 30, hit_cap=True)
    generator.enqueue(BOOK[0][0], [])
    events, generator, _, _ = run(make_plan(BOOK), store, generator=generator)
    narrator = next(e for e in events if isinstance(e, NarratorFixed))
    assert len(narrator.voice.codes) > 0
    narrator_requests = [r for r in generator.requests if r.voice is None]
    assert len(narrator_requests) == 3
    assert len({r.seed for r in narrator_requests}) == 3


def test_stop_request_ends_after_the_batch_and_a_rerun_finishes(store):
    plan = make_plan(BOOK)
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    generator = FakeGenerator()
    synth = Synthesizer(generator, FakeCodec(), SamplingOptions(), EngineOptions(batch_size=2))
    stops = iter([None, None, "interrupted"])
    context = RunContext(store=store, worker="w1", stop_reason=lambda: next(stops, "interrupted"))
    events = list(synth.run(plan, RecordingSink(), context, voice))
    assert isinstance(events[-1], RunStopped)
    first = len(generator.requests)
    assert 0 < first < len(plan.segments)
    events = list(synth.run(plan, RecordingSink(), RunContext(store=store, worker="w2"), voice))
    assert len(generator.requests) == len(plan.segments)  # nothing done twice
    assert store.status().done == store.status().total


def test_token_cap_has_headroom_a_floor_and_stays_in_context():
    assert token_cap(4.0, prompt_tokens=100, headroom=2.0) == 4 * CODES_PER_SECOND * 2
    assert token_cap(0.05, prompt_tokens=100, headroom=2.0) == CODES_PER_SECOND
    assert token_cap(30.0, prompt_tokens=1_900, headroom=2.0) == CONTEXT_TOKENS - 1_900
    assert token_cap(3.0, prompt_tokens=CONTEXT_TOKENS + 5, headroom=2.0) == 0


def test_choose_narrator_skips_titles_and_too_long_segments():
    plan = make_plan([["x" * 400, "A sentence of a comfortable length here."]])
    title = Segment(1, "T", 0, -1, "Chapter One", 0.7, Pause.TITLE, is_title=True)
    chosen = choose_narrator_segment((title, *plan.segments))
    assert chosen.text == "A sentence of a comfortable length here."


def synth_to_folder(plan, folder: Path, store, stitch: StitchOptions, generator=None):
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    synth = Synthesizer(generator or FakeGenerator(), FakeCodec(), SamplingOptions(), EngineOptions())
    return list(synth.run(plan, FolderSink(folder, stitch), RunContext(store=store, worker="w"), voice))


def test_folder_sink_writes_numbered_files_with_segments_plus_pauses(tmp_path: Path, store):
    stitch = StitchOptions(loudness_lufs=None, fade_ms=0.0, trim_db=-90.0)
    plan = make_plan(BOOK)
    events = synth_to_folder(plan, tmp_path / "out", store, stitch)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["01-part-1.wav", "02-part-2.wav", "03-part-3.wav"]
    done = {e.segment.segment_id: e for e in events if isinstance(e, SegmentDone)}
    for chapter in plan.chapters:
        segments = plan.segments_of(chapter.number)
        speech = sum(round(done[s.segment_id].audio_seconds * SAMPLE_RATE) for s in segments)
        pauses = stitch.lead_in + stitch.paragraph_pause * (len(segments) - 1) + stitch.chapter_pause
        data, rate = sf.read(tmp_path / "out" / f"{chapter.slug}.wav")
        assert rate == SAMPLE_RATE
        assert len(data) == speech + round(pauses * SAMPLE_RATE)
        assert speech % SAMPLES_PER_CODE == 0


def test_editing_one_sentence_redoes_that_segment_and_rewrites_only_its_chapter(tmp_path: Path, store):
    stitch = StitchOptions(loudness_lufs=None)
    synth_to_folder(make_plan(BOOK), tmp_path / "out", store, stitch)
    edited = [list(chapter) for chapter in BOOK]
    edited[1][1] = "A boat was drifting near the reef, and it was empty."
    generator = FakeGenerator()
    events = synth_to_folder(make_plan(edited), tmp_path / "out", store, stitch, generator)
    assert [r.text for r in generator.requests] == [edited[1][1]]
    written = {e.chapter.number: e.unchanged for e in events if isinstance(e, ChapterWritten)}
    assert written == {1: True, 2: False, 3: True}


def test_a_deleted_chapter_file_is_written_again_from_stored_codes(tmp_path: Path, store):
    stitch = StitchOptions(loudness_lufs=None)
    synth_to_folder(make_plan(BOOK), tmp_path / "out", store, stitch)
    before = (tmp_path / "out" / "02-part-2.wav").read_bytes()
    (tmp_path / "out" / "02-part-2.wav").unlink()
    generator = FakeGenerator()
    synth_to_folder(make_plan(BOOK), tmp_path / "out", store, stitch, generator)
    assert generator.requests == []
    assert (tmp_path / "out" / "02-part-2.wav").read_bytes() == before


def test_stream_sink_writes_one_valid_wav(store):
    buffer = io.BytesIO()
    stitch = StitchOptions(loudness_lufs=None)
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    synth = Synthesizer(FakeGenerator(), FakeCodec(), SamplingOptions(), EngineOptions())
    events = list(synth.run(make_plan(BOOK), StreamSink(buffer, stitch), RunContext(store=store, worker="w"), voice))
    buffer.seek(0)
    data, rate = sf.read(buffer)
    total = sum(e.audio_seconds for e in events if isinstance(e, ChapterWritten))
    assert rate == SAMPLE_RATE
    assert len(data) == pytest.approx(total * SAMPLE_RATE, abs=3)


def test_a_full_disk_while_writing_a_chapter_loses_no_finished_segment(tmp_path: Path, store, monkeypatch):
    import errno

    from llasa_cli.audio import export
    from llasa_cli.errors import OutputError

    real_write = export.atomic_write_bytes
    calls = {"n": 0}

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] == 2:  # the second chapter file: the disk is full
            raise export.output_error(Path(path), OSError(errno.ENOSPC, "No space left on device"))
        return real_write(path, data)

    monkeypatch.setattr(export, "atomic_write_bytes", flaky)
    stitch = StitchOptions(loudness_lufs=None)
    with pytest.raises(OutputError, match="full"):
        synth_to_folder(make_plan(BOOK), tmp_path / "out", store, stitch)
    assert integrity(store.path) == "ok"
    finished = store.status().done
    assert finished >= len(BOOK[0]) + len(BOOK[1])  # chapter two's segments were saved before its file failed
    assert not list((tmp_path / "out").glob("*.part"))
    generator = FakeGenerator()
    events = synth_to_folder(make_plan(BOOK), tmp_path / "out", store, stitch, generator)
    assert len(generator.requests) == sum(len(c) for c in BOOK) - finished
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == [
        "01-part-1.wav",
        "02-part-2.wav",
        "03-part-3.wav",
    ]
    assert [e.unchanged for e in events if isinstance(e, ChapterWritten)] == [True, False, False]


class PrefersLongAudio:
    """A fake verifier: a segment passes when its audio is at least `min_samples` long."""

    def __init__(self, min_samples: int) -> None:
        self.min_samples = min_samples
        self.calls: list[int] = []

    def for_partial_speech(self) -> PrefersLongAudio:
        return self

    def verify(self, items):
        from llasa_cli.verify.verdict import Verdict

        self.calls.append(len(items))
        return [
            Verdict(passed=len(i.audio) >= self.min_samples, score=len(i.audio) / 1e6, failures=("too_short",) * (
                len(i.audio) < self.min_samples), transcript=f"{len(i.audio)} samples")
            for i in items
        ]  # fmt: skip


def verified_run(store, generator, verifier, retries=3, strict=False):
    from llasa_cli.options import VerifyOptions
    from llasa_cli.pipeline.synthesizer import VerifierSetup

    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    verification = VerifierSetup(VerifyOptions(retries=retries, strict=strict), load=lambda reference: verifier)
    synth = Synthesizer(generator, FakeCodec(), SamplingOptions(), EngineOptions(batch_size=4), verification)
    sink = RecordingSink()
    return list(synth.run(make_plan(BOOK), sink, RunContext(store=store, worker="w"), voice)), sink


def test_a_bad_first_candidate_is_replaced_by_the_good_second_one(store):
    generator = FakeGenerator()
    text = BOOK[0][0]
    generator.enqueue(text, [7] * 2)  # too short: fails
    generator.enqueue(text, [9] * 40)  # long enough: passes
    events, sink = verified_run(store, generator, PrefersLongAudio(min_samples=10 * SAMPLES_PER_CODE))
    done = next(e for e in events if isinstance(e, SegmentDone) and e.segment.text == text)
    assert done.attempts == 2 and not done.flagged and done.codes == 40
    key = next(k for k, v in store._conn.execute("SELECT key, text FROM positions") if v == text)
    assert np.array_equal(store.codes(key), [9] * 40)
    assert store.segment(key).attempts == 2 and store.segment(key).scores["passed"] is True
    seeds = [r.seed for r in generator.requests if r.text == text and r.voice is not None]
    assert len(set(seeds)) == 2  # the retry drew a new seed


def test_a_segment_failing_every_attempt_is_flagged_kept_and_held_back_in_strict_mode(store):
    generator = FakeGenerator()
    text = BOOK[1][1]
    for _ in range(4):
        generator.enqueue(text, [3] * 2)
    events, sink = verified_run(store, generator, PrefersLongAudio(min_samples=10 * SAMPLES_PER_CODE), strict=True)
    done = next(e for e in events if isinstance(e, SegmentDone) and e.segment.text == text)
    assert done.flagged and done.attempts == 4 and done.codes == 2
    held = [e for e in events if isinstance(e, ChapterHeld)]
    assert [h.chapter.number for h in held] == [2] and held[0].flagged == ("2.1",)
    assert [c.number for c, _ in sink.chapters] == [1, 3]
    finished = events[-1]
    assert isinstance(finished, JobFinished) and finished.flagged == ("2.1",)


def test_report_agrees_with_the_run_summary_and_the_job_store(tmp_path: Path, store, capsys):
    import json

    from llasa_cli.cli.app import main

    generator = FakeGenerator()
    text = BOOK[2][0]
    for _ in range(4):
        generator.enqueue(text, [3] * 2)
    generator.enqueue(BOOK[0][1], [5] * 2)  # fails once, then passes with the default length
    events, _ = verified_run(store, generator, PrefersLongAudio(min_samples=10 * SAMPLES_PER_CODE))
    finished = events[-1]
    retries = sum(e.attempts - 1 for e in events if isinstance(e, SegmentDone))
    assert main(["report", str(tmp_path), "--work-dir", str(tmp_path / "job"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in report["flagged"]] == list(finished.flagged) == ["3.0"]
    assert report["flagged"][0]["text"] == text and report["flagged"][0]["attempts"] == 4
    assert report["flagged"][0]["transcript"] == f"{2 * SAMPLES_PER_CODE} samples"
    assert report["retries"] == retries == 3 + 1
    assert report["segments_done"] == store.status().finished == sum(len(c) for c in BOOK)
    # The flagged segment is finished (its best attempt is stitched) but counts as failed, not done.
    assert main(["status", str(tmp_path), "--work-dir", str(tmp_path / "job"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["total"], status["done"], status["failed"], status["pending"]) == (7, 6, 1, 0)
    assert [c["failed"] for c in status["chapters"]] == [0, 0, 1]


class ScoresByLength:
    """A fake verifier with the real checks' metrics: WER falls and similarity rises with length."""

    def __init__(self, min_samples: int) -> None:
        self.min_samples = min_samples

    def for_partial_speech(self) -> ScoresByLength:
        return self

    def verify(self, items):
        from llasa_cli.verify.verdict import Verdict

        verdicts = []
        for item in items:
            short = len(item.audio) < self.min_samples
            metrics = {"wer": 0.0, "cer": 0.0, "similarity": 0.9}
            if short:
                metrics = {"wer": 0.75, "cer": 0.5, "similarity": 0.25}
            verdicts.append(Verdict(not short, metrics["similarity"], metrics, ("wer", "speaker") * short, "heard"))
        return verdicts


def test_report_shows_the_stored_scores_against_their_thresholds(tmp_path: Path, store, capsys):
    import json

    from llasa_cli.cli.app import main
    from llasa_cli.options import VerifyOptions

    generator = FakeGenerator()
    text = BOOK[2][0]
    for _ in range(4):
        generator.enqueue(text, [3] * 2)
    events, _ = verified_run(store, generator, ScoresByLength(min_samples=10 * SAMPLES_PER_CODE))
    work = ["--work-dir", str(tmp_path / "job")]
    assert main(["report", str(tmp_path), *work, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (flagged,) = report["flagged"]
    assert flagged["id"] == "3.0" and flagged["failures"] == ["wer", "speaker"]
    assert flagged["metrics"] == {"wer": 0.75, "cer": 0.5, "similarity": 0.25}
    failed = {c["check"]: (c["value"], c["limit"]) for c in flagged["checks"] if not c["passed"]}
    defaults = VerifyOptions()
    assert failed == {"wer": (0.75, defaults.max_wer), "speaker": (0.25, defaults.similarity_threshold)}
    finished = [p for p in store.plan_records() if p.record.status == "done"]
    assert report["mean_wer"] == round(0.75 / len(finished), 4)
    assert report["mean_similarity"] == round((0.9 * (len(finished) - 1) + 0.25) / len(finished), 4)
    assert report["search"] is None
    assert main(["report", str(tmp_path), *work]) == 0
    text_report = " ".join(capsys.readouterr().out.split())
    assert f"mean WER {0.75 / len(finished):.3f}" in text_report
    assert f"wer 0.75 (<= {defaults.max_wer:.3g})" in text_report
    assert main(["status", str(tmp_path), *work, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["failed"] == len(report["flagged"]) == 1


class CharPrompts(FakeGenerator):
    """A fake LM whose prompt costs a token per character, so one very long word fills the context."""

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return len(text) + (len(voice.codes) if voice else 0)


LONG_WORD = "a" * 20_000


def key_of(store, text: str) -> str:
    return next(k for k, v in store._conn.execute("SELECT key, text FROM positions") if v == text)


def test_a_text_too_long_for_the_context_is_flagged_with_its_reason_without_verification(store):
    """No codes fit after a 20,000-letter word's prompt: the segment is not silently 'done' but
    flagged (exit 4 in the CLI) with the reason, and the rest of the book is spoken as usual."""
    plan = make_plan([["The keeper climbed the stairs at dusk.", LONG_WORD, "He lit the lamp."]])
    events, generator, _, _ = run(plan, store, generator=CharPrompts())
    done = {e.segment.text: e for e in events if isinstance(e, SegmentDone)}
    word = done[LONG_WORD]
    assert word.codes == 0 and word.flagged and word.failures == (PROMPT_TOO_LONG,)
    assert not any(e.flagged for text, e in done.items() if text != LONG_WORD)
    finished = events[-1]
    assert isinstance(finished, JobFinished) and finished.flagged == ("1.1",)
    record = store.segment(key_of(store, LONG_WORD))
    assert record.flagged and record.scores["failures"] == [PROMPT_TOO_LONG]
    assert record.scores[PROMPT_TOKENS_METRIC] >= CONTEXT_TOKENS
    assert all(r.max_new_tokens == 0 for r in generator.requests if r.text == LONG_WORD)


def test_a_segment_that_gets_no_codes_is_flagged_empty_without_verification(store):
    generator = FakeGenerator()
    generator.enqueue(BOOK[0][1], [])  # the model ends it at once, though it had room
    events, _, _, _ = run(make_plan(BOOK), store, voice=VoicePrompt(np.arange(5, dtype=np.int64), "Hi."),
                          generator=generator)  # fmt: skip
    done = next(e for e in events if isinstance(e, SegmentDone) and e.segment.text == BOOK[0][1])
    assert done.codes == 0 and done.flagged and done.failures == (EMPTY,)
    assert events[-1].flagged == ("1.1",)


def test_verified_runs_name_the_prompt_too_long_and_do_not_retry_it(store):
    generator = CharPrompts()
    verifier = PrefersLongAudio(min_samples=1)
    voice = VoicePrompt(codes=np.arange(10, dtype=np.int64), text="Hi.")
    verification = VerifierSetup(VerifyOptions(retries=3), load=lambda reference: verifier)
    synth = Synthesizer(generator, FakeCodec(), SamplingOptions(), EngineOptions(batch_size=4), verification)
    plan = make_plan([["A line to speak.", LONG_WORD]])
    events = list(synth.run(plan, RecordingSink(), RunContext(store=store, worker="w"), voice))
    word = next(e for e in events if isinstance(e, SegmentDone) and e.segment.text == LONG_WORD)
    assert word.flagged and word.failures == (PROMPT_TOO_LONG,) and word.attempts == 1
    assert [r.text for r in generator.requests].count(LONG_WORD) == 1
