"""From `--voice` (a clip or a stored name) to the `VoicePrompt` every segment is spoken with.

Every error names the clip (or the name given) and says what to do; a clip that is usable
but poor (clipped) is reported through the optional `warn` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import MAX_VOICE_SECONDS, SAMPLE_RATE
from ..engine.protocols import SpeechCodec, VoicePrompt
from ..errors import VoiceError

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
