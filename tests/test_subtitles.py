"""Subtitles and read-along manifests from the real segment positions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from llasa_cli.audio.stitch import ChapterAudio, assemble_chapter
from llasa_cli.audio.subtitles import (
    MAX_CUE_CHARS,
    Cue,
    format_timestamp,
    manifest,
    segment_cues,
    timed_segments,
    timed_segments_from_samples,
    to_srt,
    to_vtt,
    write_timings,
)
from llasa_cli.errors import OutputError
from llasa_cli.options import StitchOptions
from llasa_cli.text.plan import Pause

SR = 16_000
TOLERANCE_S = 0.010
LONG = (
    "The keeper climbed the stairs. He lit the lamp and watched the storm come in over the water, "
    "counting the seconds between the flashes and the thunder. Then he slept."
)
TEXTS = ["Chapter one.", "Rain fell on the harbour & the <old> pier.", LONG]
SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def spans_seconds(chapter: ChapterAudio) -> list[tuple[float, float]]:
    """(start, end) of each piece in seconds."""
    rate = chapter.sample_rate
    return [(start / rate, end / rate) for start, end in zip(chapter.starts, chapter.ends, strict=True)]


def parse_times(stamp: str) -> float:
    hours, minutes, rest = re.split(r":", stamp)
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))


@pytest.fixture(scope="module")
def chapter():
    rng = np.random.default_rng(0)
    pieces = [(0.2 * rng.standard_normal(int(SR * s)).astype(np.float32), Pause.SENTENCE) for s in (0.8, 2.0, 9.0)]
    return assemble_chapter(pieces, StitchOptions(), SR)


def test_cues_match_segment_spans(chapter):
    segments = timed_segments(TEXTS, chapter, ids=["1.0", "1.1", "1.2"])
    cues = segment_cues(segments)
    for segment, (start, end) in zip(segments, spans_seconds(chapter), strict=True):
        own = [cue for cue in cues if cue.segment_id == segment.segment_id]
        assert abs(own[0].start - start) < TOLERANCE_S and abs(own[-1].end - end) < TOLERANCE_S
        assert " ".join(cue.text for cue in own) == segment.text  # no text lost
    long_cues = [cue for cue in cues if cue.segment_id == "1.2"]
    assert len(long_cues) > 1 and all(len(cue.text) <= MAX_CUE_CHARS for cue in long_cues)
    assert [cue.part for cue in long_cues] == list(range(len(long_cues)))
    for before, after in zip(long_cues, long_cues[1:], strict=False):
        assert before.end == pytest.approx(after.start) and before.start < before.end
    # Proportional to characters: the share of time equals the share of text.
    span = long_cues[-1].end - long_cues[0].start
    first_share = (long_cues[0].end - long_cues[0].start) / span
    assert first_share == pytest.approx(len(long_cues[0].text) / sum(len(c.text) for c in long_cues))


def test_srt_and_vtt_are_well_formed(chapter):
    cues = segment_cues(timed_segments(TEXTS, chapter, ids=["1.0", "1.1", "1.2"]))
    srt = to_srt(cues)
    blocks = srt.strip("\n").split("\n\n")
    assert len(blocks) == len(cues)
    for number, (block, cue) in enumerate(zip(blocks, cues, strict=True), start=1):
        lines = block.split("\n")
        assert lines[0] == str(number)
        match = re.fullmatch(rf"({SRT_TIME}) --> ({SRT_TIME})", lines[1])
        assert match
        assert abs(parse_times(match.group(1)) - cue.start) <= 0.0005
        assert abs(parse_times(match.group(2)) - cue.end) <= 0.0005
        assert " ".join(lines[2:]) == cue.text
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n")
    vtt_blocks = vtt.strip("\n").split("\n\n")[1:]
    assert len(vtt_blocks) == len(cues)
    for block in vtt_blocks:
        lines = block.split("\n")
        assert re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", lines[1])
        assert "<" not in "".join(lines[2:]) and "-->" not in "".join(lines[2:])
    assert "&amp; the &lt;old&gt; pier" in vtt


def test_timestamps_format():
    assert format_timestamp(0, ",") == "00:00:00,000"
    assert format_timestamp(3723.4567, ".") == "01:02:03.457"
    assert format_timestamp(360000.0, ",") == "100:00:00,000"
    assert to_srt([Cue(0.0, 1.0, "a --> b")]).split("\n")[2] == "a -> b"


def test_manifest_lists_every_segment(chapter):
    segments = timed_segments(TEXTS, chapter, ids=["1.0", "1.1", "1.2"])
    document = manifest(segments, "01-chapter-one.wav", segment_cues(segments))
    entries = document["segments"]
    assert [entry["text"] for entry in entries] == TEXTS
    for entry, (start, end) in zip(entries, spans_seconds(chapter), strict=True):
        assert entry["file"] == "01-chapter-one.wav"
        assert abs(entry["start"] - start) < TOLERANCE_S and abs(entry["end"] - end) < TOLERANCE_S
    assert "parts" in entries[2] and "parts" not in entries[0]


def test_write_timings_is_atomic_and_safe(tmp_path, chapter):
    segments = timed_segments(TEXTS, chapter)
    paths = write_timings(tmp_path, "01-chapter-one", segments, "01-chapter-one.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "01-chapter-one.json",
        "01-chapter-one.srt",
        "01-chapter-one.vtt",
    ]
    assert json.loads(paths[2].read_text(encoding="utf-8"))["segments"][1]["text"] == TEXTS[1]
    for bad in ("../escape", "a/b", ".hidden", "", "UPPER"):
        with pytest.raises(OutputError):
            write_timings(tmp_path, bad, segments, "x.wav")


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError):
        timed_segments_from_samples(["a", "b"], [0], [10], SR)
