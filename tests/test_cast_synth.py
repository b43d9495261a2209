"""A book with a narrator and two characters through the installed `llasa split --json` and
`llasa synth` (tiny models, stored voices): every segment carries the right voice, the same words
in different voices have different keys, and a new voice for one character in the cast file
regenerates that character's segments and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME
from llasa_cli.voices.store import VoiceStore

from .job_cli import events, llasa, model_args, ok

BOOK = """---
title: Voices at the Lighthouse
cast:
  narrator: keeper
  anna: anna-voice
---

# Night

Rain fell on the lamp. [voice=anna]"Who's there?"[/voice]

[voice=ben]"Only me."[/voice] [voice=anna]"Yes."[/voice] [voice=ben]"Yes."[/voice] Yes.
"""

EXPECTED = [
    ("1.0", None, "Night"),
    ("1.1", None, "Rain fell on the lamp."),
    ("1.2", "anna", '"Who\'s there?"'),
    ("1.3", "ben", '"Only me."'),
    ("1.4", "anna", '"Yes."'),
    ("1.5", "ben", '"Yes."'),
    ("1.6", None, "Yes."),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A voice store with the narrator's and both characters' voices (codes the tiny codec decodes)."""
    folder = tmp_path / "home"
    monkeypatch.setenv("LLASA_HOME", str(folder))
    store = VoiceStore()
    for seed, name in enumerate(("keeper", "anna-voice", "ben-voice", "anna-new")):
        codes = np.random.default_rng(seed).integers(0, 65_536, size=40)
        store.add(name, codes, f"This is the voice called {name}.")
    return folder


def synth(book: Path, tiny_models, *extra: str) -> list[dict]:
    env_args = [*model_args(tiny_models), "--json", "--subtitles"]
    return events(ok(llasa("synth", book, "-o", book.parent / "out", *env_args, *extra)), "segment")


def test_a_cast_speaks_each_segment_in_its_own_voice_and_rekeys_only_a_recast_character(
    tmp_path: Path, home: Path, tiny_models
) -> None:
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    cast = tmp_path / "cast.yaml"
    cast.write_text("ben: ben-voice\n")
    split = [json.loads(line) for line in ok(llasa("split", book, "--json")).stdout.splitlines()]
    assert [(s["id"], s["voice"], s["text"]) for s in split] == EXPECTED

    first = synth(book, tiny_models, "--cast", cast)
    assert sorted((e["id"], e["voice"]) for e in first) == [(sid, voice) for sid, voice, _ in EXPECTED]
    with JobStore.open(tmp_path / "out" / WORK_DIR_NAME, read_only=True) as store:
        positions = {f"{p.chapter}.{p.index}": p for p in store.plan_records()}
    assert {sid: p.voice for sid, p in positions.items()} == {sid: voice for sid, voice, _ in EXPECTED}
    same_words = [positions[sid].record.key for sid in ("1.4", "1.5", "1.6")]
    assert len(set(same_words)) == 3  # "Yes." by anna, by ben and by the narrator: three keys
    manifest = json.loads((tmp_path / "out" / "01-night.json").read_text())
    assert [(e["id"], e["voice"]) for e in manifest["segments"]] == [(sid, voice) for sid, voice, _ in EXPECTED]
    ok(llasa("review", tmp_path / "out"))
    page = (tmp_path / "out" / "review.html").read_text()
    data = json.loads(re.search(r'<script id="review-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert sorted((s["id"], s["voice"]) for s in data["segments"]) == [(sid, voice) for sid, voice, _ in EXPECTED]

    cast.write_text("ben: ben-voice\nanna: anna-new\n")  # the cast file's anna wins over the front matter's
    again = synth(book, tiny_models, "--cast", cast)
    assert sorted(e["id"] for e in again) == ["1.2", "1.4"]  # anna's segments, and only those
    assert {e["voice"] for e in again} == {"anna"}
    unchanged = synth(book, tiny_models, "--cast", cast)
    assert unchanged == []  # nothing left to say

    ok(llasa("redo", tmp_path / "out", "--segment", "1.2"))  # a new take of anna's line, in her new voice
    with JobStore.open(tmp_path / "out" / WORK_DIR_NAME, read_only=True) as store:
        redone = {f"{p.chapter}.{p.index}": p for p in store.plan_records()}
        takes = store.takes([p.record.key for p in redone.values()])
    assert {sid for sid, p in redone.items() if takes[p.record.key]} == {"1.2"}
    assert redone["1.2"].record.status == "done" and redone["1.2"].record.key != positions["1.2"].record.key


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (BOOK.replace("anna: anna-voice", "anna: voices/missing.wav"), "character 'anna': voice clip not found"),
        ('[voice=zed]"Hello."[/voice]\n', "character 'zed': unknown voice 'zed'; known voices: anna-new"),
    ],
)
def test_a_character_without_a_usable_voice_stops_the_run_before_any_model_loads(
    tmp_path: Path, home: Path, text: str, says: str
) -> None:
    book = tmp_path / "book.md"
    book.write_text(text)
    result = llasa("synth", book, "-o", tmp_path / "out", "--model", "no/such-model", "--device", "cpu")
    assert result.returncode == 23, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"llasa: error: {says}")
    assert not (tmp_path / "out").exists()
