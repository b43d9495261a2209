"""`llasa review`: one self-contained page to listen to a finished book and judge its segments.

Everything comes from the job store: each segment's text, its stored verdict (`Verdict.from_dict`,
laid against the job's thresholds by `verdict_checks` as `llasa report` does), its attempts and
search statistics, and its span in its chapter file (recorded when the chapter was written). A
segment plays from its chapter file through a media fragment (`chapter.wav#t=start,end`), so no
model is needed and no audio is copied. The page is rendered by Jinja2 (templates/review.html,
with its script and style inlined), carries its data as JSON and draws one page of segments at a
time, so a book of thousands of segments opens at once; audio loads only when played.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..audio.export import atomic_write_bytes
from ..job.records import PlanRecord
from ..job.review_state import Acceptance, PreviousTake, SegmentSpan, TextOverride
from ..job.store import JobStore
from ..options import EXPORT_FORMATS, TextOptions, VerifyOptions
from ..verify.textcompare import word_diff
from ..verify.verdict import FAILURE_HELP, CheckRow, Verdict, failure_limits, verdict_checks
from .job_folder import stored_request
from .report import job_thresholds

REVIEW_PAGE = "review.html"
PAGE_SIZE = 50  # segments drawn at a time
SERVED_PREFIX = "_job/"  # how the server names files of a job folder that lies outside the output folder
CHAPTER_AUDIO = frozenset(EXPORT_FORMATS) - {"m4b"}  # an m4b job's chapters are WAV files in its job folder

# What a segment is, for the page's filters; "flagged first" orders by this rank.
FLAGGED, FAILED, SUSPECT, PENDING, ACCEPTED, OK = "flagged", "failed", "suspect", "pending", "accepted", "ok"
RANK = {FLAGGED: 0, FAILED: 0, SUSPECT: 1, PENDING: 2, ACCEPTED: 3, OK: 4}

Link = Callable[[Path], str | None]


@dataclass(frozen=True)
class ReviewJob:
    """A job to review: its job folder (the store) and the output folder the page goes in."""

    folder: Path
    outdir: Path

    @property
    def page_path(self) -> Path:
        return self.outdir / REVIEW_PAGE

    def file_link(self, path: Path) -> str:
        """A URL for `path` relative to the page (it may climb out of the output folder: a page
        opened from disk reads what the user can read)."""
        return quote(Path(os.path.relpath(path, self.outdir)).as_posix())

    def served_link(self, path: Path) -> str | None:
        """A URL for `path` as the review server names it; None for a file outside both folders."""
        resolved = path.resolve()
        for root, prefix in ((self.outdir.resolve(), ""), (self.folder.resolve(), SERVED_PREFIX)):
            if resolved.is_relative_to(root):
                return prefix + quote(resolved.relative_to(root).as_posix())
        return None


def write_review_page(job: ReviewJob) -> Path:
    """Write OUTDIR/review.html (atomically) for opening from disk; returns its path."""
    page = render_page(review_data(job, job.file_link, book_info(job)), served=False)
    return atomic_write_bytes(job.page_path, page.encode("utf-8"))


def render_page(data: dict[str, Any], served: bool) -> str:
    """The page: `data` (from `review_data`) as JSON inside the template; `served` turns on the
    accept and redo buttons, which talk to the review server."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=PackageLoader("llasa_cli.pipeline", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    return environment.get_template(REVIEW_PAGE).render(data=data | {"served": served}, page_size=PAGE_SIZE)


@dataclass(frozen=True)
class BookInfo:
    """The book's title, language and chapter titles: they need the manuscript planned again
    (seconds for a long book), so the review server reads them once."""

    title: str
    lang: str
    chapter_titles: dict[int, str]


def book_info(job: ReviewJob) -> BookInfo:
    """The book's title, language and chapter titles, from the manuscript the job recorded."""
    with JobStore.open(job.folder, read_only=True) as store:
        recorded = store.job()
        if recorded is None or "request" not in recorded.options:
            return BookInfo(job.outdir.name, TextOptions().lang, {})
        request, manuscript = stored_request(store)
    from ..text.planner import build_plan
    from .request import book_metadata

    plan = build_plan(manuscript, request.text)
    title = book_metadata(request, manuscript).title or job.outdir.name
    return BookInfo(title, request.text.lang, {c.number: c.title for c in plan.chapters if c.title})


def review_data(job: ReviewJob, link: Link, book: BookInfo) -> dict[str, Any]:
    """Chapters, thresholds and every segment of the job's current plan, as plain data."""
    thresholds, facts, positions, takes = _read(job)
    segments = [_segment(p, takes[p.record.key], facts, thresholds, link) for p in positions]
    return {
        "title": book.title,
        "lang": book.lang,
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "thresholds": _thresholds(thresholds),
        "failure_types": sorted({name for s in segments for name in s["fail"]}),
        "chapters": _chapters(segments, facts.chapter_files, book.chapter_titles, link),
        "segments": segments,
    }


def segment_entries(job: ReviewJob, ids: Sequence[str], link: Link) -> list[dict[str, Any]]:
    """The page's entries for the given segment ids, read afresh (for the review server)."""
    wanted = set(ids)
    thresholds, facts, positions, takes = _read(job)
    chosen = [p for p in positions if f"{p.chapter}.{p.index}" in wanted]
    return [_segment(p, takes[p.record.key], facts, thresholds, link) for p in chosen]


def _read(job: ReviewJob) -> tuple[VerifyOptions, _StoredFacts, list[PlanRecord], dict[str, int]]:
    with JobStore.open(job.folder, read_only=True) as store:
        positions = store.plan_records()
        takes = store.takes([p.record.key for p in positions])
        return job_thresholds(store), _StoredFacts.read(store, job.folder), positions, takes


@dataclass(frozen=True)
class _StoredFacts:
    """What the store knows besides the segments themselves, read once for the whole page."""

    spans: dict[tuple[int, int], SegmentSpan]
    acceptances: dict[str, Acceptance]
    queued: set[tuple[int, int]]
    overrides: dict[tuple[int, int], TextOverride]
    previous: dict[tuple[int, int], PreviousTake]
    chapter_files: dict[int, Path]
    folder: Path

    @classmethod
    def read(cls, store: JobStore, folder: Path) -> _StoredFacts:
        return cls(
            spans=store.spans(),
            acceptances=store.acceptances(),
            queued={(q.chapter, q.index) for q in store.redo_queue()},
            overrides={(o.chapter, o.index): o for o in store.text_overrides()},
            previous=store.previous_takes(),
            chapter_files=chapter_files(store),
            folder=folder,
        )


def chapter_files(store: JobStore) -> dict[int, Path]:
    """chapter number -> its audio file as last written (an m4b job's chapter WAVs; not subtitles)."""
    return {
        output.chapter: (store.folder / output.name).resolve()
        for output in store.outputs()
        if output.chapter is not None and Path(output.name).suffix.lstrip(".") in CHAPTER_AUDIO
    }


def _segment(
    position: PlanRecord, take: int, facts: _StoredFacts, options: VerifyOptions, link: Link
) -> dict[str, Any]:
    record, where = position.record, (position.chapter, position.index)
    verdict = Verdict.from_dict(record.scores) if record.scores else None
    acceptance = facts.acceptances.get(record.key)
    override = facts.overrides.get(where)
    timings = record.timings or {}
    return {
        "id": f"{position.chapter}.{position.index}",
        "ch": position.chapter,
        "i": position.index,
        "text": position.text,
        "voice": position.voice,  # the character who speaks it; None: the narrator
        "orig": override.original if override is not None and override.text == position.text else None,
        "cat": _category(position, acceptance),
        "queued": where in facts.queued,
        "fail": list(verdict.failures) if verdict is not None and record.flagged else [],
        "heard": None if verdict is None else verdict.transcript,
        "diff": _diff(position.text, verdict),
        "checks": [] if verdict is None else [_check(row) for row in verdict_checks(verdict, options)],
        "score": None if verdict is None else round(verdict.score, 3),
        "attempts": record.attempts,
        "take": take,
        "search": timings.get("search"),
        "cap": bool(record.hit_cap),
        "empty": record.status == "done" and not record.n_codes,
        "error": record.last_error,
        "span": _span(facts.spans.get(where), record.key, take, record.status),
        "prev": _previous(facts.previous.get(where), record.key, take, facts.folder, link),
        "accepted": None if acceptance is None else {"who": acceptance.who, "at": _when(acceptance.at)},
    }


def _category(position: PlanRecord, acceptance: Acceptance | None) -> str:
    record = position.record
    if record.status == "failed":
        return FAILED
    if record.status != "done":
        return PENDING
    if record.flagged:
        return FLAGGED
    if acceptance is not None:
        return ACCEPTED
    if record.hit_cap or not record.n_codes:
        return SUSPECT  # what synth's summary names as needing a listen: cut off, babbling, or silent
    return OK


def _diff(text: str, verdict: Verdict | None) -> list[list[str]] | None:
    if verdict is None or verdict.transcript is None:
        return None
    return [[part.tag, part.text, part.heard] for part in word_diff(text, verdict.transcript)]


def _check(row: CheckRow) -> list[Any]:
    return [row.check, round(row.value, 4), row.comparison, row.limit, row.passed]


def _span(span: SegmentSpan | None, key: str, take: int, status: str) -> list[float] | None:
    """The segment's place in its chapter file, when the file holds this very take."""
    if span is None or status != "done" or span.key != key or span.take != take:
        return None
    return [round(span.start, 3), round(span.end, 3)]


def _previous(previous: PreviousTake | None, key: str, take: int, folder: Path, link: Link) -> dict[str, Any] | None:
    """The take a redo replaced, while it differs from the one the segment holds now."""
    if previous is None or (previous.key, previous.take) == (key, take):
        return None
    path = folder / previous.path
    source = link(path) if path.is_file() else None
    return None if source is None else {"src": source, "take": previous.take, "at": _when(previous.at)}


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _thresholds(options: VerifyOptions) -> list[dict[str, Any]]:
    return [
        {"check": name, "metric": metric, "comparison": comparison, "limit": limit, "help": FAILURE_HELP.get(name, "")}
        for name, (metric, comparison, limit) in failure_limits(options).items()
    ]


def _chapters(
    segments: Sequence[dict[str, Any]], files: dict[int, Path], titles: dict[int, str], link: Link
) -> list[dict[str, Any]]:
    numbers = sorted({s["ch"] for s in segments})
    return [
        {
            "number": number,
            "title": titles.get(number) or f"Chapter {number}",
            "src": link(files[number]) if number in files and files[number].is_file() else None,
            "segments": sum(1 for s in segments if s["ch"] == number),
            "flagged": sum(1 for s in segments if s["ch"] == number and RANK[s["cat"]] == 0),
        }
        for number in numbers
    ]
