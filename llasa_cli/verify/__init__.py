"""Verification: does a synthesised segment say its text, in the narrator's voice, cleanly?

`CompositeVerifier` (composite.py) runs the model-free signal checks (signal_checks.py), the
narrator's pace (pace.py), a blind noise estimate (noise.py), a Whisper transcript compared with
the text (asr.py, textcompare.py) and aligned with it word by word (alignment.py: omissions, loops,
babble), and speaker similarity to the narrator (speaker.py; the resemblyzer backend in
resemblyzer_speaker.py), and gives one `Verdict` per segment (verdict.py). Nothing here imports
torch until a model is loaded. docs/verification.md says how the thresholds were measured.
"""

from .asr import Transcriber, load_transcriber, save_whisper_folder
from .composite import CompositeVerifier, load_verifier, load_verifier_models
from .signal_checks import SIGNAL_FAILURES, SignalReport, check_signal
from .speaker import SpeakerEmbedder, cosine_similarity, load_embedder
from .textcompare import ErrorRate, error_rate
from .verdict import (
    CER,
    FAILURE_HELP,
    SIMILARITY,
    SPEAKER,
    WER,
    CheckRow,
    SegmentVerifier,
    Verdict,
    VerifyItem,
    best_attempt,
    failure_limits,
    verdict_checks,
)

__all__ = [
    "CER",
    "FAILURE_HELP",
    "SIGNAL_FAILURES",
    "SIMILARITY",
    "SPEAKER",
    "WER",
    "CheckRow",
    "CompositeVerifier",
    "ErrorRate",
    "SegmentVerifier",
    "SignalReport",
    "SpeakerEmbedder",
    "Transcriber",
    "Verdict",
    "VerifyItem",
    "best_attempt",
    "check_signal",
    "cosine_similarity",
    "error_rate",
    "failure_limits",
    "load_embedder",
    "load_transcriber",
    "load_verifier",
    "load_verifier_models",
    "save_whisper_folder",
    "verdict_checks",
]
