"""The narrator's own pace, and segments whose length departs from it.

A fixed speech-rate band (signal_checks.py's `too_short` / `too_long`, 0.035-0.2 s per character)
fits no voice: espeak-ng at 80 words a minute (0.1 s per character) sits inside it. Here the
expected length of a segment is its text's characters (signal_checks.text_chars: Latin-character
equivalents, CJK weighted) times the narrator's seconds per character, and a segment is flagged
when its voiced length (first to last voiced frame, pauses included) is more than
`pace_factor` times the expected length, or less than the expected length over `pace_factor`,
each side widened by RATE_SLACK_SECONDS for short segments.

Characters, not syllables: on espeak-ng's en-us voice over 13 sentences the seconds per character
varied by 6.9% (coefficient of variation), a vowel-group syllable count by 8.9%, words by 9.4%.

The pace starts from the narrator's reference clip (its voiced seconds over its transcript's
characters, when the transcript is known) and is refined by every segment that passes: it is the
pooled voiced seconds over the pooled characters of the reference and the passed segments. Until
MIN_PACE_CHARACTERS are pooled (no reference transcript, too few passed segments), the check does
not run.

Mid-sentence (search's partial candidates) only the slow side can be judged: speech already
longer than the whole sentence's longest plausible length is a stall or a loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .signal_checks import RATE_SLACK_SECONDS, text_chars

TOO_FAST = "too_fast"
TOO_SLOW = "too_slow"
PACE_FAILURES = frozenset({TOO_FAST, TOO_SLOW})
PACE_RATIO = "pace_ratio"
# Enough text to trust a pace: about three seconds of speech.
MIN_PACE_CHARACTERS = 40.0


@dataclass(frozen=True)
class PaceCheck:
    ratio: float  # voiced seconds / expected seconds
    expected_s: float
    failures: tuple[str, ...]


class NarratorPace:
    """Seconds per character of the narrator, pooled over the reference and passed segments.
    Shared by a verifier and its partial-speech form; safe to update from several threads."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._seconds = 0.0
        self._characters = 0.0
        self._lock = threading.Lock()

    def add(self, voiced_s: float, text: str) -> None:
        """Pool a clip of the narrator (the reference, or a segment that passed)."""
        characters = text_chars(text)
        if voiced_s <= 0.0 or characters <= 0.0:
            return
        with self._lock:
            self._seconds += voiced_s
            self._characters += characters

    @property
    def seconds_per_char(self) -> float | None:
        """The pooled pace; None until MIN_PACE_CHARACTERS are pooled."""
        with self._lock:
            if self._characters < MIN_PACE_CHARACTERS:
                return None
            return self._seconds / self._characters

    def expected_seconds(self, text: str) -> float | None:
        pace = self.seconds_per_char
        return None if pace is None else pace * max(text_chars(text), 1.0)

    def longest_seconds(self, text: str) -> float | None:
        """The longest voiced length of `text` that is not too slow; None while the pace is unknown."""
        expected = self.expected_seconds(text)
        return None if expected is None else expected * self.factor + RATE_SLACK_SECONDS

    def check(self, voiced_s: float, text: str) -> PaceCheck | None:
        """A whole segment against the pace; None while the pace is unknown."""
        expected = self.expected_seconds(text)
        if expected is None:
            return None
        failures = []
        if voiced_s < expected / self.factor - RATE_SLACK_SECONDS:
            failures.append(TOO_FAST)
        if voiced_s > expected * self.factor + RATE_SLACK_SECONDS:
            failures.append(TOO_SLOW)
        return PaceCheck(voiced_s / expected, expected, tuple(failures))

    def check_partial(self, spoken_s: float, text: str) -> PaceCheck | None:
        """Speech in progress (`spoken_s` so far) against the longest plausible length of its text."""
        expected = self.expected_seconds(text)
        longest = self.longest_seconds(text)
        if expected is None or longest is None:
            return None
        return PaceCheck(spoken_s / expected, expected, (TOO_SLOW,) if spoken_s > longest else ())
