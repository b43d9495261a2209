"""The m4b's life cycle through the `llasa` command: one audiobook, kept whole by redo, stitch and
changed options, with its tags, chapters and subtitles, and named in every summary of what was written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.audio.audio_io import find_ffmpeg
from llasa_cli.constants import SAMPLE_RATE
from llasa_cli.pipeline.job_folder import M4B_CHAPTERS, WORK_DIR_NAME

from .job_cli import events, llasa, model_args, ok, sha256
from .m4b_reader import read_audiobook_info

BOOK = """---
title: Three Little Chapters
author: Ann Author
---

# One

The tide came in.

# Two

She lit the lamp.

# Three

Morning came.
"""
BOOK_NAME = "three-little-chapters.m4b"
LOUDNESS_TOLERANCE_LU = 1.5


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "three_little.md"
    path.write_text(BOOK)
    return path


def synth(book: Path, out: Path, tiny_models, *extra: str) -> subprocess.CompletedProcess[str]:
    return ok(llasa("synth", book, "-o", out, *model_args(tiny_models), "--json", *extra))


def assert_the_book(out: Path) -> None:
    """One m4b in `out`, named by its title, with its tags and a mark per chapter."""
    assert sorted(p.name for p in out.glob("*.m4b")) == [BOOK_NAME]
    info = read_audiobook_info(out / BOOK_NAME)
    assert info.tags.get("title") == "Three Little Chapters" and info.tags.get("artist") == "Ann Author"
    assert [mark.title for mark in info.chapters] == ["One", "Two", "Three"]


def test_redo_stitch_and_reruns_keep_one_m4b_with_its_tags_and_new_audio(tmp_path, book, tiny_models):
    out = tmp_path / "out"
    first = synth(book, out, tiny_models, "--format", "m4b")
    [written] = events(first, "book")
    assert written["path"] == str((out / BOOK_NAME).resolve()) and written["chapters"] == 3
    assert not written["unchanged"]
    assert {e["book"] for e in events(first, "chapter")} == {written["path"]}
    assert_the_book(out)
    made = sha256(out / BOOK_NAME)

    again = synth(book, out, tiny_models, "--format", "m4b")
    assert events(again, "book")[0]["unchanged"] and sha256(out / BOOK_NAME) == made

    redone = ok(llasa("redo", out, "--segment", "3.1"))
    assert f"wrote {(out / BOOK_NAME).resolve()}" in redone.stderr
    assert_the_book(out)
    assert sha256(out / BOOK_NAME) != made  # the same book, with chapter three's new take

    redone_book = sha256(out / BOOK_NAME)
    (out / BOOK_NAME).unlink()
    (out / WORK_DIR_NAME / M4B_CHAPTERS / "01-one.wav").unlink()
    stitched = ok(llasa("stitch", out))
    assert f"wrote {(out / BOOK_NAME).resolve()}" in stitched.stdout
    assert (out / WORK_DIR_NAME / M4B_CHAPTERS / "01-one.wav").is_file()
    assert_the_book(out)
    assert sha256(out / BOOK_NAME) == redone_book  # rebuilt from the same stored codes


def decoded(path: Path) -> np.ndarray:
    """Any audio file as mono float samples at the codec rate, through ffmpeg."""
    command = [find_ffmpeg(), "-nostdin", "-v", "error", "-i", str(path.absolute()), "-f", "f32le", "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-"]  # fmt: skip
    return np.frombuffer(subprocess.run(command, capture_output=True, check=True).stdout, dtype="<f4")


def loudness(*paths: Path) -> float:
    """Integrated loudness (LUFS) of the files' audio, one after another."""
    import pyloudnorm

    audio = np.concatenate([decoded(path) for path in paths]).astype(np.float64)
    return float(pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(audio))


def test_changing_loudness_or_format_rebuilds_the_m4b_from_the_right_audio(tmp_path, book, tiny_models):
    out = tmp_path / "out"
    synth(book, out, tiny_models, "--format", "m4b", "--loudness", "acx")
    mastered = loudness(out / BOOK_NAME)
    synth(book, out, tiny_models, "--loudness", "off")
    unlevelled = loudness(out / "01-one.wav", out / "02-two.wav", out / "03-three.wav")
    assert abs(mastered - unlevelled) > 3 * LOUDNESS_TOLERANCE_LU  # so the check below can tell them apart
    rebuilt = synth(book, out, tiny_models, "--format", "m4b", "--loudness", "off")
    assert [e["unchanged"] for e in events(rebuilt, "chapter")] == [False, False, False]
    assert not events(rebuilt, "book")[0]["unchanged"]
    assert loudness(out / BOOK_NAME) == pytest.approx(unlevelled, abs=LOUDNESS_TOLERANCE_LU)
    assert (out / "01-one.wav").is_file()  # the wav run's files are another format's: left alone


def test_subtitles_with_an_m4b_are_one_set_beside_it_timed_from_the_start_of_the_book(tmp_path, book, tiny_models):
    out = tmp_path / "out"
    run = synth(book, out, tiny_models, "--format", "m4b", "--subtitles")
    stem = out / BOOK_NAME.removesuffix(".m4b")
    sidecars = [stem.with_suffix(suffix) for suffix in (".srt", ".vtt", ".json")]
    assert events(run, "book")[0]["subtitles"] == [str(p.resolve()) for p in sidecars]
    assert all(p.is_file() for p in sidecars)
    marks = read_audiobook_info(out / BOOK_NAME).chapters
    srt = sidecars[0].read_text()
    cues = [block.splitlines() for block in srt.strip().split("\n\n")]
    texts = [" ".join(cue[2:]) for cue in cues]
    assert texts == ["One", "The tide came in.", "Two", "She lit the lamp.", "Three", "Morning came."]
    starts = [_seconds(cue[1].split(" --> ")[0]) for cue in cues]
    for chapter, mark in enumerate(marks):  # each chapter's title cue falls inside its mark
        assert mark.start_ms / 1000 <= starts[2 * chapter] < mark.end_ms / 1000
    assert "Three Little Chapters" not in srt and (out / BOOK_NAME).is_file()


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
