"""Narrator voices: a store of reference-clip codes + transcripts.

Each voice is one `NAME.safetensors` file: a 1-D int64 tensor `codes` (X-Codec2
codes of the reference clip) and the transcript in the safetensors metadata. Never
pickled; written atomically. NumPy only.

Store location: an explicit root, else `$LLASA_HOME/voices`, else the platform's
user data folder for "llasa-cli" (platformdirs) + `/voices`.
"""

from __future__ import annotations

import builtins
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..audio.export import atomic_write_bytes, output_error
from ..constants import CODEBOOK_SIZE, CODES_PER_SECOND, MAX_VOICE_SECONDS
from ..engine.protocols import VoicePrompt
from ..errors import OutputError, VoiceError

APP_NAME = "llasa-cli"
HOME_ENV = "LLASA_HOME"
VOICES_SUBDIR = "voices"
VOICE_SUFFIX = ".safetensors"
VOICE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CODES_KEY = "codes"
META_TEXT = "text"
META_CREATED = "created"
META_FORMAT = "format"
META_FORMAT_VERSION = "llasa-voice-1"
META_CODES_PER_SECOND = "codes_per_second"
# A stored voice may run a little past MAX_VOICE_SECONDS (codec padding); beyond that
# it would eat the context the text needs.
MAX_VOICE_CODES = int(MAX_VOICE_SECONDS * CODES_PER_SECOND) + CODES_PER_SECOND


@dataclass(frozen=True)
class Voice:
    name: str
    codes: np.ndarray  # 1-D int64
    text: str
    created: datetime

    @property
    def seconds(self) -> float:
        return len(self.codes) / CODES_PER_SECOND

    def prompt(self) -> VoicePrompt:
        return VoicePrompt(codes=self.codes, text=self.text)


@dataclass(frozen=True)
class VoiceInfo:
    """A listing row. `error` is set (and `seconds` is 0) for a file that cannot be read."""

    name: str
    seconds: float
    text: str
    created: datetime | None = None
    error: str | None = None


def default_voice_root() -> Path:
    """`$LLASA_HOME/voices` when LLASA_HOME is set, else the user data folder + `/voices`."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / VOICES_SUBDIR
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / VOICES_SUBDIR


def validate_voice_name(name: str) -> str:
    """Return `name` if it is 1-64 of A-Z a-z 0-9 _ -, else raise VoiceError."""
    if not isinstance(name, str) or not VOICE_NAME_PATTERN.fullmatch(name):
        raise VoiceError(f"invalid voice name {name!r}: use 1-64 letters, digits, '_' or '-'")
    return name


def _validate_codes(codes: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(codes)
    if array.ndim != 1 or array.size == 0:
        raise VoiceError(f"{where}: voice codes must be a non-empty 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise VoiceError(f"{where}: voice codes must be integers, got {array.dtype}")
    if int(array.min()) < 0 or int(array.max()) >= CODEBOOK_SIZE:
        raise VoiceError(f"{where}: voice codes must lie in 0..{CODEBOOK_SIZE - 1}")
    if array.size > MAX_VOICE_CODES:
        raise VoiceError(
            f"{where}: voice is {array.size / CODES_PER_SECOND:.1f} s long; "
            f"the limit is {MAX_VOICE_SECONDS:.0f} s (cut the clip at a pause first)"
        )
    return array.astype(np.int64)


class VoiceStore:
    """Named voices on disk, one safetensors file each."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_voice_root()

    def path_of(self, name: str) -> Path:
        return self.root / f"{validate_voice_name(name)}{VOICE_SUFFIX}"

    def names(self) -> builtins.list[str]:
        """Sorted names of the stored voices (files with a valid voice name)."""
        if not self.root.is_dir():
            return []
        names = (p.name[: -len(VOICE_SUFFIX)] for p in self.root.glob(f"*{VOICE_SUFFIX}") if p.is_file())
        return sorted(n for n in names if VOICE_NAME_PATTERN.fullmatch(n))

    def _unknown(self, name: str) -> VoiceError:
        known = self.names()
        listing = ", ".join(known) if known else "none yet (add one with `llasa voice add`)"
        return VoiceError(f"unknown voice {name!r}; known voices: {listing}")

    def add(self, name: str, codes: np.ndarray, text: str, overwrite: bool = False) -> Voice:
        """Store a voice; raises VoiceError if it exists (unless `overwrite`) or is invalid."""
        path = self.path_of(name)
        array = _validate_codes(codes, f"voice {name!r}")
        transcript = (text or "").strip()
        if not transcript:
            raise VoiceError(f"voice {name!r} needs the transcript of its clip (what the clip says)")
        if path.exists() and not overwrite:
            raise VoiceError(f"voice {name!r} already exists; remove it first or overwrite it")
        created = datetime.now(timezone.utc)
        metadata = {
            META_FORMAT: META_FORMAT_VERSION,
            META_TEXT: transcript,
            META_CREATED: created.isoformat(),
            META_CODES_PER_SECOND: str(CODES_PER_SECOND),
        }
        from safetensors.numpy import save

        data = save({CODES_KEY: np.ascontiguousarray(array)}, metadata=metadata)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(path, exc) from exc
        atomic_write_bytes(path, data)
        return Voice(name=name, codes=array, text=transcript, created=created)

    def load(self, name: str) -> Voice:
        """The full stored voice; VoiceError if unknown or unreadable."""
        path = self.path_of(name)
        if not path.is_file():
            raise self._unknown(name)
        return _read_voice(name, path)

    def get(self, name: str) -> VoicePrompt:
        """The voice as a generation prompt (codes + transcript)."""
        return self.load(name).prompt()

    def list(self) -> builtins.list[VoiceInfo]:
        """Every stored voice, sorted by name; unreadable files are listed with `error` set."""
        rows: builtins.list[VoiceInfo] = []
        for name in self.names():
            try:
                voice = _read_voice(name, self.path_of(name))
            except VoiceError as exc:
                rows.append(VoiceInfo(name=name, seconds=0.0, text="", error=str(exc)))
                continue
            rows.append(VoiceInfo(name=name, seconds=voice.seconds, text=voice.text, created=voice.created))
        return rows

    def remove(self, name: str) -> None:
        path = self.path_of(name)
        if not path.is_file():
            raise self._unknown(name)
        try:
            path.unlink()
        except OSError as exc:
            raise OutputError(f"cannot remove voice {name!r} ({path}): {exc.strerror or exc}") from exc


def _read_voice(name: str, path: Path) -> Voice:
    """Load and validate one voice file; anything wrong with it is a VoiceError."""
    from safetensors import safe_open

    where = f"voice {name!r} ({path})"
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            if CODES_KEY not in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                raise VoiceError(f"{where} is corrupt: it has no '{CODES_KEY}' tensor; add the voice again")
            codes = handle.get_tensor(CODES_KEY)
    except VoiceError:
        raise
    except Exception as exc:  # safetensors raises several kinds on damaged files
        raise VoiceError(f"{where} is corrupt or not a voice file ({exc}); add the voice again") from exc
    text = metadata.get(META_TEXT, "").strip()
    if not text:
        raise VoiceError(f"{where} is corrupt: it has no transcript; add the voice again")
    return Voice(name=name, codes=_validate_codes(codes, where), text=text, created=_parse_created(metadata))


def _parse_created(metadata: dict[str, str]) -> datetime:
    try:
        return datetime.fromisoformat(metadata[META_CREATED])
    except (KeyError, ValueError):
        return datetime.fromtimestamp(0, tz=timezone.utc)


# --- reference clips ----------------------------------------------------------
