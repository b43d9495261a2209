"""From `--voice` (a clip or a stored name) to the `VoicePrompt` every segment is spoken with."""

from __future__ import annotations

from pathlib import Path

from .constants import MAX_VOICE_SECONDS, SAMPLE_RATE
from .errors import VoiceError
from .protocols import SpeechCodec, VoicePrompt


def resolve_voice(
    spec: str | None, voice_text: str | None, codec: SpeechCodec, asr_model: str | None, device: str
) -> VoicePrompt | None:
    """None (no voice: the run fixes one itself), a clip to encode, or a stored voice name."""
    if spec is None:
        if voice_text:
            raise VoiceError("--voice-text needs --voice (the clip it describes)")
        return None
    path = Path(spec).expanduser()
    if path.exists():
        return encode_clip(path, voice_text, codec, asr_model, device)
    from .voices import VoiceStore

    if voice_text:
        raise VoiceError(f"--voice-text applies to a clip, but {spec!r} is not a file (a stored voice has its text)")
    return VoiceStore().get(spec)


def encode_clip(
    clip: Path, text: str | None, codec: SpeechCodec, asr_model: str | None, device: str
) -> VoicePrompt:
    """Load, check, shorten (at a pause) and encode a reference clip; transcribe it if no text is given."""
    from .audio import load_audio
    from .voices import check_voice_clip, cut_at_pause

    audio = load_audio(clip)
    check_voice_clip(audio)
    seconds = len(audio) / SAMPLE_RATE
    if seconds > MAX_VOICE_SECONDS:
        if text:
            raise VoiceError(
                f"{clip}: the clip is {seconds:.1f} s but at most {MAX_VOICE_SECONDS:.0f} s fit the model's context; "
                "trim it, or leave out --voice-text so it is cut at a pause and transcribed"
            )
        audio = cut_at_pause(audio, MAX_VOICE_SECONDS)
    if text is None:
        from .asr import load_transcriber

        text = load_transcriber(asr_model, device).transcribe([audio])[0]
        if not text:
            raise VoiceError(f"{clip}: Whisper heard no words in the clip; pass --voice-text")
    if not text.strip():
        raise VoiceError(f"{clip}: --voice-text is empty; give what the clip says")
    return VoicePrompt(codes=codec.encode(audio), text=text.strip())
