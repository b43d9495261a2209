"""A cast in the job: segment keys by voice, each position's voice in the store, and the voices
resolved up front (one-line errors naming the character, exit 23)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.errors import VoiceError
from llasa_cli.job import schema as jobstore_schema
from llasa_cli.job.keys import keys_for
from llasa_cli.job.records import PlanRow
from llasa_cli.job.schema import DB_NAME
from llasa_cli.job.store import JobStore
from llasa_cli.options import EngineOptions, SamplingOptions, TextOptions
from llasa_cli.text.cast import Cast, cast_from_data
from llasa_cli.text.manuscript import Manuscript
from llasa_cli.text.planner import build_plan
from llasa_cli.voices.resolve import VoiceSpec, cast_specs, check_voice_specs
from llasa_cli.voices.store import VoiceStore

NARRATOR = VoicePrompt(codes=np.arange(20, dtype=np.int64), text="I narrate.")
ANNA = VoicePrompt(codes=np.arange(20, 40, dtype=np.int64), text="I am Anna.")
BEN = VoicePrompt(codes=np.arange(40, 60, dtype=np.int64), text="I am Ben.")
BOOK = 'Rain fell. [voice=anna]"Same words."[/voice] [voice=ben]"Same words."[/voice] "Same words."'


def keys(plan, characters):  # noqa: ANN001, ANN202 - a helper over the test's own plan
    return keys_for(plan, EngineOptions(), SamplingOptions(), NARRATOR, None, characters)


def test_segment_keys_differ_by_voice_and_follow_only_their_characters_voice() -> None:
    plan = build_plan(Manuscript("book.txt", BOOK, False), TextOptions(max_segment_seconds=60.0))
    assert [(s.voice, s.text) for s in plan.segments] == [
        (None, "Rain fell."),
        ("anna", '"Same words."'),
        ("ben", '"Same words."'),
        (None, '"Same words."'),
    ]
    before = keys(plan, {"anna": ANNA, "ben": BEN})
    assert len(set(list(before.values())[1:])) == 3  # one text, three voices, three keys
    after = keys(plan, {"anna": VoicePrompt(codes=ANNA.codes + 1, text=ANNA.text), "ben": BEN})
    assert [sid for sid in before if before[sid] != after[sid]] == ["1.1"]  # only anna's segment


def test_a_character_without_a_voice_has_no_key() -> None:
    plan = build_plan(Manuscript("book.txt", BOOK, False), TextOptions(max_segment_seconds=60.0))
    with pytest.raises(ValueError, match="'ben', who has no voice"):
        keys(plan, {"anna": ANNA})


def test_the_store_records_who_speaks_each_position(tmp_path: Path) -> None:
    with JobStore.open(tmp_path) as store:
        store.sync_plan([PlanRow("k1", 1, 0, "Rain fell.", 1.0), PlanRow("k2", 1, 1, '"Hi."', 0.5, "anna")])
        assert [(p.index, p.voice) for p in store.plan_records()] == [(0, None), (1, "anna")]


def test_a_job_from_before_voices_reads_its_positions_as_the_narrators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobstore_schema, "MIGRATIONS", jobstore_schema.MIGRATIONS[:5])
    JobStore.open(tmp_path).close()  # an empty job at schema 5
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:  # filled as schema 5 did
        assert "voice" not in [row[1] for row in raw.execute("PRAGMA table_info(positions)")]
        raw.execute("INSERT INTO positions VALUES (1, 0, 'k1', 'Rain fell.', 1.0)")
        raw.execute("INSERT INTO segments (key) VALUES ('k1')")
    with JobStore.open(tmp_path) as store:
        assert [(p.text, p.voice) for p in store.plan_records()] == [("Rain fell.", None)]


# --- voices resolved up front ------------------------------------------------------------


@pytest.fixture
def voice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VoiceStore:
    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    store = VoiceStore()
    store.add("anna", ANNA.codes, ANNA.text)
    return store


def test_characters_take_their_cast_entry_or_a_stored_voice_of_their_name(voice_home: VoiceStore) -> None:
    cast = cast_from_data({"narrator": "anna", "ben": "clips/ben.wav"}, "cast.yaml", None)
    assert cast_specs(["anna", "ben"], cast) == [
        VoiceSpec(None, "anna"),
        VoiceSpec("anna", "anna"),
        VoiceSpec("ben", "clips/ben.wav"),
    ]
    assert cast_specs(["anna"], cast, voice="me.wav", voice_text="Hi.")[0] == VoiceSpec(None, "me.wav", "Hi.")
    with pytest.raises(VoiceError, match="character 'zoë' has no voice"):
        cast_specs(["zoë"], Cast())


@pytest.mark.parametrize(
    ("cast", "says"),
    [
        ({"ben": "nobody"}, "character 'ben': unknown voice 'nobody'; known voices: anna"),
        ({"ben": "missing/ben.wav"}, "character 'ben': voice clip not found: missing/ben.wav"),
        ({}, "character 'ben': unknown voice 'ben'"),
        ({"narrator": "no-one"}, "the narrator: unknown voice 'no-one'"),
    ],
)
def test_an_unknown_voice_or_clip_is_one_line_naming_the_character(
    voice_home: VoiceStore, cast: dict[str, str], says: str
) -> None:
    specs = cast_specs(["anna", "ben"], cast_from_data(cast, "cast.yaml", None) if cast else Cast())
    with pytest.raises(VoiceError) as error:
        check_voice_specs(specs)
    assert says in str(error.value) and "\n" not in str(error.value)
    assert VoiceError.exit_code == 23


def test_an_unusable_clip_is_refused_up_front(voice_home: VoiceStore, tmp_path: Path) -> None:
    (tmp_path / "ben.wav").write_bytes(b"not audio at all")
    specs = cast_specs(["ben"], cast_from_data({"ben": "ben.wav"}, "cast.yaml", tmp_path))
    with pytest.raises(VoiceError, match="character 'ben': "):
        check_voice_specs(specs)


def test_the_store_keeps_the_characters_voices_of_the_last_run(tmp_path: Path) -> None:
    with JobStore.open(tmp_path) as store:
        assert store.load_characters() == {}
        store.save_characters({"anna": ANNA, "ben": BEN})
        store.save_characters({"ben": BEN})  # a later run's cast replaces the earlier one
        ((name, prompt),) = store.load_characters().items()
        assert name == "ben" and np.array_equal(prompt.codes, BEN.codes) and prompt.text == BEN.text
