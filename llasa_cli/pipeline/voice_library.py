"""The user's stored narrator voices: encode a reference clip once, list, remove.

A stored voice is reused with `synth --voice NAME`: its codes go into every prompt, so the clip
is encoded (and transcribed, if no text is given) only when it is added.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..engine.protocols import VoicePrompt
from ..errors import VoiceError
from ..voices.store import VoiceInfo, VoiceStore, validate_voice_name


def add_voice(
    name: str,
    clip: Path,
    text: str | None,
    *,
    codec: str,
    device: str,
    asr_model: str | None = None,
    force: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> VoicePrompt:
    """Encode `clip` (transcribed by Whisper when `text` is None) and store it as voice `name`."""
    from ..engine.devices import pick_device
    from ..engine.loading import load_codec
    from ..voices.resolve import encode_clip

    store = VoiceStore()
    validate_voice_name(name)
    # Checked before the slow encoding, so a typo costs nothing.
    if name in store.names() and not force:
        raise VoiceError(f"a voice named {name!r} exists; pass --force to replace it")
    device, notice = pick_device(device)
    if notice:
        warn(notice)
    _require_models(codec, asr_model, device, transcribe=text is None)
    prompt = encode_clip(clip, text, load_codec(codec, device), asr_model, device, warn=warn)
    store.add(name, prompt.codes, prompt.text, overwrite=force)
    return prompt


def _require_models(codec: str, asr_model: str | None, device: str, *, transcribe: bool) -> None:
    """The codec, and Whisper when the clip is to be transcribed, are here or can be downloaded now;
    else one error naming every missing one (engine.hub.require_available)."""
    from ..engine.hub import hub_need, require_available
    from ..verify.asr import asr_need

    needs = [hub_need(codec, "X-Codec2 codec", aliases={}), asr_need(asr_model, device) if transcribe else None]
    require_available([need for need in needs if need is not None])


def list_voices() -> list[VoiceInfo]:
    return VoiceStore().list()


def remove_voice(name: str) -> None:
    VoiceStore().remove(name)
