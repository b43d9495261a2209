"""Subtitles name who speaks: WebVTT's voice tag on a character's cues, `voice` in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llasa_cli.audio.stitch import ChapterAudio
from llasa_cli.audio.subtitles import read_manifest, timed_segments, write_timings


def test_a_characters_cues_carry_its_voice(tmp_path: Path) -> None:
    chapter = ChapterAudio(np.zeros(48_000, dtype=np.float32), 16_000, starts=(0, 16_000), ends=(16_000, 32_000))
    timed = timed_segments(["Rain fell.", '"Who <is> there?"'], chapter, ids=["1.0", "1.1"], voices=[None, "anna"])
    srt, vtt, manifest = write_timings(tmp_path, "01-one", timed, "01-one.wav")
    assert '1.1\n00:00:01.000 --> 00:00:02.000\n<v anna>"Who &lt;is&gt; there?"' in vtt.read_text()
    assert "<v" not in vtt.read_text().split("1.1")[0]  # the narrator's cue has no voice tag
    assert "anna" not in srt.read_text()  # SubRip has no voices
    entries = json.loads(manifest.read_text())["segments"]
    assert [(e["id"], e["voice"]) for e in entries] == [("1.0", None), ("1.1", "anna")]
    assert [s.voice for s in read_manifest(manifest)] == [None, "anna"]
