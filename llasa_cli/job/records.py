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

    @classmethod
    def from_segment(cls, key: str, segment: Segment) -> PlanRow:
        return cls(key, segment.chapter, segment.index, segment.text, segment.est_seconds)


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
    n_codes: int | None
    worker: str | None
    lease_until: float | None


@dataclass(frozen=True)
class ChapterStatus:
    chapter: int
    total: int
    done: int
    failed: int
    pending: int
    done_seconds: float
    pending_est_seconds: float


@dataclass(frozen=True)
class JobStatus:
    """Counts over the current plan's positions (a key used twice counts twice)."""

    total: int
    done: int
    failed: int
    pending: int
    done_seconds: float
    pending_est_seconds: float
    chapters: tuple[ChapterStatus, ...]

    @classmethod
    def of(cls, chapters: tuple[ChapterStatus, ...]) -> JobStatus:
        sums = [sum(getattr(c, name) for c in chapters) for name in TOTAL_FIELDS]
        return cls(*sums, chapters=chapters)

    @property
    def complete(self) -> bool:
        return self.done == self.total


TOTAL_FIELDS = ("total", "done", "failed", "pending", "done_seconds", "pending_est_seconds")
