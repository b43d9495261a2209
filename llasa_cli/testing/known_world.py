"""A known world for inference-time scaling: a speech "model" whose codes are real speech and
whose mistakes are the ones LLM-TTS makes, at rates we set.

Verifier-guided search can only be shown to work where a better candidate is really better, so
the judges here are the real ones (Whisper through faster-whisper, the resemblyzer speaker model)
and the speech is espeak-ng's. The world sits behind the engine's Protocols, so the search, its
scorers and the renderer run on it unchanged:

- `WorldCodec` (a `SpeechCodec`) is a codebook of 20 ms frames of espeak-ng audio, one code per
  frame, code 0 silence: decoding looks the frames up. Each word of a text, in a voice, is a
  block of consecutive codes (its espeak-ng rendering, trimmed), followed by a short gap.
- `WorldLM` (a `SpeechGenerator` and a `CandidateGenerator`) speaks a text word by word in the
  voice of its prompt. At each word boundary a seeded draw may make a mistake (`FailureRates`):
  another word instead (wrong), no word (skipped), the last words again (loop), seconds of
  silence (stall), a turn into another voice for the rest (drift), and after the last word,
  words that are not in the text (babble). Draws depend on (seed, token index) only, as the real
  LM's noise does, so a branch seeded with a request's own seed reproduces `generate`.

Nothing a scorer sees says which candidate is good: codes are frame indices, and only their audio
tells a wrong word or a drifted voice. `KnownWorld.truth` reads the chosen codes back into the
words and voices they hold, for the study's own bookkeeping after the search is over.

Needs espeak-ng on the PATH (`apt-get install espeak-ng`); renders are cached in memory and,
given `cache_dir`, on disk.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import CODEBOOK_SIZE, CODES_PER_SECOND, CONTEXT_TOKENS, SAMPLE_RATE, SAMPLES_PER_CODE
from ..engine.protocols import Branch, Extension, GenerationRequest, GenerationResult, Started, VoicePrompt

NARRATOR_VOICE = "en-us"
DRIFT_VOICE = "en+f3"  # espeak-ng's female variant: resemblyzer puts it at 0.64-0.71 from en-us
SILENCE_CODE = 0
WORD_GAP_CODES = 2  # 40 ms of silence after every word
TRIM_BELOW_PEAK_DB = 45.0  # a word's render is trimmed where it falls this far below its peak...
TRIM_PAD_SECONDS = 0.03  # ...keeping this much around it (soft onsets such as "th")
STALL_SECONDS = 2.5  # a stall: longer than the verifier's longest inner silence (2 s)
LOOP_WORDS = 2  # a loop says the last two words again ("the storm, the storm")
BABBLE_WORDS = (2, 5)  # words said after the end, fewest and most
ESPEAK_TIMEOUT_S = 30
# Words said by mistake (wrong words, babble): common, easy to hear, in none of the study's texts.
DISTRACTORS = (
    "banana", "purple", "seven", "tiger", "pencil", "orange", "rocket", "button", "jungle", "violin",
    "copper", "dolphin", "giraffe", "pepper", "marble", "velvet", "tunnel", "lemon", "zebra", "cactus",
)  # fmt: skip
# The mistakes, as `WorldLM` names them.
WRONG, SKIP, LOOP, STALL, DRIFT = "wrong", "skip", "loop", "stall", "drift"
_WORD = re.compile(r"[A-Za-z0-9']+")
_SEED_MASK = (1 << 63) - 1
_DRAW_DOMAIN = 0x6B6E6F776E  # "known": keeps these draws apart from any other use of the seeds


def words_of(text: str) -> tuple[str, ...]:
    """The words a text is spoken as (punctuation dropped, case kept for espeak-ng)."""
    return tuple(_WORD.findall(text))


@dataclass(frozen=True)
class FailureRates:
    """How often the world's LM errs: per word boundary, except babble (per segment, at its end)."""

    wrong: float = 0.015  # another word said instead of the text's
    skip: float = 0.01  # the text's word left out
    loop: float = 0.01  # the last LOOP_WORDS words said again
    stall: float = 0.02  # STALL_SECONDS of silence
    drift: float = 0.02  # the voice turns into DRIFT_VOICE for the rest of the segment
    babble: float = 0.1  # words after the text's last one

    def __post_init__(self) -> None:
        per_word = (self.wrong, self.skip, self.loop, self.stall, self.drift)
        if any(not 0.0 <= rate <= 1.0 for rate in (*per_word, self.babble)) or sum(per_word) > 1.0:
            raise ValueError(f"failure rates must be in 0..1, the per-word ones summing to at most 1: {self}")


# -- speech ------------------------------------------------------------------------------


class Espeak:
    """Words spoken alone by espeak-ng, as 16 kHz float32 trimmed of their silence (cached)."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._memory: dict[tuple[str, str], np.ndarray] = {}

    def word(self, word: str, voice: str) -> np.ndarray:
        key = (word, voice)
        if key not in self._memory:
            self._memory[key] = self._cached(word, voice)
        return self._memory[key]

    def _cached(self, word: str, voice: str) -> np.ndarray:
        if self.cache_dir is None:
            return _trimmed(_render(word, voice))
        digest = hashlib.sha256(f"{voice}\x00{word}".encode()).hexdigest()[:24]
        path = self.cache_dir / f"{digest}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
        audio = _trimmed(_render(word, voice))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, audio, allow_pickle=False)
        return audio


def _render(text: str, voice: str) -> np.ndarray:
    import soundfile as sf

    from ..audio.audio_io import resample, to_mono

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True, timeout=ESPEAK_TIMEOUT_S
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return resample(to_mono(audio), int(rate), SAMPLE_RATE)


def _trimmed(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (-TRIM_BELOW_PEAK_DB / 20)) if peak > 0 else []
    if not len(loud):
        return np.zeros(0, np.float32)
    pad = round(TRIM_PAD_SECONDS * SAMPLE_RATE)
    return np.ascontiguousarray(audio[max(0, loud[0] - pad) : loud[-1] + 1 + pad], dtype=np.float32)


# -- the codec ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """A block of codes: a word in a voice (word None: audio given to `encode`)."""

    word: str | None
    voice: str | None
    first: int  # its first code
    length: int


class Codebook:
    """20 ms frames of audio; a code is a frame's index. Code 0 is silence."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = [np.zeros((1, SAMPLES_PER_CODE), np.float32)]
        self._table: np.ndarray | None = None
        self._size = 1
        self._clip_of = np.zeros(CODEBOOK_SIZE, np.int64) - 1  # code -> index in `clips` (-1: silence)
        self.clips: list[Clip] = []
        self._by_word: dict[tuple[str, str], Clip] = {}

    def add(self, audio: np.ndarray, word: str | None = None, voice: str | None = None) -> Clip:
        """New codes holding `audio` (padded with silence to whole frames)."""
        frames = max(1, -(-audio.size // SAMPLES_PER_CODE))
        if self._size + frames > CODEBOOK_SIZE:
            raise ValueError(f"the world's codebook is full ({CODEBOOK_SIZE} frames)")
        padded = np.zeros(frames * SAMPLES_PER_CODE, np.float32)
        padded[: audio.size] = audio
        clip = Clip(word, voice, self._size, frames)
        self._parts.append(padded.reshape(frames, SAMPLES_PER_CODE))
        self._clip_of[clip.first : clip.first + frames] = len(self.clips)
        self.clips.append(clip)
        self._size += frames
        self._table = None
        return clip

    def word(self, word: str, voice: str, espeak: Espeak) -> Clip:
        key = (word, voice)
        if key not in self._by_word:
            self._by_word[key] = self.add(espeak.word(word, voice), word, voice)
        return self._by_word[key]

    def frames(self, codes: np.ndarray) -> np.ndarray:
        if self._table is None:
            self._table = np.concatenate(self._parts)
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= self._size):
            raise ValueError("codes outside the world's codebook")
        return self._table[codes].reshape(-1)

    def clip_at(self, code: int) -> Clip | None:
        index = int(self._clip_of[code])
        return None if index < 0 else self.clips[index]


class WorldCodec:
    """A `SpeechCodec` over the world's codebook: decoding looks frames up, exactly."""

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.codebook.frames(c).copy() for c in codes]

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """New codes that decode to `audio` (padded to whole frames); their voice is unknown."""
        clip = self.codebook.add(np.asarray(audio, dtype=np.float32).ravel())
        return np.arange(clip.first, clip.first + clip.length, dtype=np.int64)


# -- the language model ------------------------------------------------------------------


@dataclass
class _Row:
    """One candidate in progress: what it has said of its text and what it is about to say."""

    words: tuple[str, ...]
    voice: str
    seed: int
    cap: int
    position: int = 0  # the next word of the text
    spoken: int = 0  # codes emitted so far: the next token's index
    queue: list[int] = field(default_factory=list)  # codes decided but not yet emitted
    babble: int | None = None  # words of babble left, once at the end (None: not there yet)
    ended: bool = False

    def branch(self, seed: int) -> _Row:
        return _Row(self.words, self.voice, seed, self.cap, self.position, self.spoken, list(self.queue),
                    self.babble, self.ended)  # fmt: skip

    @property
    def open(self) -> bool:
        return not self.ended and self.spoken < self.cap


@dataclass
class WorldRows:
    rows: list[_Row]


class WorldLM:
    """A `SpeechGenerator` and `CandidateGenerator` that speaks texts in the known world (see the
    module docstring): word blocks of codes, mistakes drawn at word boundaries."""

    def __init__(self, world: KnownWorld) -> None:
        self.world = world
        self.forward_calls = 0

    # SpeechGenerator

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return len(words_of(text)) + (0 if voice is None else len(voice.text.split()) + int(voice.codes.size))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        started = self.start(requests)
        branches = [Branch(n, r.seed, cap) for n, (r, cap) in enumerate(zip(requests, started.caps, strict=True))]
        grown = self.extend(started.state, branches, max(started.caps, default=0))
        return [GenerationResult(codes=e.tokens, hit_cap=not e.ended, new_tokens=int(e.tokens.size)) for e in grown]

    # CandidateGenerator

    def start(self, requests: Sequence[GenerationRequest]) -> Started:
        caps = [max(0, min(r.max_new_tokens, CONTEXT_TOKENS - self.prompt_tokens(r.text, r.voice))) for r in requests]
        rows = [
            _Row(words_of(r.text), self.world.voice_of(r.voice), r.seed, cap)
            for r, cap in zip(requests, caps, strict=True)
        ]
        self.forward_calls += 1
        return Started(state=WorldRows(rows), caps=tuple(caps))

    def extend(self, state: WorldRows, branches: Sequence[Branch], n_tokens: int) -> list[Extension]:
        for branch in branches:
            if not (0 <= branch.parent < len(state.rows) and state.rows[branch.parent].open):
                raise ValueError(f"row {branch.parent} cannot be continued (ended, capped or out of range)")
        children = [state.rows[b.parent].branch(b.seed) for b in branches]
        grown = [self._grow(child, max(0, min(b.limit, n_tokens))) for child, b in zip(children, branches, strict=True)]
        self.forward_calls += max((e.tokens.size + e.ended for e in grown), default=0)
        state.rows = children
        return grown

    def _grow(self, row: _Row, limit: int) -> Extension:
        out: list[int] = []
        while len(out) < limit:
            if not row.queue and not self._decide(row):
                row.ended = True
                break
            take = min(limit - len(out), len(row.queue))
            out += row.queue[:take]
            del row.queue[:take]
            row.spoken += take
        return Extension(tokens=np.asarray(out, dtype=np.int64), ended=row.ended)

    def _decide(self, row: _Row) -> bool:
        """Queue what the row says next, drawn from (its seed, its token index); False: it ends."""
        draw = np.random.default_rng([row.seed & _SEED_MASK, row.spoken, _DRAW_DOMAIN])
        while row.position < len(row.words):
            mistake = self._mistake(float(draw.random()), row)
            if mistake == STALL:
                row.queue += [SILENCE_CODE] * round(STALL_SECONDS * CODES_PER_SECOND)
                return True
            if mistake == LOOP:
                for said in row.words[row.position - LOOP_WORDS : row.position]:
                    row.queue += self.world.word_codes(said, row.voice)
                return True
            row.position += 1
            if mistake == SKIP:
                continue
            if mistake == DRIFT:
                row.voice = DRIFT_VOICE
            word = _distractor(draw) if mistake == WRONG else row.words[row.position - 1]
            row.queue += self.world.word_codes(word, row.voice)
            return True
        if row.babble is None:
            low, high = BABBLE_WORDS
            row.babble = int(draw.integers(low, high + 1)) if draw.random() < self.world.rates.babble else 0
        if row.babble > 0:
            row.babble -= 1
            row.queue += self.world.word_codes(_distractor(draw), row.voice)
            return True
        return False

    def _mistake(self, u: float, row: _Row) -> str | None:
        """The mistake a draw `u` in [0, 1) makes at a word boundary (None: the right word), among
        those that can happen there (a drifted voice cannot drift again, a loop needs words said)."""
        rates = self.world.rates
        for name, rate in ((DRIFT, rates.drift), (STALL, rates.stall), (LOOP, rates.loop), (SKIP, rates.skip),
                           (WRONG, rates.wrong)):  # fmt: skip
            if u < rate:
                possible = not (name == DRIFT and row.voice == DRIFT_VOICE) and not (
                    name == LOOP and row.position < LOOP_WORDS
                )
                return name if possible else None
            u -= rate
        return None


def _distractor(draw: np.random.Generator) -> str:
    return DISTRACTORS[int(draw.integers(len(DISTRACTORS)))]


# -- the world ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """What a candidate's codes hold, read back from the codebook (never shown to the search)."""

    words: tuple[str, ...]  # the words said, in order
    voices: frozenset[str]  # the voices they were said in
    longest_silence: float  # seconds

    def word_errors(self, text: str) -> int:
        """Word-level edits from the text to what was said (substitutions, omissions, insertions)."""
        return _edit_distance([w.lower() for w in words_of(text)], [w.lower() for w in self.words])

    def error_rate(self, text: str) -> float:
        return self.word_errors(text) / max(1, len(words_of(text)))

    @property
    def drifted(self) -> bool:
        return DRIFT_VOICE in self.voices

    @property
    def stalled(self) -> bool:
        return self.longest_silence >= STALL_SECONDS

    def clean(self, text: str) -> bool:
        return not (self.word_errors(text) or self.drifted or self.stalled)


class KnownWorld:
    """The codebook, its codec and LM, and the failure rates the LM errs at."""

    def __init__(self, rates: FailureRates | None = None, cache_dir: Path | None = None) -> None:
        self.rates = rates or FailureRates()
        self.espeak = Espeak(cache_dir)
        self.codebook = Codebook()
        self.codec = WorldCodec(self.codebook)
        self.lm = WorldLM(self)

    def prepare(self, texts: Iterable[str], voices: Sequence[str] = (NARRATOR_VOICE, DRIFT_VOICE)) -> None:
        """Render every word the texts (and the mistakes) may need now, in a fixed order, so the
        codes do not depend on which candidate met a word first."""
        words = sorted({w for text in texts for w in words_of(text)} | set(DISTRACTORS))
        for voice in voices:
            for word in words:
                self.codebook.word(word, voice, self.espeak)

    def word_codes(self, word: str, voice: str) -> list[int]:
        clip = self.codebook.word(word, voice, self.espeak)
        return [*range(clip.first, clip.first + clip.length), *[SILENCE_CODE] * WORD_GAP_CODES]

    def speak(self, text: str, voice: str = NARRATOR_VOICE) -> np.ndarray:
        """The codes of `text` said right, in `voice`."""
        return np.asarray([c for w in words_of(text) for c in self.word_codes(w, voice)], dtype=np.int64)

    def voice_prompt(self, text: str, voice: str = NARRATOR_VOICE) -> VoicePrompt:
        """A reference clip in the world's speech: `text` said right in `voice`."""
        return VoicePrompt(codes=self.speak(text, voice), text=text)

    def voice_of(self, prompt: VoicePrompt | None) -> str:
        """The voice the LM clones from a prompt: that of its first word (the narrator's when unknown)."""
        if prompt is not None:
            for code in np.asarray(prompt.codes, dtype=np.int64):
                clip = self.codebook.clip_at(int(code))
                if clip is not None and clip.voice is not None:
                    return clip.voice
        return NARRATOR_VOICE

    def truth(self, codes: np.ndarray) -> Truth:
        words, voices, silence, longest = [], set(), 0, 0
        for code in np.asarray(codes, dtype=np.int64):
            clip = self.codebook.clip_at(int(code))
            silence = silence + 1 if clip is None else 0
            longest = max(longest, silence)
            if clip is not None and clip.first == code and clip.word is not None:
                words.append(clip.word)
                voices.add(clip.voice)
        return Truth(tuple(words), frozenset(voices), longest / CODES_PER_SECOND)


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]
