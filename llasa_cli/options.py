"""Frozen option dataclasses, one per concern, each validated in `__post_init__`, and the
parsers of the option values that need one (`parse_batch_size`, `ScoreWeights.parse`,
`load_lexicon`).

The CLI builds these from flags; the library only ever receives them. A bad value
or combination raises `InvalidOptionError` (a `ValueError`) naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .constants import CODES_PER_SECOND, DEFAULT_MAX_SEGMENT_SECONDS, SAMPLE_RATE
from .errors import InvalidOptionError, LexiconError

SUPPORTED_LANGS = ("en", "zh")
EXPORT_FORMATS = ("wav", "flac", "mp3", "opus", "m4b")
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
DEFAULT_BATCH_SIZE = 8
# Like --device auto and --dtype auto: the run picks the number once the models are loaded
# (`engine.load_speech_models`).
BATCH_SIZE_AUTO: Literal["auto"] = "auto"


# A character of a cast: `[voice=NAME]`, `--dialogue-voice NAME`, a cast file's names (text/cast.py).
MAX_CHARACTER_CHARS = 64
CHARACTER_NAME = re.compile(rf"[^\W_][\w-]{{0,{MAX_CHARACTER_CHARS - 1}}}")
NARRATOR = "narrator"  # the character name of the narrator

# (written, spoken) pairs of a pronunciation lexicon.
Lexicon = tuple[tuple[str, str], ...]
LEXICON_COMMENT_PREFIX = "#"
LEXICON_FIELD_SEPARATOR = "\t"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidOptionError(message)


def load_lexicon(path: str | Path) -> Lexicon:
    """Read `--lexicon`: a UTF-8 TSV of `written<TAB>spoken` pairs, for `TextOptions.lexicon`. Blank
    lines and lines starting with `#` are ignored.

    Raises LexiconError naming the file (and the line, for a malformed or conflicting entry).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise LexiconError(f"{path}: no such lexicon file") from exc
    except IsADirectoryError as exc:
        raise LexiconError(f"{path}: is a directory, not a lexicon file") from exc
    except UnicodeDecodeError as exc:
        raise LexiconError(f"{path}: lexicon is not UTF-8 (bad byte at offset {exc.start})") from exc
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read the lexicon ({exc.strerror or exc})") from exc
    entries: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(LEXICON_COMMENT_PREFIX):
            continue
        fields = [field.strip() for field in line.split(LEXICON_FIELD_SEPARATOR)]
        if len(fields) != 2 or not all(fields):
            raise LexiconError(f"{path}, line {number}: expected 'written<TAB>spoken', got {stripped!r}")
        written, spoken = fields
        if written in entries and entries[written][0] != spoken:
            first = entries[written][1]
            raise LexiconError(f"{path}, line {number}: {written!r} is already defined on line {first}")
        entries.setdefault(written, (spoken, number))
    return tuple((written, spoken) for written, (spoken, _) in entries.items())


@dataclass(frozen=True)
class TextOptions:
    """How a manuscript becomes chapters and segments."""

    lang: str = "en"
    normalize: bool = True
    detect_chapters: bool = True
    chapter_pattern: str | None = None
    speak_titles: bool = True
    # (written, spoken) pairs, applied whole-word and case-aware before normalisation.
    lexicon: Lexicon = ()
    max_segment_seconds: float = DEFAULT_MAX_SEGMENT_SECONDS
    # --dialogue-voice: the character who speaks quoted speech (text/dialogue.py); None: no split at quotes.
    dialogue_voice: str | None = None

    def __post_init__(self) -> None:
        _require(self.lang in SUPPORTED_LANGS, f"--lang must be one of {SUPPORTED_LANGS}, not {self.lang!r}")
        if self.dialogue_voice is not None:
            _require(
                CHARACTER_NAME.fullmatch(self.dialogue_voice) is not None,
                f"--dialogue-voice takes a character name (letters, digits, '_' or '-'), not {self.dialogue_voice!r}",
            )
            _require(
                self.dialogue_voice.casefold() != NARRATOR,
                "--dialogue-voice names the character who speaks quoted speech, not the narrator",
            )
        _require(
            self.max_segment_seconds >= 1.0,
            f"--max-segment-seconds must be at least 1, not {self.max_segment_seconds}",
        )
        _require(
            not (self.chapter_pattern and not self.detect_chapters),
            "--chapter-pattern and --no-chapters cannot be used together",
        )
        if self.chapter_pattern:
            import re

            try:
                re.compile(self.chapter_pattern)
            except re.error as exc:
                raise InvalidOptionError(f"--chapter-pattern is not a valid regular expression: {exc}") from exc


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling of speech tokens. Defaults follow the Llasa model card's stable setting."""

    temperature: float = 0.9
    top_p: float = 0.95
    top_k: int = 0  # 0 turns top-k filtering off
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.temperature >= 0.0, f"--temperature must be >= 0, not {self.temperature}")
        _require(0.0 < self.top_p <= 1.0, f"--top-p must be in (0, 1], not {self.top_p}")
        _require(self.top_k >= 0, f"--top-k must be >= 0, not {self.top_k}")
        _require(self.repetition_penalty > 0.0, f"--repetition-penalty must be > 0, not {self.repetition_penalty}")
        _require(0 <= self.seed < 2**63, f"--seed must be a non-negative 63-bit integer, not {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


_BATCH_SIZE_RULE = f"--batch-size must be a whole number >= 1 or {BATCH_SIZE_AUTO!r}"


def _valid_batch_size(value: object) -> bool:
    if value == BATCH_SIZE_AUTO:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_batch_size(text: str) -> int | Literal["auto"]:
    """`--batch-size` as typed: BATCH_SIZE_AUTO or a whole number (`EngineOptions` checks its range)."""
    cleaned = text.strip().lower()
    if cleaned == BATCH_SIZE_AUTO:
        return BATCH_SIZE_AUTO
    if not cleaned.isdecimal():
        raise InvalidOptionError(f"{_BATCH_SIZE_RULE}, not {text!r}")
    return int(cleaned)


@dataclass(frozen=True)
class EngineOptions:
    """Which models run where, and how large a batch goes through them."""

    model: str = "HKUSTAudio/Llasa-1B"
    codec: str = "HKUSTAudio/xcodec2-hf"
    device: str = "auto"
    dtype: str = "auto"
    # Segments per batch, or BATCH_SIZE_AUTO: sized from the free memory once the models are loaded.
    batch_size: int | Literal["auto"] = DEFAULT_BATCH_SIZE
    # Token cap per segment = estimated codes * headroom (+ a floor), clipped to the context.
    length_headroom: float = 2.0
    # Decode and verify a batch while the next one generates; None: on CUDA only (batch_runner.py).
    overlap: bool | None = None

    def __post_init__(self) -> None:
        _require(self.device in DEVICES, f"--device must be one of {DEVICES}, not {self.device!r}")
        _require(self.dtype in DTYPES, f"--dtype must be one of {DTYPES}, not {self.dtype!r}")
        _require(_valid_batch_size(self.batch_size), f"{_BATCH_SIZE_RULE}, not {self.batch_size!r}")
        _require(self.length_headroom >= 1.0, f"length headroom must be >= 1, not {self.length_headroom}")
        _require(
            not (self.device == "cpu" and self.dtype in ("bfloat16", "float16")),
            f"--dtype {self.dtype} is not supported with --device cpu; use float32",
        )

    @property
    def auto_batch_size(self) -> bool:
        return self.batch_size == BATCH_SIZE_AUTO


@dataclass(frozen=True)
class StitchOptions:
    """How segment audio becomes one chapter file."""

    sentence_pause: float = 0.35
    paragraph_pause: float = 0.8
    title_pause: float = 1.2
    chapter_pause: float = 2.0  # silence at the end of every chapter file
    lead_in: float = 0.5  # silence at the start of every chapter file
    fade_ms: float = 10.0
    trim_db: float = -45.0  # below this (dBFS, relative to full scale) counts as silence when trimming
    loudness_lufs: float | None = -18.0  # None: no loudness normalisation
    acx: bool = False  # master to the ACX rules instead (RMS, peak, noise floor, room tone)
    subtitles: bool = False  # SRT, WebVTT and a JSON manifest beside each chapter file
    true_peak_dbtp: float = -1.0
    format: str = "wav"
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        pauses = {
            "--sentence-pause": self.sentence_pause,
            "--paragraph-pause": self.paragraph_pause,
            "--title-pause": self.title_pause,
            "--chapter-pause": self.chapter_pause,
            "--lead-in": self.lead_in,
        }
        for name, value in pauses.items():
            _require(0.0 <= value <= 60.0, f"{name} must be between 0 and 60 seconds, not {value}")
        _require(0.0 <= self.fade_ms <= 500.0, f"fade must be between 0 and 500 ms, not {self.fade_ms}")
        _require(self.format in EXPORT_FORMATS, f"--format must be one of {EXPORT_FORMATS}, not {self.format!r}")
        _require(8_000 <= self.sample_rate <= 192_000, f"--sample-rate must be 8000-192000, not {self.sample_rate}")
        if self.loudness_lufs is not None:
            _require(-70.0 <= self.loudness_lufs <= -5.0, f"--loudness must be -70..-5 LUFS, not {self.loudness_lufs}")
        _require(
            not (self.acx and self.loudness_lufs is not None),
            "--loudness takes a LUFS target or 'acx', not both",
        )
        _require(-20.0 <= self.true_peak_dbtp <= 0.0, f"true peak must be -20..0 dBTP, not {self.true_peak_dbtp}")
        _require(
            not (self.format == "opus" and self.sample_rate not in (8_000, 12_000, 16_000, 24_000, 48_000)),
            f"--format opus needs --sample-rate 8000, 12000, 16000, 24000 or 48000, not {self.sample_rate}",
        )


VERIFY_ASR_BACKENDS = ("openai-whisper", "faster-whisper")
VERIFY_SPEAKER_BACKENDS = ("wavlm", "ecapa", "resemblyzer")
# Cosine similarity to the narrator's reference clip at or above which a segment counts as the same
# voice, per backend. WavLM: its x-vector model card uses 0.86 for real recordings of one speaker;
# synthesised speech sits a little lower, so 0.80. ECAPA scores run lower (about 0.25-0.5).
# resemblyzer (GE2E), measured on espeak-ng (docs/verification.md): the same voice 0.93-0.96, another
# voice (en+f3) 0.67-0.72, the same voice pitched up 400 cents 0.69-0.75, so 0.80.
DEFAULT_MIN_SIMILARITY = {"wavlm": 0.80, "ecapa": 0.40, "resemblyzer": 0.80}
MAX_RETRIES = 20


@dataclass(frozen=True)
class VerifyOptions:
    """Checks run on every synthesised segment, their thresholds, and the retry policy.

    Signal checks (no model): speech rate = seconds from first to last voiced frame per character
    of text (CJK characters weigh CHARS_PER_SECOND / CJK_CHARS_PER_SECOND), leading / trailing /
    longest inner silence, clipped-sample share, RMS level of the voiced frames, and whether
    generation hit its token cap; the voiced length against the narrator's pace; a blind SNR
    estimate. ASR: WER (en) or CER (zh) of a Whisper transcript, and from its alignment with the text
    the longest omission, an immediate repeat (loop) and words past the end (babble). Speaker:
    cosine similarity of a speaker embedding to the reference clip's.
    """

    enabled: bool = True  # False: --no-verify
    strict: bool = False  # a segment still failing after all retries fails the run
    retries: int = 3  # regenerations (new seed) of a failing segment
    check_asr: bool = True
    check_speaker: bool = True  # needs a reference clip; skipped without one
    asr_backend: str = "openai-whisper"
    asr_model: str | None = None  # None: turbo on CUDA, base elsewhere
    speaker_backend: str = "wavlm"
    # None: microsoft/wavlm-base-plus-sv, speechbrain/spkrec-ecapa-voxceleb, resemblyzer's bundled weights
    speaker_model: str | None = None
    batch_size: int = 8  # clips per ASR / speaker-model batch
    max_wer: float = 0.3
    max_cer: float = 0.25
    min_similarity: float | None = None  # None: DEFAULT_MIN_SIMILARITY of the speaker backend
    min_seconds_per_char: float = 0.035  # below: audio too short for its text (early stop, skipped words)
    max_seconds_per_char: float = 0.2  # above: runaway babble or long stalls
    max_lead_silence: float = 1.5  # seconds
    max_trail_silence: float = 1.5
    max_inner_silence: float = 2.0
    max_clipping: float = 0.005  # share of samples at full scale
    min_rms_dbfs: float = -45.0  # RMS of the voiced frames
    # Voiced length against the narrator's pace (verify/pace.py): flagged beyond this factor either way.
    check_pace: bool = True
    pace_factor: float = 1.5
    # Transcript alignment (verify/alignment.py), in words (two Chinese characters count as one).
    max_omitted_words: int = 2  # longest run of consecutive words of the text missing
    max_repeated_words: int = 1  # longest phrase said again at once that the text does not repeat
    max_words_after_end: int = 2  # words heard after the text's last word
    min_snr_db: float = 10.0  # WADA-SNR estimate (verify/noise.py)

    def __post_init__(self) -> None:
        _require(0 <= self.retries <= MAX_RETRIES, f"--retries must be 0-{MAX_RETRIES}, not {self.retries}")
        _require(not (self.strict and not self.enabled), "--strict and --no-verify cannot be used together")
        _require(
            self.asr_backend in VERIFY_ASR_BACKENDS,
            f"--asr-backend must be one of {VERIFY_ASR_BACKENDS}, not {self.asr_backend!r}",
        )
        _require(
            self.speaker_backend in VERIFY_SPEAKER_BACKENDS,
            f"--speaker-backend must be one of {VERIFY_SPEAKER_BACKENDS}, not {self.speaker_backend!r}",
        )
        _require(self.batch_size >= 1, f"--verify-batch-size must be >= 1, not {self.batch_size}")
        _require(self.max_wer >= 0.0, f"--max-wer must be >= 0, not {self.max_wer}")
        _require(self.max_cer >= 0.0, f"--max-cer must be >= 0, not {self.max_cer}")
        if self.min_similarity is not None:
            _require(-1.0 <= self.min_similarity <= 1.0, f"--min-similarity must be -1..1, not {self.min_similarity}")
        _require(
            0.0 <= self.min_seconds_per_char < self.max_seconds_per_char,
            "the speech-rate band needs 0 <= min seconds per character < max seconds per character, "
            f"not {self.min_seconds_per_char} .. {self.max_seconds_per_char}",
        )
        silences = {
            "--max-lead-silence": self.max_lead_silence,
            "--max-trail-silence": self.max_trail_silence,
            "--max-inner-silence": self.max_inner_silence,
        }
        for name, value in silences.items():
            _require(value >= 0.0, f"{name} must be >= 0 seconds, not {value}")
        _require(0.0 <= self.max_clipping <= 1.0, f"--max-clipping must be 0..1, not {self.max_clipping}")
        _require(-120.0 <= self.min_rms_dbfs <= 0.0, f"--min-rms-dbfs must be -120..0, not {self.min_rms_dbfs}")
        _require(
            math.isfinite(self.pace_factor) and self.pace_factor > 1.0,
            f"--pace-factor must be a number > 1, not {self.pace_factor}",
        )
        words = {
            "--max-omitted-words": self.max_omitted_words,
            "--max-repeated-words": self.max_repeated_words,
            "--max-words-after-end": self.max_words_after_end,
        }
        for name, value in words.items():
            _require(isinstance(value, int) and value >= 0, f"{name} must be a whole number >= 0, not {value}")
        _require(-20.0 <= self.min_snr_db <= 100.0, f"--min-snr must be -20..100 dB, not {self.min_snr_db}")

    @property
    def similarity_threshold(self) -> float:
        if self.min_similarity is not None:
            return self.min_similarity
        return DEFAULT_MIN_SIMILARITY[self.speaker_backend]


# --- verifier-guided search (--beam, --best-of) --------------------------------------

MAX_SEARCH_WIDTH = 64  # most beams (--beam) or samples (--best-of) per segment
MAX_BEAM_CANDIDATES = 16  # most children per beam and step
DEFAULT_BEAM_CANDIDATES = 2
DEFAULT_BEAM_STEP_SECONDS = 1.0
MIN_BEAM_STEP_SECONDS = 1.0 / CODES_PER_SECOND  # one token
MAX_BEAM_STEP_SECONDS = 30.0

MODE_PLAIN = "plain"
MODE_BEAM = "beam"
MODE_BEST_OF = "best_of"


@dataclass(frozen=True)
class ScoreWeights:
    """How the final scorer's adapter combines its verifiers (the search itself only sees floats).
    The defaults are also how a verdict's own score weighs its parts (`verify.composite`): a
    weighted mean, 0..1."""

    asr: float = 0.5  # weight of 1 - min(WER or CER, 1)
    speaker: float = 0.3  # weight of max(cosine similarity to the narrator, 0)
    signal: float = 0.2  # weight of the share of signal checks passed

    def __post_init__(self) -> None:
        for name, value in (("asr", self.asr), ("speaker", self.speaker), ("signal", self.signal)):
            _require(math.isfinite(value) and value >= 0.0, f"--score-weights {name} must be >= 0, not {value}")
        _require(self.asr + self.speaker + self.signal > 0.0, "--score-weights cannot all be 0")

    def combine(self, signal_passed: float, asr_error: float | None, similarity: float | None) -> float:
        """Weighted mean of the parts that ran (None: did not run), higher is better."""
        parts = [(self.signal, signal_passed)]
        if asr_error is not None:
            parts.append((self.asr, 1.0 - min(max(asr_error, 0.0), 1.0)))
        if similarity is not None:
            parts.append((self.speaker, max(similarity, 0.0)))
        total = sum(weight for weight, _ in parts)
        return sum(weight * value for weight, value in parts) / total if total > 0 else 0.0

    @classmethod
    def parse(cls, text: str) -> ScoreWeights:
        """`asr=0.6,speaker=0.4,signal=0` (a part left out keeps its default)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = (x.strip() for x in part.partition("="))
            _require(
                bool(sep) and key in _WEIGHT_NAMES, f"--score-weights expects asr=W,speaker=W,signal=W, not {text!r}"
            )
            try:
                values[key] = float(value)
            except ValueError as exc:
                raise InvalidOptionError(f"--score-weights {key} is not a number: {value!r}") from exc
        return cls(**values)


_WEIGHT_NAMES = ("asr", "speaker", "signal")


@dataclass(frozen=True)
class SearchOptions:
    """Inference-time search per segment. beam = best_of = 1 is plain sampling."""

    beam: int = 1  # N beams (--beam)
    best_of: int = 1  # N complete samples ranked by the final scorer (--best-of)
    beam_candidates: int = DEFAULT_BEAM_CANDIDATES  # M children per beam and step (--beam-candidates)
    beam_step_seconds: float = DEFAULT_BEAM_STEP_SECONDS  # S: speech per step (--beam-step-seconds)
    score_weights: ScoreWeights = field(default_factory=ScoreWeights)

    def __post_init__(self) -> None:
        for flag, value in (("--beam", self.beam), ("--best-of", self.best_of)):
            _require(1 <= value <= MAX_SEARCH_WIDTH, f"{flag} must be between 1 and {MAX_SEARCH_WIDTH}, not {value}")
        _require(not (self.beam > 1 and self.best_of > 1), "--beam and --best-of cannot be used together")
        _require(
            1 <= self.beam_candidates <= MAX_BEAM_CANDIDATES,
            f"--beam-candidates must be between 1 and {MAX_BEAM_CANDIDATES}, not {self.beam_candidates}",
        )
        _require(
            MIN_BEAM_STEP_SECONDS <= self.beam_step_seconds <= MAX_BEAM_STEP_SECONDS,
            f"--beam-step-seconds must be between {MIN_BEAM_STEP_SECONDS} and {MAX_BEAM_STEP_SECONDS}, "
            f"not {self.beam_step_seconds}",
        )
        _require(isinstance(self.score_weights, ScoreWeights), "--score-weights must be ScoreWeights")

    @property
    def mode(self) -> str:
        if self.beam > 1:
            return MODE_BEAM
        return MODE_BEST_OF if self.best_of > 1 else MODE_PLAIN

    @property
    def width(self) -> int:
        """N: beams or samples per segment (1 for plain sampling)."""
        return max(self.beam, self.best_of)

    @property
    def step_tokens(self) -> int:
        """S: tokens per beam step."""
        return max(1, round(self.beam_step_seconds * CODES_PER_SECOND))


# --- the scaling study (llasa scaling) -------------------------------------------------

SCALING_MODES = {"beam": (MODE_BEAM,), "best-of": (MODE_BEST_OF,), "both": (MODE_BEAM, MODE_BEST_OF)}
DEFAULT_SCALING_SAMPLE = 20
MAX_SCALING_SAMPLE = 1_000
DEFAULT_SCALING_WIDTHS = (1, 2, 4, 8)
# A setting whose mean score is within this of the best counts as good as the best.
DEFAULT_SCALING_MARGIN = 0.01


def parse_widths(text: str) -> tuple[int, ...]:
    """`--n 1,2,4,8` as typed: whole numbers (ScalingOptions checks their range)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    _require(
        bool(parts) and all(part.isdigit() for part in parts),
        f"--n takes comma-separated whole numbers such as 1,2,4,8, not {text!r}",
    )
    return tuple(int(part) for part in parts)


@dataclass(frozen=True)
class ScalingOptions:
    """Which settings `llasa scaling` measures, on how many segments, and what counts as as good
    as the best. N = 1 is plain sampling (shared by both modes)."""

    sample: int = DEFAULT_SCALING_SAMPLE  # segments, spread over the book (--sample)
    widths: tuple[int, ...] = DEFAULT_SCALING_WIDTHS  # N values (--n)
    mode: str = "both"  # beam, best-of or both (--mode)
    margin: float = DEFAULT_SCALING_MARGIN  # of the mean score (--margin)

    def __post_init__(self) -> None:
        _require(
            1 <= self.sample <= MAX_SCALING_SAMPLE,
            f"--sample must be between 1 and {MAX_SCALING_SAMPLE}, not {self.sample}",
        )
        _require(bool(self.widths), "--n needs at least one number")
        for width in self.widths:
            _require(
                1 <= width <= MAX_SEARCH_WIDTH, f"--n values must be between 1 and {MAX_SEARCH_WIDTH}, not {width}"
            )
        _require(len(set(self.widths)) == len(self.widths), f"--n lists a number twice: {self.widths}")
        _require(self.mode in SCALING_MODES, f"--mode must be one of {', '.join(SCALING_MODES)}, not {self.mode!r}")
        _require(math.isfinite(self.margin) and 0.0 <= self.margin <= 1.0, f"--margin must be 0..1, not {self.margin}")

    @property
    def modes(self) -> tuple[str, ...]:
        return SCALING_MODES[self.mode]


# --- where the work runs ------------------------------------------------------

DEVICES_ALL = "all"  # --devices all: every CUDA GPU torch sees
WORKER_DEVICE = re.compile(r"cpu|mps|cuda:\d+")
RAY_AUTO = "auto"  # --ray auto: the running cluster (`ray start`), else a local one


def parse_devices(text: str) -> tuple[str, ...]:
    """`--devices` as typed: `all`, or a comma-separated list (`WorkerOptions` checks each)."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class WorkerOptions:
    """Where a run's work goes: this process (the default), one worker process per device of
    this machine (`--devices`), or actors on a Ray cluster (`--ray`). Not part of the request a
    job records: the same book is made alike wherever it runs."""

    devices: tuple[str, ...] = ()
    ray: str | None = None  # RAY_AUTO or a cluster address

    def __post_init__(self) -> None:
        _require(not (self.devices and self.ray is not None), "--devices and --ray cannot be combined")
        _require(
            self.devices == (DEVICES_ALL,) or all(WORKER_DEVICE.fullmatch(d) for d in self.devices),
            f"--devices takes '{DEVICES_ALL}' or a comma-separated list of cpu, mps and cuda:N, "
            f"not {','.join(self.devices)!r}",
        )
        _require(self.ray is None or bool(self.ray.strip()), f"--ray takes '{RAY_AUTO}' or a cluster address")

    @property
    def in_process(self) -> bool:
        """Whether the run works in this process alone (no --devices, no --ray)."""
        return not self.devices and self.ray is None
