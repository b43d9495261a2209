"""How a plan is shown to people (a Rich table) and to machines (JSON Lines)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..text.plan import Plan


def plan_json_lines(plan: Plan) -> Iterator[dict[str, Any]]:
    """One object per segment; the keys are documented in the README."""
    for segment in plan.segments:
        yield {
            "chapter": segment.chapter,
            "chapter_title": segment.chapter_title,
            "segment": segment.index,
            "id": segment.segment_id,
            "paragraph": segment.paragraph,
            "is_title": segment.is_title,
            "text": segment.text,
            "est_seconds": round(segment.est_seconds, 2),
            "pause_after": segment.pause_after.value,
            "voice": segment.voice,
        }


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def print_plan(plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Synthesis plan", show_footer=True)
    table.add_column("#", justify="right", footer="")
    table.add_column("file", footer="total", no_wrap=True)
    table.add_column("title")
    table.add_column("segments", justify="right", footer=str(len(plan.segments)))
    table.add_column("est. audio", justify="right", footer=format_duration(plan.est_seconds))
    for chapter in plan.chapters:
        segments = plan.segments_of(chapter.number)
        table.add_row(
            str(chapter.number),
            chapter.slug,
            Text(chapter.title or "(untitled)"),  # a title is text, never Rich markup: "[/]" is no tag
            str(len(segments)),
            format_duration(sum(s.est_seconds for s in segments)),
        )
    Console().print(table)
