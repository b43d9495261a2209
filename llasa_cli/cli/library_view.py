"""Showing books worked by `synth`: a library (one summary line per book, one exit code: the
worst) or one book spread over workers (`--devices`, `--ray`), shown exactly as a plain run.

Each started book gets a reporter of its own (progress.py) for its events; a library prints a
line as each book begins and, at the end, one line per book. With `--json`, a library adds a
`library_book` event before each book's events and a `library` event at the end.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ..errors import LlasaError
from .common import EXIT_FLAGGED, EXIT_OK, EXIT_PARTIAL
from .progress import HumanReporter, JsonReporter, summary_line

if TYPE_CHECKING:
    from ..options import WorkerOptions
    from ..pipeline.library import Book, LibraryEvent
    from .synth import OutputMode

# A library's exit code is its worst book's: an error, then a partial book, then flagged segments.
_OUTCOME_RANK = {EXIT_OK: 0, EXIT_FLAGGED: 1, EXIT_PARTIAL: 2}
ERROR_RANK = 3


@dataclass(frozen=True)
class BookResult:
    book: Book
    status: str  # complete, partial, up_to_date, not_started, error
    exit_code: int
    line: str  # what the book's summary line says after its name


def worst_exit_code(codes: list[int]) -> int:
    """The worst of the books' exit codes (0 for none): an error's, else 3, else 4, else 0."""
    return max(codes, key=lambda code: _OUTCOME_RANK.get(code, ERROR_RANK), default=EXIT_OK)


def execute_books(
    books: list[Book], output_mode: OutputMode, max_minutes: float | None, placement: WorkerOptions, single: bool
) -> int:
    """Work the books where `placement` says, show their events, and return the exit code.
    `single`: one book, shown (and failing) exactly as a plain `synth` of it."""
    from ..pipeline import StopController, synthesize_books

    view = LibraryView(output_mode, single)
    with StopController(max_minutes) as stop:
        try:
            for event in synthesize_books(
                books, placement,
                skip_current=not single, stop_reason=stop.stop_reason, seconds_left=stop.seconds_left, warn=view.warn,
            ):  # fmt: skip
                if (notice := stop.take_notice()) is not None:
                    view.warn(notice)
                view.update(event)
        finally:
            view.close()
    return view.exit_code()


class LibraryView:
    """Turns library events into reporters' output, book lines and exit codes."""

    def __init__(self, output_mode: OutputMode, single: bool) -> None:
        self.mode = output_mode
        self.single = single
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.reporter: HumanReporter | JsonReporter | None = None
        self.current: Book | None = None
        self.results: list[BookResult] = []

    def warn(self, message: str) -> None:
        if self.reporter is not None:
            self.reporter.warn(message)
        elif self.mode.json:
            _emit("warning", message=message)
        else:
            self.console.print(f"[yellow]llasa: warning:[/] {message}", markup=True)

    def update(self, event: LibraryEvent) -> None:
        from ..pipeline.library import BookEnded, BookFailed, BookSkipped, BookStarted

        if isinstance(event, BookStarted):
            self._start(event)
        elif isinstance(event, BookEnded):
            self._end(event.book, event.error)
        elif isinstance(event, BookSkipped):
            self._skipped(event)
        elif isinstance(event, BookFailed):
            if self.single:
                raise event.error
            self._say_error(event.book, event.error)
            self.results.append(BookResult(event.book, "error", event.error.exit_code, f"error: {event.error}"))
        elif self.reporter is not None:
            self.reporter.update(event)

    def _start(self, event: Any) -> None:
        book = event.book
        self.current = book
        if self.mode.json:
            if not self.single:
                _emit("library_book", book=book.slug, source=book.source, output=book.output,
                      position=event.position, count=event.count)  # fmt: skip
            self.reporter = JsonReporter(event.plan)
        else:
            if not self.single and not self.mode.quiet:
                self.console.print(
                    f"book {event.position}/{event.count}: {book.slug} ({book.source} -> {book.output})", markup=False
                )
            self.reporter = HumanReporter(event.plan, self.mode.interactive, self.mode.quiet)
        for message in event.warnings:
            self.reporter.warn(message)

    def _end(self, book: Book, error: LlasaError | None) -> None:
        reporter, self.reporter, self.current = self.reporter, None, None
        if reporter is None:
            return
        summary = reporter.tally.summary()
        reporter.finish(summary=(self.single or self.mode.json) and error is None)  # JSON: each book's summary
        if error is not None:
            if self.single:
                raise error
            self._say_error(book, error)
            self.results.append(BookResult(book, "error", error.exit_code, f"error: {error}"))
            return
        code = EXIT_PARTIAL if summary["status"] == "partial" else EXIT_OK
        if code == EXIT_OK and (summary["segments_flagged"] or summary["chapters_held"]):
            code = EXIT_FLAGGED
        self.results.append(BookResult(book, summary["status"], code, summary_line(summary)))

    def _skipped(self, event: Any) -> None:
        if self.single:
            self.warn(f"{event.reason}: nothing was done; run the same command again to continue")
        if event.up_to_date:
            flagged = event.status.failed if event.status is not None else 0
            total = event.status.total if event.status is not None else 0
            line = f"up to date: {total} segment{'' if total == 1 else 's'}, nothing to do"
            if flagged:
                line += f"; {flagged} flagged segment(s), see `llasa report`"
            self.results.append(BookResult(event.book, "up_to_date", EXIT_FLAGGED if flagged else EXIT_OK, line))
        else:
            self.results.append(BookResult(event.book, "not_started", EXIT_PARTIAL, f"not started: {event.reason}"))

    def _say_error(self, book: Book, error: LlasaError) -> None:
        if self.mode.json:
            _emit("error", book=book.slug, message=str(error), exit_code=error.exit_code)
        else:
            self.console.print(f"llasa: error: {book.slug}: {error}", markup=False)

    def close(self) -> None:
        """The end, or an error on the way out: stop a book's display, then sum the library up."""
        if self.reporter is not None:
            self.reporter.finish(summary=False)
            self.reporter = None
        if self.single:
            return
        if self.mode.json:
            books = [
                {"book": r.book.slug, "source": r.book.source, "output": r.book.output, "status": r.status,
                 "exit_code": r.exit_code, "summary": r.line}
                for r in self.results
            ]  # fmt: skip
            _emit("library", books=books, exit_code=self.exit_code())
            return
        for result in self.results:
            if not self.mode.quiet or result.exit_code != EXIT_OK:
                self.console.print(f"{result.book.slug}: {result.line}", markup=False)

    def exit_code(self) -> int:
        if self.single:
            return self._single_exit_code()
        return worst_exit_code([result.exit_code for result in self.results])

    def _single_exit_code(self) -> int:
        if not self.results:
            return EXIT_PARTIAL  # stopped (or every worker gone) before the book started
        return self.results[0].exit_code


def _emit(kind: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": kind, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()
