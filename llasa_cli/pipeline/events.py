"""What a synthesis run yields: one event per segment, chapter and change of state."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.protocols import VoicePrompt
from ..text.plan import Chapter, Segment


@dataclass(frozen=True)
class JobOpened:
    """The plan is in the job store; `done` segments are already finished from earlier runs."""

    total: int
    done: int


@dataclass(frozen=True)
class JobFinished:
    """Every chapter is written; counts are the job's, including other runs' work."""

    total: int
    done: int
    flagged: tuple[str, ...] = ()  # ids of segments that failed verification on every attempt


@dataclass(frozen=True)
class NarratorFixed:
    """No voice was given: this segment's speech became the voice of the whole book."""

    segment: Segment
    voice: VoicePrompt


@dataclass(frozen=True)
class SegmentDone:
    segment: Segment
    audio_seconds: float
    codes: int
    new_tokens: int  # tokens the language model produced, the end token included
    hit_cap: bool
    attempts: int = 1
    flagged: bool = False  # failed verification on every attempt; the best attempt is kept
    failures: tuple[str, ...] = ()
    transcript: str | None = None

    @property
    def empty(self) -> bool:
        return self.codes == 0


@dataclass(frozen=True)
class ChapterWritten:
    chapter: Chapter
    destination: str
    audio_seconds: float
    unchanged: bool = False  # its inputs and file were as the last run left them: not rewritten
    book: str | None = None  # the audiobook (m4b) the chapter file is gathered into, when there is one


@dataclass(frozen=True)
class BookWritten:
    """Every chapter is gathered into one audiobook file (m4b), with its subtitles if asked."""

    path: str
    chapters: int
    audio_seconds: float
    subtitles: tuple[str, ...] = ()
    unchanged: bool = False  # its chapters, tags and cover were as the last run left them: not rewritten


@dataclass(frozen=True)
class ChapterHeld:
    """`--strict`: the chapter was not written because these segments failed verification."""

    chapter: Chapter
    flagged: tuple[str, ...]


@dataclass(frozen=True)
class Waiting:
    """Other runs hold the segments of these chapters (empty: the narrator); polling."""

    chapters: tuple[int, ...]


@dataclass(frozen=True)
class RunStopped:
    """The run stopped early (Ctrl-C, SIGTERM, time budget); finished work is saved."""

    reason: str


Event = (
    JobOpened
    | JobFinished
    | NarratorFixed
    | SegmentDone
    | ChapterWritten
    | ChapterHeld
    | BookWritten
    | Waiting
    | RunStopped
)
