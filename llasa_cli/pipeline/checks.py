"""Checking audio that already exists: one clip against its text (`llasa verify`), and finished
files against the ACX rules (`llasa check`). The same verifiers and thresholds as `synth`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.file_check import FileCheck, audio_files, check_file
from ..errors import InputDecodeError, InputEmptyError, InputIsDirectoryError, InputNotFoundError, VoiceError
from ..options import TextOptions, VerifyOptions
from ..verify.verdict import CheckRow, Verdict, VerifyItem, verdict_checks


@dataclass(frozen=True)
class ClipVerification:
    """What the verifiers said of one clip: the verdict, each check against its limit, and the
    checks that did not run (and why)."""

    verdict: Verdict
    checks: tuple[CheckRow, ...]
    skipped: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        data = self.verdict.to_dict()
        data["checks"] = [row.to_dict() for row in self.checks]
        data["skipped"] = self.skipped
        return data


def verify_clip(
    audio: Path,
    text: str,
    options: VerifyOptions,
    *,
    voice: str | None = None,
    codec: str,
    lang: str = "en",
    device: str = "auto",
    hit_cap: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> ClipVerification:
    """Check an audio file against `text` (and the speaker check against `voice`, a clip or a
    stored voice name, when one is given). `warn` hears the CPU fallback."""
    from ..engine.devices import pick_device
    from ..verify.composite import load_verifier

    TextOptions(lang=lang)  # validates --lang
    clip = read_clip(audio)
    device, notice = pick_device(device)
    if notice:
        warn(notice)
    _require_verifier_models(options if voice else dataclasses.replace(options, check_speaker=False), device)
    reference = reference_audio(voice, codec, device) if voice and options.check_speaker else None
    verifier = load_verifier(options, device, reference, lang)
    verdict = verifier.verify([VerifyItem(text=text, audio=clip, hit_cap=hit_cap)])[0]
    return ClipVerification(verdict, tuple(verdict_checks(verdict, options)), _skipped(options, voice))


def _require_verifier_models(options: VerifyOptions, device: str) -> None:
    """Every missing verifier model named at once, in seconds, when none can be downloaded now."""
    from ..engine.hub import require_available
    from ..verify.composite import verifier_model_needs

    require_available(verifier_model_needs(options, device))


def _skipped(options: VerifyOptions, voice: str | None) -> dict[str, str]:
    skipped = {}
    if not options.check_asr:
        skipped["asr"] = "--no-asr-check"
    if not options.check_speaker:
        skipped["speaker"] = "--no-speaker-check"
    elif not voice:
        skipped["speaker"] = "no --voice given"
    return skipped


def read_clip(path: Path) -> np.ndarray:
    """The audio to verify, with input-file exit codes (10 missing, 11 folder, 14 empty, 12 unreadable)."""
    from ..audio.audio_io import load_audio

    if not path.exists():
        raise InputNotFoundError(f"audio file not found: {path}")
    if path.is_dir():
        raise InputIsDirectoryError(f"{path} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputEmptyError(f"audio file is empty (0 bytes): {path}")
    try:
        return load_audio(path)
    except VoiceError as exc:
        raise InputDecodeError(str(exc)) from exc


def reference_audio(voice: str, codec: str, device: str) -> np.ndarray:
    """A reference clip's audio, or a stored voice's codes decoded with the codec."""
    from ..audio.audio_io import load_audio
    from ..voices.store import VoiceStore

    path = Path(voice).expanduser()
    store = VoiceStore()
    if path.exists() or voice not in store.names():
        return load_audio(path)  # VoiceError (exit 23) names a missing or unreadable clip
    from ..engine.loading import load_codec

    codes = store.get(voice).codes
    return load_codec(codec, device).decode([codes])[0]


def check_audio_files(target: Path) -> list[FileCheck]:
    """Every audio file in `target` (or `target` itself) measured against the ACX rules."""
    return [check_file(path) for path in audio_files(target)]
