"""The data that flows from the text stages to synthesis: chapters and segments.

Pure data; no torch. Built by `llasa_cli.text.planner.build_plan`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Pause(str, enum.Enum):
    """What follows a segment, and so how long a silence the stitcher inserts."""

    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    TITLE = "title"
    CHAPTER = "chapter"


@dataclass(frozen=True)
class MarkedPause:
    """A silence the manuscript asks for (`[pause=1.5]`), in place of the Pause that would follow."""

    seconds: float

    @property
    def value(self) -> str:
        """How plans and digests name it, beside the Pause values: e.g. "1.5s"."""
        return f"{self.seconds:g}s"


@dataclass(frozen=True)
class Chapter:
    """One chapter of the manuscript after clean-up and normalisation.

    `number` is 1-based and stable for a given manuscript and chapter options.
    `paragraphs` hold the normalised text that segments are cut from; the spoken
    title (when titles are spoken) is not part of them.
    """

    number: int
    title: str | None
    slug: str
    paragraphs: tuple[str, ...]
    spoken_title: str | None = None


@dataclass(frozen=True)
class Segment:
    """A unit of synthesis: whole sentences of one paragraph in one voice, up to a time budget.

    `voice` is the character who speaks it (a cast name, see cast.py), None for the narrator.
    """

    chapter: int
    chapter_title: str | None
    index: int  # 0-based position within its chapter
    paragraph: int  # 0-based paragraph within its chapter; -1 for the spoken title
    text: str
    est_seconds: float
    pause_after: Pause | MarkedPause
    is_title: bool = False
    voice: str | None = None

    @property
    def segment_id(self) -> str:
        """Stable human-readable id, e.g. '3.12' (chapter 3, segment 12)."""
        return f"{self.chapter}.{self.index}"


@dataclass(frozen=True)
class Plan:
    chapters: tuple[Chapter, ...]
    segments: tuple[Segment, ...]
    warnings: tuple[str, ...] = field(default=())

    def segments_of(self, chapter: int) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.chapter == chapter)

    @property
    def est_seconds(self) -> float:
        return sum(s.est_seconds for s in self.segments)

    @property
    def voices(self) -> tuple[str, ...]:
        """The characters who speak besides the narrator, in order of their first segment."""
        return tuple(dict.fromkeys(s.voice for s in self.segments if s.voice is not None))
