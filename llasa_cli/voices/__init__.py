"""Narrator voices: stored voices (store.py), reference-clip checks (clips.py), and turning
`--voice` (a clip or a stored name) into the `VoicePrompt` every segment is spoken with (resolve.py).
"""

from .clips import check_voice_clip, cut_at_pause
from .resolve import encode_clip, resolve_voice
from .store import VOICE_NAME_PATTERN, Voice, VoiceInfo, VoiceStore, default_voice_root, validate_voice_name

__all__ = [
    "VOICE_NAME_PATTERN",
    "Voice",
    "VoiceInfo",
    "VoiceStore",
    "check_voice_clip",
    "cut_at_pause",
    "default_voice_root",
    "encode_clip",
    "resolve_voice",
    "validate_voice_name",
]
