"""What can be done with a job folder after (or while) `synth` runs: its status, what verification
found, rebuilding its chapter files, and choosing segments to synthesise again.

Each function takes the job folder (`job_folder.find_job_folder`) and returns plain data for the
CLI to show; none loads the language model. `stitch_job` and `prepare_redo` act on the output
folder they are given, wherever the job was first run (a job folder moves with its output).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputNotFoundError, InvalidOptionError
from ..job.keys import keys_for
from ..job.review_state import apply_text_overrides
from ..job.store import JobStore
from ..text.manuscript import Manuscript
from ..text.plan import Plan, Segment
from ..text.planner import build_plan
from .chapter_writer import write_chapter
from .events import BookWritten, ChapterHeld, ChapterWritten
from .job_folder import RunLog, stored_request
from .outputs import finish_outputs
from .request import RunRequest
from .review_actions import keep_previous_takes
from .run import open_sink
from .run_context import RunContext

STITCH_WORKER = "stitch"


def job_status(folder: Path) -> dict[str, Any]:
    """Progress per chapter: done, failed, pending, minutes of audio, and an ETA from the work so far."""
    with JobStore.open(folder, read_only=True) as store:
        job = store.status()
        work_seconds, audio_seconds = store.work_rate()
    rtf = work_seconds / audio_seconds if audio_seconds else None
    eta = job.pending_est_seconds * rtf if rtf is not None else None
    return {
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "pending": job.pending,
        "done_audio_seconds": round(job.done_seconds, 2),
        "pending_est_seconds": round(job.pending_est_seconds, 2),
        "real_time_factor": None if rtf is None else round(rtf, 4),
        "eta_seconds": None if eta is None else round(eta, 1),
        "chapters": [
            {
                "chapter": c.chapter,
                "total": c.total,
                "done": c.done,
                "failed": c.failed,
                "pending": c.pending,
                "done_audio_seconds": round(c.done_seconds, 2),
            }
            for c in job.chapters
        ],
    }


@dataclass(frozen=True)
class StitchResult:
    """The chapters `stitch_job` wrote, those it could not because segments are missing, and the
    audiobook (m4b) it rebuilt once every chapter was there, or that waits for the rest."""

    written: tuple[ChapterWritten, ...]
    unfinished: tuple[int, ...]
    book: BookWritten | None = None
    waiting_book: str | None = None


def stitch_job(
    folder: Path,
    outdir: Path,
    on_written: Callable[[ChapterWritten | BookWritten], None] = lambda written: None,
) -> StitchResult:
    """Rebuild every finished chapter file in `outdir` from stored codes (the codec loads; the LM
    does not), and the audiobook when the job makes one and every chapter is finished, telling
    `on_written` of each file as it is written."""
    from ..engine.devices import pick_device
    from ..engine.loading import load_codec

    with JobStore.open(folder) as store:
        request, manuscript, plan, keys = _stored_job(store, outdir)
        if not keys:
            raise InputNotFoundError(f"the job in {outdir} has no finished narrator yet: nothing to stitch")
        device, _ = pick_device(request.engine.device)
        codec = load_codec(request.engine.codec, device)
        context = RunContext(store=store, worker=STITCH_WORKER, keys=keys, log=RunLog(folder))
        sink = open_sink(request, manuscript)
        done = store.done_keys(list(context.keys.values()))
        written: list[ChapterWritten] = []
        unfinished: list[int] = []
        for chapter in plan.chapters:
            if all(context.keys[s.segment_id] in done for s in plan.segments_of(chapter.number)):
                chapter_written = write_chapter(plan, chapter, sink, context, codec, force=True)
                assert not isinstance(chapter_written, ChapterHeld)  # only --strict holds chapters back
                on_written(chapter_written)
                written.append(chapter_written)
            else:
                unfinished.append(chapter.number)
        if unfinished:
            waiting = sink.close()
            return StitchResult(
                tuple(written), tuple(unfinished), waiting_book=None if waiting is None else str(waiting.path)
            )
        book = None
        for book in finish_outputs(plan, sink, store, context.log, force=True):
            on_written(book)
    return StitchResult(tuple(written), tuple(unfinished), book)


@dataclass(frozen=True)
class Redo:
    """A job reset for `redo`: the request and manuscript to run again, and the segments chosen."""

    request: RunRequest
    manuscript: Manuscript
    plan: Plan
    segments: tuple[Segment, ...]


def prepare_redo(folder: Path, segment_ids: Sequence[str], chapters: Sequence[int], outdir: Path | None = None) -> Redo:
    """Forget the chosen segments' results (they become pending as a new take, with fresh seeds;
    the current takes are kept for `llasa review`); run the returned request through `synthesize`
    to speak them again and rebuild their chapters in `outdir` (default: the job's output folder,
    recorded relative to its job folder)."""
    if not segment_ids and not chapters:
        raise InvalidOptionError("redo needs --segment ID, --chapter N or --queued")
    with JobStore.open(folder) as store:
        request, manuscript, plan, keys = _stored_job(store, outdir)
        chosen = _choose(plan, segment_ids, chapters)
        keep_previous_takes(store, [(s.chapter, s.index) for s in chosen])
        store.reset([keys[s.segment_id] for s in chosen if s.segment_id in keys])
    if keys:  # the narrator is fixed: speak with the job's voice, not the clip it came from
        request = dataclasses.replace(request, voice=None, voice_text=None)
    return Redo(request, manuscript, plan, tuple(chosen))


def prepare_queued_redo(folder: Path, outdir: Path | None = None) -> Redo:
    """`prepare_redo` for the segments queued on the review page (`llasa review --serve`), emptying
    the queue. A segment queued with edited text has a new key already (its text override), so it
    is pending without a reset; the others become a new take. The current takes are kept to be
    heard beside the new ones."""
    with JobStore.open(folder) as store:
        request, manuscript, plan, keys = _stored_job(store, outdir)
        queued = {(q.chapter, q.index): q.key for q in store.redo_queue()}
        chosen = [s for s in plan.segments if (s.chapter, s.index) in queued]
        keep_previous_takes(store, list(queued))
        store.reset([keys[s.segment_id] for s in chosen if keys.get(s.segment_id) == queued[(s.chapter, s.index)]])
        store.dequeue(list(queued))
    if keys:  # the narrator is fixed: speak with the job's voice, as prepare_redo does
        request = dataclasses.replace(request, voice=None, voice_text=None)
    return Redo(request, manuscript, plan, tuple(chosen))


def _stored_job(store: JobStore, outdir: Path | None) -> tuple[RunRequest, Manuscript, Plan, dict[str, str]]:
    """The job's last request (writing to `outdir`), its manuscript and plan (with the review's text
    overrides), and its segment keys (empty until the narrator is fixed: a key includes the voice;
    the characters' segments are keyed with the voices the last run gave them)."""
    request, manuscript = stored_request(store, outdir)
    plan = apply_text_overrides(build_plan(manuscript, request.text), store.text_overrides())
    voice = store.load_voice()
    if voice is None:
        return request, manuscript, plan, {}
    characters = store.load_characters()
    # A character with no voice yet has had nothing spoken: no key of theirs to redo.
    voiced = tuple(s for s in plan.segments if s.voice is None or s.voice in characters)
    keyed = dataclasses.replace(plan, segments=voiced)
    keys = keys_for(keyed, request.engine, request.sampling, voice, request.search, characters)
    return request, manuscript, plan, keys


def _choose(plan: Plan, segment_ids: Sequence[str], chapters: Sequence[int]) -> list[Segment]:
    known = {s.segment_id for s in plan.segments}
    unknown = [i for i in segment_ids if i not in known]
    numbers = {c.number for c in plan.chapters}
    unknown += [str(n) for n in chapters if n not in numbers]
    if unknown:
        raise InvalidOptionError(f"no such segment or chapter in this job: {', '.join(unknown)} (see `llasa split`)")
    return [s for s in plan.segments if s.segment_id in segment_ids or s.chapter in chapters]
