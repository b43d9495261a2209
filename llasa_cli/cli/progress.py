"""What `synth` shows: a Rich bar on a terminal, plain lines otherwise (cron, pipes),
or JSON Lines events with `--json` (schema in the README)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..pipeline import (
    BookWritten,
    ChapterHeld,
    ChapterWritten,
    Event,
    JobFinished,
    JobOpened,
    NarratorFixed,
    RunStopped,
    SegmentDone,
    Waiting,
)
from .plan_view import format_duration

if TYPE_CHECKING:
    from ..text.plan import Plan


class RunTally:
    """Counts shared by every way of showing a run."""

    def __init__(self, plan: Plan) -> None:
        self.total = len(plan.segments)
        self.done = 0
        self.generated = 0
        self.audio_seconds = 0.0  # speech synthesised by this run
        self.suspect: list[tuple[int, int]] = []
        self.chapters_written = 0
        self.written_seconds = 0.0  # chapter audio written by this run, pauses included
        self.held: list[int] = []
        self.flagged: tuple[str, ...] = ()
        self.retries = 0
        self.stopped: str | None = None
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per second of audio made in this run (lower is faster)."""
        return self.elapsed / self.audio_seconds if self.audio_seconds else 0.0

    def count(self, event: Event) -> None:
        if isinstance(event, JobOpened | JobFinished):
            self.done = event.done
        if isinstance(event, JobFinished):
            self.flagged = event.flagged
        elif isinstance(event, ChapterHeld):
            self.held.append(event.chapter.number)
        elif isinstance(event, SegmentDone):
            self.done = min(self.total, self.done + 1)
            self.generated += 1
            self.retries += event.attempts - 1
            self.audio_seconds += event.audio_seconds
            if event.empty or event.hit_cap:
                self.suspect.append((event.segment.chapter, event.segment.index))
        elif isinstance(event, ChapterWritten) and not event.unchanged:
            self.chapters_written += 1
            self.written_seconds += event.audio_seconds
        elif isinstance(event, RunStopped):
            self.stopped = event.reason

    def summary(self) -> dict[str, Any]:
        return {
            "status": "partial" if self.stopped or self.done < self.total else "complete",
            "segments_total": self.total,
            "segments_done": self.done,
            "segments_generated": self.generated,
            "segments_suspect": [f"{chapter}.{index}" for chapter, index in sorted(self.suspect)],
            "segments_flagged": list(self.flagged),
            "retries": self.retries,
            "chapters_held": self.held,
            "chapters_written": self.chapters_written,
            "audio_seconds": round(self.audio_seconds, 3),
            "written_audio_seconds": round(self.written_seconds, 3),
            "elapsed_seconds": round(self.elapsed, 3),
            "real_time_factor": round(self.real_time_factor, 4),
            "stopped": self.stopped,
        }


def chapter_message(event: ChapterWritten) -> str:
    duration = format_duration(event.audio_seconds)
    if event.book is not None:  # the file is the audiobook's working copy in the job folder
        return f"chapter {event.chapter.number} ready for {Path(event.book).name} ({duration})"
    return f"wrote {event.destination} ({duration})"


def book_message(event: BookWritten) -> str:
    what = f"{event.path} ({format_duration(event.audio_seconds)}, {event.chapters} chapters)"
    subtitles = f" and {', '.join(Path(p).name for p in event.subtitles)}" if event.subtitles else ""
    return f"{what}{subtitles} is up to date" if event.unchanged else f"wrote {what}{subtitles}"


def suspect_reason(event: SegmentDone) -> str:
    return "no speech was generated" if event.empty else "hit its length cap (may be cut off or babble)"


class HumanReporter:
    def __init__(self, plan: Plan, interactive: bool, quiet: bool = False) -> None:
        self.tally = RunTally(plan)
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.waiting_for: tuple[int, ...] | None = None  # said once, not at every poll
        self.bar: Progress | None = None
        if interactive and not quiet:
            self.bar = Progress(
                TextColumn("[bold]segments"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("segments", total=self.tally.total, stats="")
            self.bar.start()

    def update(self, event: Event) -> None:
        self.tally.count(event)
        if isinstance(event, SegmentDone) and event.flagged:
            self.warn(
                f"segment {event.segment.segment_id} flagged ({', '.join(event.failures)}) after "
                f"{event.attempts} attempt(s); keeping the best: {event.segment.text[:60]!r}"
            )
        elif isinstance(event, SegmentDone) and (event.empty or event.hit_cap):
            self.warn(f"segment {event.segment.segment_id} {suspect_reason(event)}: {event.segment.text[:60]!r}")
        elif isinstance(event, ChapterHeld):
            self.warn(f"--strict: chapter {event.chapter.number} not written; flagged: {', '.join(event.flagged)}")
        elif isinstance(event, ChapterWritten) and not event.unchanged:
            self._say(chapter_message(event))
        elif isinstance(event, BookWritten):
            self._say(book_message(event))
        elif isinstance(event, NarratorFixed):
            self._say(f"narrator voice fixed from segment {event.segment.segment_id}: {event.segment.text[:60]!r}")
        elif isinstance(event, JobOpened) and event.done:
            self._say(f"resuming: {event.done} of {event.total} segments were already done")
        elif isinstance(event, Waiting) and event.chapters != self.waiting_for:
            self.waiting_for = event.chapters
            self._say(f"waiting for another run working on chapter(s) {list(event.chapters) or 'narrator'}")
        elif isinstance(event, RunStopped):
            self.warn(f"{event.reason}: finished work is saved; run the same command again to continue")
        if self.bar is not None:
            stats = f"{self.tally.audio_seconds / 60:.1f} min audio, RTF {self.tally.real_time_factor:.2f}"
            self.bar.update(self.task, completed=self.tally.done, stats=stats)

    def warn(self, message: str) -> None:
        self._print(f"[yellow]llasa: warning:[/] {message}")

    def _say(self, message: str) -> None:
        if not self.quiet:
            self._print(message)

    def _print(self, message: str) -> None:
        (self.bar.console if self.bar is not None else self.console).print(message, markup=True)

    def finish(self, summary: bool = True) -> None:
        """Stop the bar and, with `summary`, print the run's one-line summary."""
        if self.bar is not None:
            self.bar.stop()
        if not summary:
            return
        s = self.tally.summary()
        if not self.quiet or s["status"] != "complete":
            self.console.print(summary_line(s), markup=False)


def summary_line(s: dict[str, Any]) -> str:
    """A run's one-line summary from its tally's `summary()`."""
    line = f"{s['status']}: {s['segments_done']}/{s['segments_total']} segments, " + _work_done(s)
    if s["segments_flagged"]:
        line += f"; {len(s['segments_flagged'])} flagged segment(s), see `llasa report`"
    elif s["segments_suspect"]:
        line += f"; {len(s['segments_suspect'])} segment(s) need a listen: {', '.join(s['segments_suspect'])}"
    return line


def _work_done(s: dict[str, Any]) -> str:
    """What this run made: speech synthesised (with its real-time factor) and chapter audio written."""
    elapsed = format_duration(s["elapsed_seconds"])
    if s["segments_generated"]:
        made = f"{format_duration(s['audio_seconds'])} of speech made in {elapsed} (RTF {s['real_time_factor']:.2f})"
    else:
        made = f"nothing new to synthesise ({elapsed})"
    if s["chapters_written"]:
        made += f"; wrote {s['chapters_written']} chapter(s), {format_duration(s['written_audio_seconds'])} of audio"
    return made


class JsonReporter:
    """One JSON object per line on standard output; see the README for the schema."""

    def __init__(self, plan: Plan, stream: TextIO | None = None) -> None:
        self.tally = RunTally(plan)
        self.stream = stream or sys.stdout

    def emit(self, kind: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": kind, **fields}, ensure_ascii=False) + "\n")
        self.stream.flush()

    def update(self, event: Event) -> None:
        self.tally.count(event)
        payload = event_fields(event)
        if payload is not None:
            kind, fields = payload
            self.emit(kind, **fields)

    def warn(self, message: str) -> None:
        self.emit("warning", message=message)

    def finish(self, summary: bool = True) -> None:
        if summary:
            self.emit("summary", **self.tally.summary())


def event_fields(event: Event) -> tuple[str, dict[str, Any]] | None:
    if isinstance(event, JobOpened):
        return "job", {"total": event.total, "done": event.done}
    if isinstance(event, JobFinished):
        return "finished", {"total": event.total, "done": event.done, "flagged": list(event.flagged)}
    if isinstance(event, ChapterHeld):
        return "held", {"chapter": event.chapter.number, "flagged": list(event.flagged)}
    if isinstance(event, NarratorFixed):
        return "narrator", {"id": event.segment.segment_id, "text": event.segment.text}
    if isinstance(event, SegmentDone):
        s = event.segment
        return "segment", {
            "id": s.segment_id,
            "chapter": s.chapter,
            "segment": s.index,
            "voice": s.voice,
            "audio_seconds": round(event.audio_seconds, 3),
            "codes": event.codes,
            "hit_cap": event.hit_cap,
            "empty": event.empty,
            "attempts": event.attempts,
            "flagged": event.flagged,
            "failures": list(event.failures),
            "transcript": event.transcript,
        }
    if isinstance(event, ChapterWritten):
        return "chapter", {
            "chapter": event.chapter.number,
            "title": event.chapter.title,
            "path": event.destination,
            "audio_seconds": round(event.audio_seconds, 3),
            "unchanged": event.unchanged,
            "book": event.book,
        }
    if isinstance(event, BookWritten):
        return "book", {
            "path": event.path,
            "chapters": event.chapters,
            "audio_seconds": round(event.audio_seconds, 3),
            "subtitles": list(event.subtitles),
            "unchanged": event.unchanged,
        }
    if isinstance(event, Waiting):
        return "waiting", {"chapters": list(event.chapters)}
    if isinstance(event, RunStopped):
        return "stopped", {"reason": event.reason}
    return None
