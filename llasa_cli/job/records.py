"""The job store's records: what it is told about the plan and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..text.plan import Segment


@dataclass(frozen=True)
class PlanRow:
    """One position of the current plan and the segment key it needs."""

    key: str
    chapter: int
    index: int
    text: str
    est_seconds: float
    voice: str | None = None  # the character who speaks it; None: the narrator

    @classmethod
    def from_segment(cls, key: str, segment: Segment) -> PlanRow:
        return cls(key, segment.chapter, segment.index, segment.text, segment.est_seconds, segment.voice)


@dataclass(frozen=True)
class JobInfo:
    fingerprint: str
    options: dict[str, Any]
    model: str
    codec: str
    created: float
    updated: float


@dataclass(frozen=True)
class SegmentRecord:
    key: str
    status: str
    attempts: int
    last_error: str | None
    scores: dict[str, Any] | None
    timings: dict[str, Any] | None
    hit_cap: bool | None
    flagged: bool  # finished, but failed verification on every attempt (its best attempt is kept)
    n_codes: int | None
    worker: str | None
    lease_until: float | None


@dataclass(frozen=True)
class OutputRecord:
    """A file the job wrote: its name relative to the job folder, the format of the audio it is or
    goes with (a chapter's subtitles go with its audio file), what it was made of (a digest of
    codes and settings) and its content's SHA-256 (None: unknown)."""

    name: str
    kind: str  # "wav", "flac", "mp3", "opus" or "m4b" (an m4b job's chapter WAVs are "wav")
    chapter: int | None  # None: the m4b and its subtitles
    digest: str
    sha256: str | None


@dataclass(frozen=True)
class PlanRecord:
    """One position of the current plan, its text, and the record of the segment it needs."""

    chapter: int
    index: int
    text: str
    record: SegmentRecord
    voice: str | None = None  # the character who speaks it; None: the narrator


@dataclass(frozen=True)
class ChapterStatus:
    """Counts over a chapter's positions: done + failed + pending = total."""

    chapter: int
    total: int
    done: int  # finished and passed (or not verified)
    failed: int  # finished but flagged by verification, or could not be synthesised
    pending: int
    finished: int  # with stored codes (done and flagged): what is stitched
    done_seconds: float  # audio of the finished segments
    pending_est_seconds: float  # estimated audio of the rest


@dataclass(frozen=True)
class JobStatus:
    """Counts over the current plan's positions (a key used twice counts twice)."""

    total: int
    done: int
    failed: int
    pending: int
    finished: int
    done_seconds: float
    pending_est_seconds: float
    chapters: tuple[ChapterStatus, ...]

    @classmethod
    def of(cls, chapters: tuple[ChapterStatus, ...]) -> JobStatus:
        sums = {name: sum(getattr(c, name) for c in chapters) for name in TOTAL_FIELDS}
        return cls(**sums, chapters=chapters)


TOTAL_FIELDS = ("total", "done", "failed", "pending", "finished", "done_seconds", "pending_est_seconds")
