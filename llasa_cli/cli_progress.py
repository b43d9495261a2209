"""Progress for `synth`: a Rich bar on a terminal, plain lines otherwise (cron, pipes)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .plan import Plan
from .plan_view import format_duration
from .synthesis import ChapterWritten, Event, NarratorFixed, SegmentDone


class RunProgress:
    """Counts segments and audio; shows real-time factor (processing time / audio time)."""

    def __init__(self, plan: Plan, interactive: bool, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.total = len(plan.segments)
        self.done = 0
        self.audio_seconds = 0.0
        self.empty: list[str] = []
        self.started = time.monotonic()
        self.quiet = quiet
        self.bar: Progress | None = None
        if interactive and not quiet:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("segments", total=self.total, stats="")
            self.bar.start()

    @property
    def real_time_factor(self) -> float:
        return (time.monotonic() - self.started) / self.audio_seconds if self.audio_seconds else 0.0

    def update(self, event: Event) -> None:
        if isinstance(event, SegmentDone):
            self._segment(event)
        elif isinstance(event, ChapterWritten):
            self._say(f"wrote {event.destination} ({format_duration(event.audio_seconds)})")
        elif isinstance(event, NarratorFixed):
            self._say(f"narrator voice fixed from segment {event.segment.segment_id}: {event.segment.text[:60]!r}")

    def _segment(self, event: SegmentDone) -> None:
        self.done += 1
        self.audio_seconds += event.audio_seconds
        if event.empty or event.hit_cap:
            reason = "no speech was generated" if event.empty else "hit its length cap (may be cut off or babble)"
            self.empty.append(event.segment.segment_id)
            self._say(f"[yellow]warning:[/] segment {event.segment.segment_id} {reason}: {event.segment.text[:60]!r}")
        if self.bar is not None:
            stats = f"{self.audio_seconds / 60:.1f} min audio, RTF {self.real_time_factor:.2f}"
            self.bar.update(self.task, advance=1, stats=stats)

    def _say(self, message: str) -> None:
        if self.quiet and not message.startswith("[yellow]"):
            return
        if self.bar is not None:
            self.bar.console.print(message)
        else:
            self.console.print(message, highlight=False)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elapsed = time.monotonic() - self.started
        summary = (
            f"done: {self.done}/{self.total} segments, {format_duration(self.audio_seconds)} of audio "
            f"in {format_duration(elapsed)} (RTF {self.real_time_factor:.2f})"
        )
        if self.empty:
            summary += f"; [yellow]{len(self.empty)} segment(s) need a listen: {', '.join(self.empty)}[/]"
        self.console.print(summary, highlight=False)
