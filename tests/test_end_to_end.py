"""End to end with tiny random models of the real architectures, loaded by the users' loaders."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from llasa_cli.cli.app import main
from llasa_cli.cli.plan_view import format_duration
from llasa_cli.constants import SAMPLE_RATE, SAMPLES_PER_CODE
from llasa_cli.engine.loading import SpeechModels
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.options import EngineOptions, SamplingOptions, StitchOptions, TextOptions, VerifyOptions
from llasa_cli.pipeline.events import ChapterWritten, SegmentDone
from llasa_cli.pipeline.job_folder import open_job
from llasa_cli.pipeline.request import RunRequest
from llasa_cli.pipeline.run import load_plan, open_sink, read_input, run_events
from llasa_cli.pipeline.run_context import RunContext

MANUSCRIPT = """Chapter One: The Keeper

The keeper climbed the stairs at dusk. He lit the lamp.

Chapter Two: The Storm

Rain came in sideways. The glass shook.

Chapter Three: The Morning

A boat lay on the rocks, empty.
"""


def write_book(tmp_path: Path) -> Path:
    book = tmp_path / "book.txt"
    book.write_text(MANUSCRIPT)
    return book


def test_cli_writes_one_file_per_chapter_and_verifies_every_segment(tmp_path, tiny_models, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "synth", str(write_book(tmp_path)), "-o", str(out), "--model", str(tiny_models.llasa),
            "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--batch-size", "4", "--top-p", "1.0",
            "--speaker-model", str(tiny_models.wavlm), "--no-asr-check", "--retries", "1", "--json",
        ]
    )  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    segments = [e for e in events if e["event"] == "segment"]
    # Random weights never emit the stop token, so every attempt runs into its cap and fails the
    # hit_cap check: each segment is tried twice (--retries 1), flagged, and still written.
    assert segments and all(e["attempts"] == 2 and e["flagged"] and "hit_cap" in e["failures"] for e in segments)
    summary = events[-1]
    assert summary["event"] == "summary" and sorted(summary["segments_flagged"]) == sorted(e["id"] for e in segments)
    assert code == 4
    files = sorted(p.name for p in out.glob("*.wav"))
    assert files == [
        "01-chapter-one-the-keeper.wav",
        "02-chapter-two-the-storm.wav",
        "03-chapter-three-the-morning.wav",
    ]
    for name in files:
        info = sf.info(out / name)
        assert info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames > 0


def test_chapter_length_is_generated_speech_plus_pauses_and_no_voice_leaks(
    tmp_path, tiny_models, tiny_generator, tiny_codec
):
    # Trimming off and fades off, so every generated sample must appear in the file, and nothing else.
    stitch = StitchOptions(trim_db=-400.0, fade_ms=0.0, loudness_lufs=None)
    request = RunRequest(
        source=str(write_book(tmp_path)),
        output=str(tmp_path / "out"),
        stitch=stitch,
        text=TextOptions(),
        sampling=SamplingOptions(seed=3),
        engine=EngineOptions(batch_size=3),
        verify=VerifyOptions(enabled=False),
    )
    voice_codes = np.arange(1_000, 1_000 + 150, dtype=np.int64)  # 3 s of prompt that must not leak
    voice = VoicePrompt(codes=voice_codes, text="This is the narrator speaking.")
    manuscript = read_input(request)
    plan = load_plan(request, manuscript)
    models = SpeechModels(generator=tiny_generator, codec=tiny_codec, device="cpu")
    with open_job(request, manuscript) as store:
        context = RunContext(store=store, worker="test")
        events = list(run_events(request, plan, models, voice, open_sink(request), context))
    done = {e.segment.segment_id: e for e in events if isinstance(e, SegmentDone)}
    written = [e for e in events if isinstance(e, ChapterWritten)]
    assert len(written) == 3
    for event in written:
        segments = plan.segments_of(event.chapter.number)
        speech = sum(round(done[s.segment_id].audio_seconds * SAMPLE_RATE) for s in segments)
        codes = sum(done[s.segment_id].codes for s in segments)
        assert speech == codes * SAMPLES_PER_CODE  # the segments' own codes, no voice-prompt codes
        pauses = [
            stitch.title_pause
            if s.is_title
            else stitch.sentence_pause
            if s.pause_after.value == "sentence"
            else stitch.paragraph_pause
            for s in segments[:-1]
        ]
        expected = speech + round((stitch.lead_in + sum(pauses) + stitch.chapter_pause) * SAMPLE_RATE)
        frames = sf.info(event.destination).frames
        assert abs(frames - expected) <= len(segments) + 2  # each pause rounds to whole samples on its own


def test_stdout_stream_is_one_valid_wav(tmp_path, tiny_models, capfdbinary):
    code = main(
        [
            "synth",
            "--text",
            "Hello there. This is a short line.",
            "-o",
            "-",
            "--model",
            str(tiny_models.llasa),
            "--codec",
            str(tiny_models.xcodec2),
            "--device",
            "cpu",
            "--no-verify",
        ]
    )
    assert code == 0
    captured = capfdbinary.readouterr()
    data, rate = sf.read(io.BytesIO(captured.out))
    assert rate == SAMPLE_RATE and len(data) > SAMPLE_RATE  # lead-in + speech + final pause
    # The summary's length of audio written is the stream's, pauses included (not the speech alone).
    summary = captured.err.decode().strip().splitlines()[-1]
    assert summary.startswith("complete: ")
    assert f"wrote 1 chapter(s), {format_duration(len(data) / rate)} of audio" in summary, summary


def test_a_rebuild_only_run_says_so_and_shows_no_real_time_factor(tmp_path, tiny_models, capsys):
    book, out = write_book(tmp_path), tmp_path / "out"
    args = ["synth", str(book), "-o", str(out), "--model", str(tiny_models.llasa),
            "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--no-verify"]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().err.strip().splitlines()[-1]
    assert "of speech made in" in first and "RTF" in first and "wrote 3 chapter(s)" in first
    (out / "02-chapter-two-the-storm.wav").unlink()
    assert main(args) == 0
    rebuilt = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"complete: (\d+)/\1 segments, nothing new to synthesise", rebuilt), rebuilt
    assert "RTF" not in rebuilt and "wrote 1 chapter(s)" in rebuilt


def test_a_missing_verifier_model_fails_before_any_synthesis(tmp_path, tiny_models, capsys):
    out = tmp_path / "out"
    args = ["synth", str(write_book(tmp_path)), "-o", str(out), "--model", str(tiny_models.llasa),
            "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--asr-model", "base"]  # fmt: skip
    assert main(args) == 20  # Whisper 'base' cannot be fetched offline
    assert "Whisper" in capsys.readouterr().err
    log = out / ".llasa" / "llasa.log"
    assert not log.exists() or "start" not in log.read_text()
