"""What a listener's review adds to a job: where each segment sits in its chapter file, accepted
takes, queued redos, text overrides and the previous takes kept beside a redo.

The store keeps these (`JobStore`, the review section; schema v4). A text override belongs to a
position and remembers the manuscript text it replaces, so it keeps applying while that line of
the manuscript is unchanged, and lapses by itself when the line is edited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..text.plan import Plan, Segment
from ..text.planner import estimate_seconds

Position = tuple[int, int]  # (chapter, index in the chapter)


@dataclass(frozen=True)
class SegmentSpan:
    """Where a position's audio sits in its chapter file as last written (seconds from the file's
    start), and the key and take whose codes were stitched there."""

    chapter: int
    index: int
    key: str
    start: float
    end: float
    take: int = 0


@dataclass(frozen=True)
class Acceptance:
    """A flagged take a listener accepted: it no longer counts as flagged."""

    key: str
    take: int
    who: str
    at: float  # seconds since the epoch
    failures: tuple[str, ...]  # the checks it had failed


@dataclass(frozen=True)
class QueuedRedo:
    """A position the listener asked to synthesise again (`llasa redo OUTDIR --queued`)."""

    chapter: int
    index: int
    key: str  # the segment key when it was queued
    who: str
    at: float


@dataclass(frozen=True)
class TextOverride:
    """What a position says instead of the manuscript's `original` text."""

    chapter: int
    index: int
    original: str
    text: str
    who: str
    at: float


@dataclass(frozen=True)
class PreviousTake:
    """A take's audio cut from its chapter file before a redo replaced it (path relative to the job folder)."""

    chapter: int
    index: int
    key: str
    take: int
    path: str
    at: float


def apply_text_overrides(plan: Plan, overrides: Sequence[TextOverride]) -> Plan:
    """The plan with each override's text at its position, where the manuscript still gives that
    position the override's original text (anything else means the line was edited: it lapses)."""
    by_position = {(o.chapter, o.index): o for o in overrides}
    if not by_position:
        return plan
    segments = tuple(_overridden(s, by_position.get((s.chapter, s.index))) for s in plan.segments)
    return dataclasses.replace(plan, segments=segments)


def _overridden(segment: Segment, override: TextOverride | None) -> Segment:
    if override is None or override.original != segment.text:
        return segment
    # The estimate sets the token cap, so a longer edit must get a longer budget.
    return dataclasses.replace(segment, text=override.text, est_seconds=estimate_seconds(override.text))
