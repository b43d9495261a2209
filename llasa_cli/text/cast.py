"""The cast: which voice speaks each character of a book, read from `--cast FILE` or front matter.

A cast is a YAML mapping from character names to voices (a bare mapping, or one under `cast:`)::

    narrator: margaret               # the narrator: a stored voice (`llasa voice add`) ...
    anna: voices/anna.wav            # ... or a clip, relative to the cast file (front matter: the manuscript)
    ben:
      voice: voices/ben.flac
      text: "What the clip says."    # else the clip is transcribed, as with --voice-text

Character names are letters, digits, `_` and `-` (at most 64), matched in any case: `[voice=Anna]`
is `anna`. `narrator` names the narrator. What a voice is, a clip or a stored name, is decided when
the voices are resolved (voices/resolve.py), where an unknown voice or an unusable clip is an error
naming its character. A cast that is not a mapping of names to voices is a VoiceError (exit 23);
YAML that is not plain data is an InputDecodeError (exit 12), as in front matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputDecodeError, VoiceError
from ..options import CHARACTER_NAME, MAX_CHARACTER_CHARS, NARRATOR
from .controls import without_terminal_controls
from .plain_yaml import load_plain_yaml

CAST_KEY = "cast"
_MEMBER_KEYS = ("voice", "text")
# A cast file is a short list of names; anything larger is not one.
MAX_CAST_FILE_BYTES = 1 << 20


def check_character(name: str) -> str:
    """`name` if it can name a character, else ValueError saying why."""
    if not isinstance(name, str) or not CHARACTER_NAME.fullmatch(name):
        raise ValueError(
            f"a character name is 1-{MAX_CHARACTER_CHARS} letters, digits, '_' or '-' "
            f"starting with a letter or digit, not {name!r}"
        )
    return name


def character_key(name: str) -> str:
    """The form names are compared in: `Anna` and `anna` are one character."""
    return name.casefold()


@dataclass(frozen=True)
class CastMember:
    """`voice` is a stored voice name or a clip path; `text` what the clip says (None: transcribed)."""

    character: str
    voice: str
    text: str | None = None


@dataclass(frozen=True)
class Cast:
    members: tuple[CastMember, ...] = ()
    source: str = "cast"  # what messages call it: the cast file, or the manuscript's front matter

    def member(self, character: str | None) -> CastMember | None:
        """The member for a character (None: the narrator), if the cast names one."""
        key = NARRATOR if character is None else character_key(character)
        return next((m for m in self.members if m.character == key), None)

    def overlaid(self, other: Cast) -> Cast:
        """This cast with `other`'s members in place of (or added to) its own: flags win over front matter."""
        replaced = {m.character for m in other.members}
        kept = tuple(m for m in self.members if m.character not in replaced)
        return Cast(kept + other.members, f"{self.source} and {other.source}" if kept else other.source)


def read_cast(path: str | Path) -> Cast:
    """The cast in a YAML file (`--cast`); relative clip paths are taken from the file's folder."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CAST_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise VoiceError(f"{path}: no such cast file") from exc
    except IsADirectoryError as exc:
        raise VoiceError(f"{path}: is a directory, not a cast file") from exc
    except OSError as exc:
        raise VoiceError(f"{path}: cannot read the cast file ({exc.strerror or exc})") from exc
    if len(data) > MAX_CAST_FILE_BYTES:
        raise VoiceError(f"{path}: a cast file of more than {MAX_CAST_FILE_BYTES >> 20} MiB is not a cast")
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputDecodeError(f"{path}: the cast file is not UTF-8 (bad byte at offset {exc.start})") from exc
    try:
        loaded = load_plain_yaml(raw)
    except ValueError as exc:
        raise InputDecodeError(f"{path}: the cast file {exc}") from exc
    return cast_from_data(loaded, str(path), path.parent)


def cast_from_data(data: Any, source: str, base_dir: Path | None) -> Cast:
    """A Cast from YAML data (see the module docstring); VoiceError naming `source` and the character."""
    if isinstance(data, Mapping) and set(data) == {CAST_KEY}:
        data = data[CAST_KEY]
    if not isinstance(data, Mapping) or not data:
        raise VoiceError(f"{source}: a cast is a mapping of character names to voices, e.g. 'anna: anna.wav'")
    members: dict[str, CastMember] = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise VoiceError(f"{source}: character names are text, not {name!r}")
        try:
            check_character(name)
        except ValueError as exc:
            raise VoiceError(f"{source}: {exc}") from exc
        key = character_key(name)
        if key in members:
            raise VoiceError(f"{source}: character {name!r} is named twice")
        members[key] = _member(key, value, source, base_dir)
    return Cast(tuple(members.values()), source)


def _member(character: str, value: Any, source: str, base_dir: Path | None) -> CastMember:
    where = f"{source}: character {character!r}"
    text = None
    if isinstance(value, Mapping):
        unknown = [str(key) for key in value if key not in _MEMBER_KEYS]
        if unknown:
            raise VoiceError(f"{where}: unknown key {unknown[0]!r} (a member has 'voice' and, for a clip, 'text')")
        text = value.get("text")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise VoiceError(f"{where}: 'text' is what the clip says, as text")
        value = value.get("voice")
    if not isinstance(value, str) or not value.strip():
        raise VoiceError(f"{where}: the voice is a stored voice name or a clip path, not {value!r}")
    voice = without_terminal_controls(value).strip()
    if base_dir is not None and not Path(voice).expanduser().is_absolute() and (base_dir / voice).exists():
        voice = str(base_dir / voice)
    clean_text = " ".join(without_terminal_controls(text).split()) if text else None
    return CastMember(character, voice, clean_text)
