"""Checking audio that already exists: one clip against its text (`llasa verify`), a manifest of
clips (`llasa verify --manifest`), and finished files against the ACX rules (`llasa check`). The
same verifiers and thresholds as `synth`.

A reference voice gives the speaker check its narrator and the pace check its pace: a stored
voice says its own text; a reference clip's text is its transcript, when ASR runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio.file_check import FileCheck, audio_files, check_file
from ..errors import (
    InputDecodeError,
    InputEmptyError,
    InputIsDirectoryError,
    InputNotFoundError,
    VoiceError,
)
from ..options import TextOptions, VerifyOptions
from ..verify.verdict import CheckRow, Verdict, VerifyItem, verdict_checks

if TYPE_CHECKING:
    from ..verify.asr import Transcriber
    from ..verify.composite import CompositeVerifier
    from ..verify.speaker import SpeakerEmbedder

MANIFEST_SEPARATOR = "\t"
MANIFEST_COMMENT = "#"
MANIFEST_HEADER = ("audio", "text")


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
    TextOptions(lang=lang)  # validates --lang
    clip = read_clip(audio)
    voice = voice if options.check_speaker or options.check_pace else None
    if voice:
        _check_voice(voice)
    checker = _Checker(options, codec, lang, device, speaker=bool(voice), warn=warn)
    verdict = checker.verifier(voice).verify([VerifyItem(text=text, audio=clip, hit_cap=hit_cap)])[0]
    return ClipVerification(verdict, tuple(verdict_checks(verdict, options)), _skipped(options, voice))


@dataclass(frozen=True)
class ManifestRow:
    """One line of a `verify --manifest` file: the clip, what it should say, its reference voice."""

    line: int
    audio: Path
    text: str
    voice: str | None

    def where(self, manifest: Path) -> str:
        return f"{manifest}, line {self.line}"


@dataclass(frozen=True)
class RowVerification:
    row: ManifestRow
    result: ClipVerification

    def to_json(self) -> dict[str, Any]:
        return {"line": self.row.line, "audio": str(self.row.audio), "voice": self.row.voice, **self.result.to_json()}


def read_manifest(path: Path, default_voice: str | None = None) -> list[ManifestRow]:
    """The rows of a UTF-8 TSV manifest: `audio<TAB>text[<TAB>voice]`, audio (and voice clip)
    paths relative to the manifest's folder; blank lines, `#` comments and an `audio<TAB>text`
    header are skipped. A row without a voice gets `default_voice`.

    Raises InputNotFoundError / InputIsDirectoryError / InputEmptyError / InputDecodeError naming
    the manifest (and the line, for a malformed row)."""
    if not path.exists():
        raise InputNotFoundError(f"manifest not found: {path}")
    if path.is_dir():
        raise InputIsDirectoryError(f"{path} is a directory, not a manifest")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputDecodeError(f"{path}: manifest is not UTF-8 (bad byte at offset {exc.start})") from exc
    except OSError as exc:
        raise InputDecodeError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        row = _manifest_row(path, number, line, default_voice)
        if row is not None:
            rows.append(row)
    if not rows:
        raise InputEmptyError(f"{path}: the manifest lists no audio")
    return rows


def _manifest_row(path: Path, number: int, line: str, default_voice: str | None) -> ManifestRow | None:
    fields = [field.strip() for field in line.split(MANIFEST_SEPARATOR)]
    if not any(fields) or fields[0].startswith(MANIFEST_COMMENT):
        return None
    if tuple(field.lower() for field in fields[:2]) == MANIFEST_HEADER:
        return None
    if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
        raise InputDecodeError(
            f"{path}, line {number}: expected 'audio<TAB>text' or 'audio<TAB>text<TAB>voice', got {line.strip()!r}"
        )
    voice = fields[2] if len(fields) == 3 and fields[2] else default_voice
    if voice is not None and (path.parent / voice).exists():
        voice = str(path.parent / voice)
    return ManifestRow(number, path.parent / Path(fields[0]).expanduser(), fields[1], voice)


def verify_manifest(
    manifest: Path,
    options: VerifyOptions,
    *,
    voice: str | None = None,
    codec: str,
    lang: str = "en",
    device: str = "auto",
    warn: Callable[[str], None] = lambda message: None,
) -> Iterator[RowVerification]:
    """Verify every row of `manifest` (see `read_manifest`) in file order, loading each model once.

    Every row's files are checked before any model loads (a missing or empty file, an unknown
    voice: an error naming the line); a clip that cannot be decoded is an error naming its line
    when its turn comes. `voice` is the reference for rows that name none."""
    TextOptions(lang=lang)
    rows = read_manifest(manifest, voice)
    for row in rows:
        _with_line(row.where(manifest), lambda row=row: _check_clip(row.audio))
        if row.voice and (options.check_speaker or options.check_pace):
            _with_line(row.where(manifest), lambda row=row: _check_voice(row.voice))
    speaker = any(row.voice for row in rows)
    checker = _Checker(options, codec, lang, device, speaker=speaker, warn=warn)
    for start in range(0, len(rows), options.batch_size):
        batch = rows[start : start + options.batch_size]
        clips = [_with_line(row.where(manifest), lambda row=row: read_clip(row.audio)) for row in batch]
        yield from _verify_rows(checker, batch, clips, options)


def _verify_rows(
    checker: _Checker, rows: list[ManifestRow], clips: list[np.ndarray], options: VerifyOptions
) -> Iterator[RowVerification]:
    """One verify call per reference voice among `rows`, results in the rows' order."""
    verdicts: dict[int, Verdict] = {}
    for voice in dict.fromkeys(row.voice for row in rows):
        indices = [i for i, row in enumerate(rows) if row.voice == voice]
        items = [VerifyItem(text=rows[i].text, audio=clips[i]) for i in indices]
        for i, verdict in zip(indices, checker.verifier(voice).verify(items), strict=True):
            verdicts[i] = verdict
    for i, row in enumerate(rows):
        checks = tuple(verdict_checks(verdicts[i], options))
        yield RowVerification(row, ClipVerification(verdicts[i], checks, _skipped(options, row.voice)))


def _with_line(where: str, action: Callable[[], Any]) -> Any:
    """`action()`, its input or voice error re-raised (same kind, same exit code) with `where` first."""
    try:
        return action()
    except (InputNotFoundError, InputIsDirectoryError, InputEmptyError, InputDecodeError, VoiceError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


class _Checker:
    """The verifier models, loaded once, and one verifier per reference voice (built on first use)."""

    def __init__(
        self,
        options: VerifyOptions,
        codec: str,
        lang: str,
        device: str,
        *,
        speaker: bool,
        warn: Callable[[str], None],
    ) -> None:
        from ..engine.devices import pick_device
        from ..verify.composite import load_verifier_models

        self.options, self.codec, self.lang = options, codec, lang
        self.device, notice = pick_device(device)
        if notice:
            warn(notice)
        _require_verifier_models(options if speaker else dataclasses.replace(options, check_speaker=False), self.device)
        self.transcriber: Transcriber | None
        self.embedder: SpeakerEmbedder | None
        self.transcriber, self.embedder = load_verifier_models(options, self.device, speaker=speaker)
        self._verifiers: dict[str | None, CompositeVerifier] = {}

    def verifier(self, voice: str | None) -> CompositeVerifier:
        if voice not in self._verifiers:
            from ..verify.composite import CompositeVerifier

            audio, text = reference_voice(voice, self.codec, self.device) if voice else (None, None)
            self._verifiers[voice] = CompositeVerifier(
                self.options, self.transcriber, self.embedder, audio, self.lang, reference_text=text
            )
        return self._verifiers[voice]


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

    _check_clip(path)
    try:
        return load_audio(path)
    except VoiceError as exc:
        raise InputDecodeError(str(exc)) from exc


def _check_clip(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"audio file not found: {path}")
    if path.is_dir():
        raise InputIsDirectoryError(f"{path} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputEmptyError(f"audio file is empty (0 bytes): {path}")


def _check_voice(voice: str) -> None:
    """VoiceError (exit 23) unless `voice` is an existing clip or a stored voice's name."""
    from ..voices.store import VoiceStore

    if not Path(voice).expanduser().exists() and voice not in VoiceStore().names():
        raise VoiceError(f"voice {voice!r} is neither an audio file nor a stored voice")


def reference_voice(voice: str, codec: str, device: str) -> tuple[np.ndarray, str | None]:
    """A reference clip's audio (its text unknown), or a stored voice's codes decoded with the
    codec and the text they say."""
    from ..audio.audio_io import load_audio
    from ..voices.store import VoiceStore

    path = Path(voice).expanduser()
    store = VoiceStore()
    if path.exists() or voice not in store.names():
        return load_audio(path), None  # VoiceError (exit 23) names a missing or unreadable clip
    from ..engine.loading import load_codec

    prompt = store.get(voice)
    return load_codec(codec, device).decode([prompt.codes])[0], prompt.text


def check_audio_files(target: Path) -> list[FileCheck]:
    """Every audio file in `target` (or `target` itself) measured against the ACX rules."""
    return [check_file(path) for path in audio_files(target)]
