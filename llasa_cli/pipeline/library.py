"""A library: many manuscripts in one `synth`, one job per book under `OUTDIR/<book-slug>/`.

`library_books` turns the arguments (files, folders of manuscripts, glob patterns) into `Book`s,
each a `RunRequest` of its own. `synthesize_library` works them in order with one set of loaded
models (loaded when the first book needs them, and kept), and yields each book's events between
`BookStarted` and `BookEnded`, or one `BookSkipped` / `BookFailed`. A book whose job is finished
and whose inputs are unchanged (`finished_and_unchanged`, read-only) is skipped without loading a
model or writing a byte. A book that fails (an unreadable manuscript, a full disk) is reported and
the next one starts; only errors that would fail every book (a missing model) end the library.

Each book is an ordinary job, so a second `synth` of the same library (cron) shares each book's
work through leases, and `--max-minutes` spans the library: `stop_reason` and `seconds_left`
are the caller's, one budget for every book.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputNotFoundError, InvalidOptionError, LlasaError
from ..job.records import JobStatus
from ..job.review_state import apply_text_overrides
from ..job.schema import DB_NAME
from ..job.store import JobStore
from ..text.chapters import chapter_slug
from ..text.manuscript import EPUB_SUFFIX, MARKDOWN_SUFFIXES, STDIN_SOURCE, Manuscript
from ..text.plan import Plan
from ..voices.resolve import VoiceSpec
from .events import Event
from .job_folder import open_job, work_dir_of
from .outputs import output_name
from .request import STDOUT, RunRequest, book_metadata
from .run import LoadedModels, check_models, load_models, load_plan, open_sink, read_input, run_book, voice_specs

MANUSCRIPT_SUFFIXES = (".txt", *MARKDOWN_SUFFIXES, EPUB_SUFFIX)
GLOB_CHARACTERS = frozenset("*?[")
UP_TO_DATE = "finished and unchanged"
BOOK_SLUG_FALLBACK = "book"
# Request fields that change neither a segment's codes nor a file: where the job and its output
# are, how the manuscript was named, and where the models run.
_PLACE_FIELDS = ("source", "output", "work_dir", "dry_run")
_ENGINE_RUNTIME_FIELDS = ("device", "dtype", "batch_size", "overlap")

Warn = Callable[[str], None]
# How a run gets its models for a book's request and voices (`load_here`, or on a Ray cluster).
Load = Callable[[RunRequest, Sequence[VoiceSpec], Warn], LoadedModels]


@dataclass(frozen=True)
class Book:
    """One manuscript of a library and the request that makes it into `OUTDIR/<slug>/`."""

    slug: str
    request: RunRequest

    @classmethod
    def of(cls, request: RunRequest) -> Book:
        """A single book's request as a `Book` (for one book worked by several workers)."""
        return cls(book_slug(Path(request.source)), request)

    @property
    def source(self) -> str:
        return self.request.source

    @property
    def output(self) -> str:
        return self.request.output


@dataclass(frozen=True)
class BookStarted:
    """The book needs work: its plan is read and its events follow, up to `BookEnded`."""

    book: Book
    position: int  # 1-based, in the library's order
    count: int
    plan: Plan
    warnings: tuple[str, ...] = ()  # the manuscript's and the plan's


@dataclass(frozen=True)
class BookEnded:
    """The book's events are over; `error` is what ended it early (its finished work is saved)."""

    book: Book
    error: LlasaError | None = None


@dataclass(frozen=True)
class BookSkipped:
    """The book was not worked on: it is `UP_TO_DATE` (`status` says how it stands), or the
    run was stopped before it (the reason)."""

    book: Book
    reason: str
    status: JobStatus | None = None

    @property
    def up_to_date(self) -> bool:
        return self.reason == UP_TO_DATE


@dataclass(frozen=True)
class BookFailed:
    """The book could not be started: its manuscript cannot be read or planned."""

    book: Book
    error: LlasaError


LibraryEvent = BookStarted | BookEnded | BookSkipped | BookFailed | Event


# --- which books ------------------------------------------------------------


def is_library(specs: Sequence[str]) -> bool:
    """Whether the FILE arguments name a library: more than one, a folder, or a glob pattern.
    One manuscript file (or a path that does not exist) is an ordinary single-book run."""
    if len(specs) != 1:
        return len(specs) > 1
    path = Path(specs[0])
    return path.is_dir() or (not path.exists() and _is_pattern(specs[0]))


def _is_pattern(spec: str) -> bool:
    return any(character in GLOB_CHARACTERS for character in spec)


def find_manuscripts(specs: Sequence[str]) -> list[Path]:
    """The manuscripts the arguments name, in order: a file as given, a folder's manuscripts
    (.txt, .md, .markdown, .epub, not in subfolders) by name, a glob pattern's matches by name.
    A file named twice counts once; an argument that names nothing is an InputNotFoundError."""
    found: dict[Path, Path] = {}
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MANUSCRIPT_SUFFIXES)
            if not matches:
                raise InputNotFoundError(f"no manuscripts (.txt, .md, .epub) in the folder {spec}")
        elif path.exists() or not _is_pattern(spec):
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
            if not matches:
                raise InputNotFoundError(f"no manuscript matches {spec}")
        for match in matches:
            found.setdefault(match.resolve(), match)
    return list(found.values())


def book_slug(manuscript: Path) -> str:
    """The book's folder name in the library: its file name folded to `[a-z0-9-]` (as chapter
    files are named), or BOOK_SLUG_FALLBACK for a name with no such letter."""
    title = manuscript.stem.replace("_", " ")
    folded = unicodedata.normalize("NFKD", title.casefold()).encode("ascii", "ignore").decode("ascii")
    if not any(character.isalnum() for character in folded):
        return BOOK_SLUG_FALLBACK
    return chapter_slug(1, title, 1).split("-", 1)[1]


def library_books(template: RunRequest, specs: Sequence[str]) -> list[Book]:
    """One `Book` per manuscript: `template` with its source and `OUTPUT/<slug>` as its output
    (`template.output` is the library's folder). Two manuscripts with one slug (`a.txt`, `a.md`)
    would share a folder: InvalidOptionError, as for options that cannot apply to many books."""
    _check_library(template, specs)
    books: dict[str, Book] = {}
    for manuscript in find_manuscripts(specs):
        slug = book_slug(manuscript)
        if slug in books:
            raise InvalidOptionError(
                f"{books[slug].source} and {manuscript} would both go into {Path(template.output) / slug}; rename one"
            )
        request = dataclasses.replace(template, source=str(manuscript), output=str(Path(template.output) / slug))
        books[slug] = Book(slug, request)
    return list(books.values())


def _check_library(template: RunRequest, specs: Sequence[str]) -> None:
    if not template.output or template.output == STDOUT:
        raise InvalidOptionError("several manuscripts need -o FOLDER: each book goes into FOLDER/<book-slug>/")
    if STDIN_SOURCE in specs or template.inline_text is not None:
        raise InvalidOptionError("a library is made of manuscript files; - (standard input) and --text are one book")
    if template.work_dir is not None:
        raise InvalidOptionError("--work-dir names one job; each book of a library keeps its job in its own folder")
    if "title" in template.metadata:
        raise InvalidOptionError("--title would give every book of the library the same title")


# --- is a book finished? ----------------------------------------------------


def finished_and_unchanged(request: RunRequest, manuscript: Manuscript, plan: Plan) -> JobStatus | None:
    """The book's job status when a rerun would change nothing: the job recorded this manuscript
    and these options, no input file (voice clip or stored voice, cast, cover) changed since its
    last run began, every position holds the text it was synthesised from, every segment has its
    codes and every output file is recorded and present. None when any of that is not so (or
    cannot be told without loading a model: a cast's characters speak with voices read then);
    the book is then run, which redoes only what changed. Opens the store read-only."""
    folder = work_dir_of(request)
    if folder is None or not (folder / DB_NAME).is_file() or any(s.voice is not None for s in plan.segments):
        return None
    try:
        with JobStore.open(folder, read_only=True) as store:
            job = store.job()
            if job is None or not _same_job(job.options, request, manuscript):
                return None
            if any(_changed_since(path, job.updated) for path in _input_files(request, manuscript)):
                return None
            status = store.status()
            if status.finished < status.total or not _same_positions(store, plan):
                return None
            return status if _outputs_present(store, request, manuscript, plan) else None
    except LlasaError:  # a store this version cannot read: the run reports it properly
        return None


def _same_job(recorded: dict[str, Any], request: RunRequest, manuscript: Manuscript) -> bool:
    if recorded.get("manuscript") != manuscript.text or recorded.get("is_markdown") != manuscript.is_markdown:
        return False
    return "request" in recorded and _comparable(recorded["request"]) == _comparable(request.to_json())


def _comparable(request_json: dict[str, Any]) -> Any:
    """A recorded or new request without what differs between runs that make the same book."""
    plain = json.loads(json.dumps(request_json))  # tuples and lists alike
    for name in _PLACE_FIELDS:
        plain.pop(name, None)
    for name in _ENGINE_RUNTIME_FIELDS:
        plain.get("engine", {}).pop(name, None)
    plain.get("metadata", {}).pop("cover", None)  # the job keeps a copy; its file is checked by date
    return plain


def _input_files(request: RunRequest, manuscript: Manuscript) -> list[Path]:
    """Files the book is made from besides the manuscript, read when the run starts."""
    files: list[Path] = []
    if request.voice is not None:
        clip = Path(request.voice).expanduser()
        files.append(clip if clip.exists() else _stored_voice_path(request.voice))
    if request.cast is not None:
        files.append(Path(request.cast))
    cover = book_metadata(request, manuscript).cover
    if cover is not None:
        files.append(Path(cover))
    return files


def _stored_voice_path(name: str) -> Path:
    from ..voices.store import VoiceStore

    try:
        return VoiceStore().path_of(name)
    except LlasaError:
        return Path(name)  # not a voice name: missing, so the book is run and the error reported


def _changed_since(path: Path, stamp: float) -> bool:
    try:
        return path.stat().st_mtime >= stamp
    except OSError:
        return True


def _same_positions(store: JobStore, plan: Plan) -> bool:
    """Every position of the plan (with the review's text edits) is the one the job recorded."""
    recorded = [(r.chapter, r.index, r.text) for r in store.plan_records()]
    current = apply_text_overrides(plan, store.text_overrides())
    return recorded == [(s.chapter, s.index, s.text) for s in current.segments]


def _outputs_present(store: JobStore, request: RunRequest, manuscript: Manuscript, plan: Plan) -> bool:
    sink = open_sink(request, manuscript)
    for chapter in plan.chapters:
        if store.output_digest(output_name(store, sink.destination(chapter))) is None or not sink.exists(chapter):
            return False
    book = sink.close()  # the audiobook the chapters are gathered into (m4b), if any
    if book is None:
        return True
    return store.output_digest(output_name(store, book.path)) is not None and all(p.is_file() for p in book.files)


# --- working the books ------------------------------------------------------


def synthesize_library(
    books: Sequence[Book],
    *,
    skip_current: bool = True,
    stop_reason: Callable[[], str | None] = lambda: None,
    seconds_left: Callable[[], float | None] = lambda: None,
    warn: Warn = lambda message: None,
    load: Load | None = None,
) -> Iterator[LibraryEvent]:
    """Work the books in order with one set of models, loaded when the first book needs them
    (`load`: how; by default `load_here`, on this machine) and released at the end. `skip_current`: skip
    books that are finished and unchanged (a library); without it every book is run (one book
    spread over several workers, exactly as a plain `synth`)."""
    models = _Models(load or load_here, warn)
    try:
        for position, book in enumerate(books, 1):
            yield from _book(book, position, len(books), models, skip_current, stop_reason, seconds_left, warn)
    finally:
        models.close()


def load_here(request: RunRequest, voices: Sequence[VoiceSpec], warn: Warn) -> LoadedModels:
    """Check that every model the book needs is here (one error naming all that are missing),
    then load the speech models on this machine."""
    check_models(request, voices)
    return load_models(request, warn)


class _Models:
    """The library's models: loaded for the first book that needs them, then kept."""

    def __init__(self, load: Load, warn: Warn) -> None:
        self._load = load
        self._warn = warn
        self.loaded: LoadedModels | None = None

    def get(self, request: RunRequest, voices: Sequence[VoiceSpec]) -> LoadedModels:
        if self.loaded is None:
            self.loaded = self._load(request, voices, self._warn)
        return self.loaded

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.close()


def _book(
    book: Book,
    position: int,
    count: int,
    models: _Models,
    skip_current: bool,
    stop_reason: Callable[[], str | None],
    seconds_left: Callable[[], float | None],
    warn: Warn,
) -> Iterator[LibraryEvent]:
    """One book's events: skipped, failed to start, or started and ended."""
    if (reason := stop_reason()) is not None:
        yield BookSkipped(book, reason)
        return
    try:
        manuscript = read_input(book.request)
        plan = load_plan(book.request, manuscript)
        voices = voice_specs(book.request, manuscript, plan, warn)
    except LlasaError as exc:
        yield BookFailed(book, exc)
        return
    if skip_current and (status := finished_and_unchanged(book.request, manuscript, plan)) is not None:
        yield BookSkipped(book, UP_TO_DATE, status)
        return
    loaded = models.get(book.request, voices)  # a missing model would fail every book: it ends the library
    yield BookStarted(book, position, count, plan, (*manuscript.warnings, *plan.warnings))
    try:
        with open_job(book.request, manuscript) as store:
            yield from run_book(
                book.request, manuscript, plan, loaded, voices, store,
                stop_reason=stop_reason, seconds_left=seconds_left, warn=warn,
            )  # fmt: skip
    except LlasaError as exc:
        yield BookEnded(book, exc)
        return
    yield BookEnded(book)
