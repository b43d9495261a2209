"""The cast file (`--cast`) and the `cast:` of front matter: characters mapped to voices."""

from __future__ import annotations

from pathlib import Path

import pytest

from llasa_cli.errors import InputDecodeError, VoiceError
from llasa_cli.options import TextOptions
from llasa_cli.text.cast import Cast, CastMember, cast_from_data, read_cast
from llasa_cli.text.manuscript import read_manuscript


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_cast_file_maps_names_to_stored_voices_and_clips(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "anna.wav").write_bytes(b"RIFF")
    cast = read_cast(
        write(
            tmp_path / "cast.yaml",
            "narrator: margaret\nAnna: clips/anna.wav\nben:\n  voice: ben-voice\n  text: What the clip says.\n",
        )
    )
    assert cast.members == (
        CastMember("narrator", "margaret"),
        CastMember("anna", str(tmp_path / "clips" / "anna.wav")),
        CastMember("ben", "ben-voice", "What the clip says."),
    )
    assert cast.member(None) == cast.member("Narrator") == CastMember("narrator", "margaret")
    assert cast.member("ANNA") is not None and cast.member("cleo") is None


def test_a_cast_may_sit_under_a_cast_key(tmp_path: Path) -> None:
    cast = read_cast(write(tmp_path / "cast.yaml", "cast:\n  anna: a\n"))
    assert cast.members == (CastMember("anna", "a"),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- anna\n- ben\n", "a cast is a mapping"),
        ("anna: 3\n", "character 'anna': the voice is a stored voice name or a clip path"),
        ("anna:\n  voice: a\n  pitch: 2\n", "character 'anna': unknown key 'pitch'"),
        ("anna:\n  voice: a\n  text: [1]\n", "character 'anna': 'text' is what the clip says"),
        ("two words: a\n", "a character name is"),
        ("1: a\n", "character names are text"),
        ("Anna: a\nanna: b\n", "character 'anna' is named twice"),
    ],
)
def test_a_malformed_cast_is_a_voice_error_naming_the_character(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path / "cast.yaml", text)
    with pytest.raises(VoiceError, match=str(path)) as error:
        read_cast(path)
    assert says in str(error.value)
    assert VoiceError.exit_code == 23


def test_cast_yaml_must_be_plain_data(tmp_path: Path) -> None:
    with pytest.raises(InputDecodeError, match="anchors or aliases"):
        read_cast(write(tmp_path / "cast.yaml", "anna: &v a\nben: *v\n"))
    deep = "a:\n" + "".join("  " * depth + "- \n" for depth in range(1, 12))
    with pytest.raises(InputDecodeError, match="deeper than"):
        read_cast(write(tmp_path / "deep.yaml", deep))
    with pytest.raises(InputDecodeError, match="not valid YAML"):
        read_cast(write(tmp_path / "bad.yaml", "anna: [unclosed\n"))


def test_a_missing_cast_file_is_a_voice_error(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="no such cast file"):
        read_cast(tmp_path / "nope.yaml")


def test_front_matter_cast_is_read_and_not_metadata(tmp_path: Path) -> None:
    (tmp_path / "ben.wav").write_bytes(b"RIFF")
    book = write(tmp_path / "book.md", "---\ncast:\n  anna: anna\n  ben: ben.wav\n---\n\n# One\n\nText.\n")
    manuscript = read_manuscript(str(book))
    assert manuscript.cast is not None
    assert manuscript.cast.members == (CastMember("anna", "anna"), CastMember("ben", str(tmp_path / "ben.wav")))
    assert "cast" not in manuscript.front_matter
    assert manuscript.first_line == 6
    assert manuscript.text.startswith("\n# One")


def test_front_matter_cast_errors_name_the_manuscript(tmp_path: Path) -> None:
    book = write(tmp_path / "book.md", "---\ncast:\n  anna: [x]\n---\n\nText.\n")
    with pytest.raises(VoiceError, match=r"book.md \(front matter\): character 'anna'"):
        read_manuscript(str(book))


def test_a_flag_cast_overlays_the_front_matter_cast() -> None:
    front = cast_from_data({"anna": "a1", "ben": "b1"}, "book.md (front matter)", None)
    flags = cast_from_data({"Ben": "b2", "cleo": "c"}, "cast.yaml", None)
    merged = front.overlaid(flags)
    assert [(m.character, m.voice) for m in merged.members] == [("anna", "a1"), ("ben", "b2"), ("cleo", "c")]
    assert Cast().overlaid(flags).members == flags.members


@pytest.mark.parametrize("name", ["two words", "-x", "narrator", "x" * 65, ""])
def test_dialogue_voice_must_be_a_character_other_than_the_narrator(name: str) -> None:
    with pytest.raises(ValueError, match="--dialogue-voice"):
        TextOptions(dialogue_voice=name)
