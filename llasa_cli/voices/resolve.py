"""From `--voice` (a clip or a stored name) and the cast (text/cast.py) to the `VoicePrompt`s the
segments are spoken with: the narrator's, and one per character who speaks.

Every error names the clip (or the name given) and says what to do, and for a character, the
character; a clip that is usable but poor (clipped) is reported through the optional `warn`
callback. A character the cast does not name speaks with the stored voice of its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import MAX_VOICE_SECONDS, SAMPLE_RATE
from ..engine.protocols import SpeechCodec, VoicePrompt
from ..errors import VoiceError
from ..text.cast import Cast

if TYPE_CHECKING:
    import numpy as np

# How the transcript is passed: `--voice-text` to `llasa synth`, `--text` to `llasa voice add`.
TRANSCRIPT_OPTIONS = "--voice-text (--text for `llasa voice add`)"
CLIP_ADVICE = "give an audio file (wav, flac, mp3, m4a...) with 5-15 seconds of clear speech"

Warn = Callable[[str], None]


def resolve_voice(
    spec: str | None,
    voice_text: str | None,
    codec: SpeechCodec,
    asr_model: str | None,
    device: str,
    *,
    warn: Warn | None = None,
) -> VoicePrompt | None:
    """None (no voice: the run fixes one itself), a clip to encode, or a stored voice name."""
    if spec is None:
        if voice_text:
            raise VoiceError("--voice-text needs --voice (the clip it describes)")
        return None
    path = Path(spec).expanduser()
    if path.exists():
        return encode_clip(path, voice_text, codec, asr_model, device, warn=warn)
    from .store import VOICE_NAME_PATTERN, VoiceStore

    if not VOICE_NAME_PATTERN.fullmatch(spec):
        raise VoiceError(
            f"voice clip not found: {spec}; check the path, or give a stored voice name (`llasa voice list`)"
        )
    if voice_text:
        raise VoiceError(f"--voice-text applies to a clip, but {spec!r} is not a file (a stored voice has its text)")
    return VoiceStore().get(spec)


def encode_clip(
    clip: Path,
    text: str | None,
    codec: SpeechCodec,
    asr_model: str | None,
    device: str,
    *,
    warn: Warn | None = None,
) -> VoicePrompt:
    """Load, check, shorten (at a pause) and encode a reference clip; transcribe it if no text is given."""
    from .clips import cut_at_pause

    if text is not None and not text.strip():
        raise VoiceError(f"{clip}: the transcript is empty; pass what the clip says with {TRANSCRIPT_OPTIONS}")
    audio = _load_checked(clip, warn)
    seconds = len(audio) / SAMPLE_RATE
    if seconds > MAX_VOICE_SECONDS:
        if text is not None:
            raise VoiceError(
                f"{clip}: the clip is {seconds:.1f} s but at most {MAX_VOICE_SECONDS:.0f} s fit the model's context; "
                f"trim it, or leave out {TRANSCRIPT_OPTIONS} so it is cut at a pause and transcribed"
            )
        audio = cut_at_pause(audio, MAX_VOICE_SECONDS)
    if text is None:
        from ..verify.asr import load_transcriber

        text = load_transcriber(asr_model, device).transcribe([audio])[0].strip()
        if not text:
            raise VoiceError(f"{clip}: Whisper heard no words in the clip; pass what it says with {TRANSCRIPT_OPTIONS}")
    return VoicePrompt(codes=codec.encode(audio), text=text.strip())


def _load_checked(clip: Path, warn: Warn | None) -> np.ndarray:
    """The clip as 16 kHz mono, refused (VoiceError naming it) if unreadable, silent or too short."""
    from ..audio.audio_io import load_audio
    from .clips import check_voice_clip

    if not clip.exists():
        raise VoiceError(f"voice clip not found: {clip}; check the path")
    try:
        audio = load_audio(clip)
    except VoiceError as exc:
        raise VoiceError(f"{exc}; {CLIP_ADVICE}") from exc
    try:
        warnings = check_voice_clip(audio)
    except VoiceError as exc:
        raise VoiceError(f"{clip}: {exc}") from exc
    for message in warnings:
        if warn is not None:
            warn(f"{clip}: {message}")
    return audio


@dataclass(frozen=True)
class VoiceSpec:
    """Who a voice is for (None: the narrator), and the clip or stored name with its clip's text."""

    character: str | None
    spec: str
    text: str | None = None

    def describe(self) -> str:
        return "the narrator" if self.character is None else f"character {self.character!r}"


def cast_specs(
    characters: Iterable[str], cast: Cast, voice: str | None = None, voice_text: str | None = None
) -> list[VoiceSpec]:
    """The narrator's voice (`voice`, else the cast's narrator; left out when neither names one)
    and each character's (its cast entry, else a stored voice of its name), in that order.
    VoiceError naming a character nothing can voice."""
    from .store import VOICE_NAME_PATTERN

    specs = []
    narrator = cast.member(None)
    if voice is not None:
        specs.append(VoiceSpec(None, voice, voice_text))
    elif narrator is not None:
        specs.append(VoiceSpec(None, narrator.voice, narrator.text))
    for character in characters:
        member = cast.member(character)
        if member is not None:
            specs.append(VoiceSpec(character, member.voice, member.text))
        elif VOICE_NAME_PATTERN.fullmatch(character):
            specs.append(VoiceSpec(character, character))
        else:
            raise VoiceError(f"character {character!r} has no voice: name one for it in the cast (--cast FILE)")
    return specs


def check_voice_specs(specs: Iterable[VoiceSpec], warn: Warn | None = None) -> None:
    """Every clip can be read and used and every stored voice exists, before any model loads:
    VoiceError naming the character (or the narrator) otherwise."""
    from .store import VOICE_NAME_PATTERN, VoiceStore

    for spec in specs:
        try:
            path = Path(spec.spec).expanduser()
            if path.exists():
                _load_checked(path, warn)
            elif VOICE_NAME_PATTERN.fullmatch(spec.spec):
                VoiceStore().load(spec.spec)
            else:
                raise VoiceError(f"voice clip not found: {spec.spec}; check the path, or give a stored voice name")
        except VoiceError as exc:
            raise _for(spec, exc) from exc


def needs_transcript(specs: Iterable[VoiceSpec]) -> bool:
    """Whether some voice is a clip without its text, which Whisper must transcribe."""
    return any(spec.text is None and Path(spec.spec).expanduser().exists() for spec in specs)


def resolve_characters(
    specs: Iterable[VoiceSpec],
    codec: SpeechCodec,
    asr_model: str | None,
    device: str,
    *,
    warn: Warn | None = None,
) -> dict[str, VoicePrompt]:
    """Character -> VoicePrompt for the characters' specs (the narrator's is left to `resolve_voice`)."""
    return {
        spec.character: resolve_spec(spec, codec, asr_model, device, warn=warn)
        for spec in specs
        if spec.character is not None
    }


def resolve_spec(
    spec: VoiceSpec, codec: SpeechCodec, asr_model: str | None, device: str, *, warn: Warn | None = None
) -> VoicePrompt:
    """One spec's prompt; its errors name whom the voice is for."""
    try:
        prompt = resolve_voice(spec.spec, spec.text, codec, asr_model, device, warn=warn)
    except VoiceError as exc:
        raise _for(spec, exc) from exc
    assert prompt is not None  # a spec always names a voice
    return prompt


def _for(spec: VoiceSpec, exc: VoiceError) -> VoiceError:
    return VoiceError(f"{spec.describe()}: {exc}")
