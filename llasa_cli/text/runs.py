"""A normalised paragraph cut at its marks (markup.py) into runs: stretches spoken by one voice.

A voice change starts a run and so does a pause (the pause follows the run before it); a
`[say]` mark is replaced by what it says. A run with no letter or digit (the full stop after a
closing quote, a dash between two speakers) is not spoken on its own: it joins the run before
it, or the one after when it comes first. Runs of one voice with no pause between are one run.
The words of the runs, in order, are the words of the paragraph's text and [say] spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .markup import Mark, PauseMark, SayMark, VoiceMark, marked_pieces
from .normalize import HAS_WORD, collapse_whitespace


@dataclass(frozen=True)
class Run:
    voice: str | None  # None: the narrator
    text: str
    pause_after: float | None = None  # seconds of a marked pause after the run


@dataclass(frozen=True)
class VoicedParagraph:
    runs: tuple[Run, ...]
    # A marked pause before the first run: it follows whatever was spoken before the paragraph.
    pause_before: float | None = None

    @property
    def text(self) -> str:
        return " ".join(run.text for run in self.runs)


def voice_paragraph(paragraph: str, marks: Sequence[Mark], voice: str | None) -> tuple[VoicedParagraph, str | None]:
    """The paragraph's runs, starting in `voice`, and the voice in force after it."""
    raw: list[Run] = []
    parts: list[str] = []
    pause_before: float | None = None

    def flush() -> None:
        if parts:
            raw.append(Run(voice, "".join(parts)))
            parts.clear()

    for piece in marked_pieces(paragraph):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        mark = marks[piece]
        if isinstance(mark, SayMark):
            parts.append(mark.spoken)
        elif isinstance(mark, VoiceMark):
            if mark.voice != voice:
                flush()
                voice = mark.voice
            parts.append(" ")  # a tag separates words
        elif isinstance(mark, PauseMark):
            flush()
            if raw:
                raw[-1] = Run(raw[-1].voice, raw[-1].text, _add(raw[-1].pause_after, mark.seconds))
            else:
                pause_before = _add(pause_before, mark.seconds)
    flush()
    runs, pause_before = _join_wordless(raw, pause_before)
    return VoicedParagraph(tuple(runs), pause_before), voice


def _join_wordless(raw: Sequence[Run], pause_before: float | None) -> tuple[list[Run], float | None]:
    runs: list[Run] = []
    leading = ""  # wordless text before the first run with words
    for run in raw:
        if not HAS_WORD.search(run.text):
            if runs:
                last = runs[-1]
                runs[-1] = Run(last.voice, last.text + run.text, _add(last.pause_after, run.pause_after))
            else:
                leading += run.text
                pause_before = _add(pause_before, run.pause_after)
            continue
        text = leading + run.text
        leading = ""
        if runs and runs[-1].voice == run.voice and runs[-1].pause_after is None:
            runs[-1] = Run(run.voice, f"{runs[-1].text} {text}", run.pause_after)
        else:
            runs.append(Run(run.voice, text, run.pause_after))
    if not runs and leading.strip():  # unnormalised text says what it says, words or not
        runs.append(Run(raw[0].voice, leading))
    return [Run(run.voice, collapse_whitespace(run.text), run.pause_after) for run in runs], pause_before


def _add(pause: float | None, seconds: float | None) -> float | None:
    if seconds is None:
        return pause
    return seconds if pause is None else pause + seconds
