"""Audiobook outputs wired through `synth`'s sinks: m4b, subtitles, ACX mastering, EPUB and front matter.

The models are fakes (tones per code); what is checked is the wiring from options to files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.audio.acx import check_acx
from llasa_cli.cli.app import main
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, StitchOptions
from llasa_cli.pipeline.events import ChapterWritten
from llasa_cli.pipeline.request import RunRequest
from llasa_cli.pipeline.run import load_plan, open_sink, read_input
from llasa_cli.pipeline.run_context import RunContext
from llasa_cli.pipeline.synthesizer import Synthesizer

from .fakes import FakeCodec, FakeGenerator
from .m4b_reader import read_audiobook_info
from .test_epub import build_book

MARKDOWN = """---
title: The Salt Road
author: Ada Greene
---

# The Harbour

Boats came in at dawn. The nets were full.

# The Market

Fish and bread. Coins and shouting.
"""
VOICE = VoicePrompt(codes=np.arange(20, dtype=np.int64), text="Hello.")


def synth(tmp_path: Path, stitch: StitchOptions, source: Path, **request_fields) -> list:
    request = RunRequest(source=str(source), output=str(tmp_path / "out"), stitch=stitch, **request_fields)
    manuscript = read_input(request)
    plan = load_plan(request, manuscript)
    synthesizer = Synthesizer(FakeGenerator(), FakeCodec(), SamplingOptions(), EngineOptions())
    with JobStore.open(tmp_path / "out" / ".llasa") as store:
        sink = open_sink(request, manuscript)
        return list(synthesizer.run(plan, sink, RunContext(store=store, worker="t"), VOICE))


@pytest.fixture
def markdown_book(tmp_path: Path) -> Path:
    path = tmp_path / "salt_road.md"
    path.write_text(MARKDOWN)
    return path


def test_front_matter_is_metadata_not_speech(markdown_book: Path):
    manuscript = read_input(RunRequest(source=str(markdown_book), output="x"))
    assert manuscript.front_matter == {"title": "The Salt Road", "author": "Ada Greene"}
    assert "Ada Greene" not in manuscript.text and "title:" not in manuscript.text


def test_m4b_has_a_chapter_per_manuscript_chapter_and_the_metadata(tmp_path: Path, markdown_book: Path):
    stitch = StitchOptions(format="m4b")
    events = synth(tmp_path, stitch, markdown_book, metadata={"narrator": "A. Reader", "year": 2026})
    book = tmp_path / "out" / "the-salt-road.m4b"
    info = read_audiobook_info(book)
    assert [c.title for c in info.chapters] == ["The Harbour", "The Market"]
    assert info.tags.get("title") == "The Salt Road"
    assert info.tags.get("artist") == "Ada Greene"
    assert "2026" in info.tags.get("date", "")
    seconds = [e.audio_seconds for e in events if isinstance(e, ChapterWritten)]
    spans = [(c.end_ms - c.start_ms) / 1000 for c in info.chapters]
    assert spans == pytest.approx(seconds, abs=0.05)


def test_subtitle_cues_match_the_chapter_audio(tmp_path: Path, markdown_book: Path):
    stitch = StitchOptions(subtitles=True, loudness_lufs=None)
    synth(tmp_path, stitch, markdown_book)
    out = tmp_path / "out"
    srt = (out / "01-the-harbour.srt").read_text()
    vtt = (out / "01-the-harbour.vtt").read_text()
    assert srt.startswith("1\n00:00:00,500 --> ") and vtt.startswith("WEBVTT")
    duration = sf.info(out / "01-the-harbour.wav").duration
    last_end = srt.strip().split("\n\n")[-1].splitlines()[1].split(" --> ")[1]
    h, m, rest = last_end.split(":")
    end_seconds = int(h) * 3600 + int(m) * 60 + float(rest.replace(",", "."))
    # the last cue ends where the speech ends: the chapter pause (2 s) after it closes the file
    assert end_seconds == pytest.approx(duration - stitch.chapter_pause, abs=0.01)
    assert (out / "01-the-harbour.json").is_file()


def test_loudness_acx_makes_files_that_pass_the_acx_check(tmp_path: Path, markdown_book: Path):
    synth(tmp_path, StitchOptions(acx=True, loudness_lufs=None), markdown_book)
    for path in sorted((tmp_path / "out").glob("*.wav")):
        audio, rate = sf.read(path, dtype="float32")
        report = check_acx(audio, rate)
        assert report.passed, (path.name, report.failures)
    assert main(["check", str(tmp_path / "out")]) == 0


def test_epub_input_splits_into_its_chapters(tmp_path: Path, capsys):
    epub = build_book(tmp_path / "book.epub")
    assert main(["split", str(epub), "--json"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) > 2
    plan = load_plan(RunRequest(source=str(epub), output="x"))
    assert len(plan.chapters) >= 2
