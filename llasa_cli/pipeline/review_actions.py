"""What a listener does from the review page: accept a flagged take, queue a redo, edit a
segment's text and queue a redo; and the previous takes kept so a redo can be heard beside them.

Everything is recorded in the job store (who and when included); the queue is worked by
`llasa redo OUTDIR --queued` (`job_commands.prepare_queued_redo`). A previous take is cut from its
chapter file by its span into `JOB/review/takes/`, so it can still be heard once the chapter is
written again with the new take.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Sequence
from pathlib import Path

from ..audio.export import atomic_write_bytes
from ..constants import MAX_EDITED_TEXT_CHARS
from ..errors import InvalidOptionError
from ..job.records import PlanRecord
from ..job.review_state import Position, PreviousTake
from ..job.store import JobStore
from ..text.controls import without_terminal_controls
from .review_page import chapter_files

TAKES_FOLDER = Path("review") / "takes"  # inside the job folder


def reviewer() -> str:
    """Who is reviewing, as recorded with an acceptance or a queued redo: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a bare container)
        return "unknown"


def accept_segment(folder: Path, segment_id: str, who: str) -> None:
    """Accept a flagged segment's take: it stops counting as flagged."""
    with JobStore.open(folder) as store:
        position = _position(store, segment_id)
        if store.accept(position.record.key, who) is None:
            raise InvalidOptionError(f"segment {segment_id} is not flagged: there is nothing to accept")


def queue_redo(folder: Path, segment_id: str, who: str, text: str | None = None) -> None:
    """Queue the segment for `llasa redo OUTDIR --queued`; with `text`, it will say that instead of
    the manuscript's line (kept in the job while the line is unchanged; the manuscript's own text
    removes the override)."""
    with JobStore.open(folder) as store:
        position = _position(store, segment_id)
        if text is not None:
            original = _manuscript_text(store, position)
            store.set_text_override(position.chapter, position.index, original, _edited(text), who)
        store.queue_redo(position.chapter, position.index, position.record.key, who)


def keep_previous_takes(store: JobStore, positions: Sequence[Position]) -> list[Position]:
    """Cut each position's current take out of its chapter file into the job folder, before a redo
    replaces it; returns the positions kept (those placed in a chapter file that still holds them)."""
    spans = store.spans()
    files = chapter_files(store)
    by_position = {(p.chapter, p.index): p.record.key for p in store.plan_records()}
    takes = store.takes(list(by_position.values()))
    kept: list[Position] = []
    for where in positions:
        span, key = spans.get(where), by_position.get(where)
        if span is None or key is None or (span.key, span.take) != (key, takes[key]) or span.chapter not in files:
            continue
        name = TAKES_FOLDER / f"{where[0]}.{where[1]}-{key[:12]}-take{span.take}.wav"
        if _cut(files[span.chapter], span.start, span.end, store.folder / name):
            store.record_previous_take(PreviousTake(*where, key, span.take, name.as_posix(), time.time()))
            kept.append(where)
    return kept


def _cut(chapter_file: Path, start: float, end: float, destination: Path) -> bool:
    """Write the span of the chapter file as a WAV file; False when the file cannot be read."""
    import soundfile

    from ..audio.audio_io import write_wav_bytes

    try:
        rate = soundfile.info(str(chapter_file)).samplerate
        audio, _ = soundfile.read(str(chapter_file), start=round(start * rate), stop=round(end * rate),
                                  dtype="float32", always_2d=False)  # fmt: skip
    except (OSError, RuntimeError, ValueError):  # soundfile.LibsndfileError is a RuntimeError
        return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(destination, write_wav_bytes(audio, rate))
    return True


def _position(store: JobStore, segment_id: str) -> PlanRecord:
    chapter, _, index = segment_id.partition(".")
    for position in store.plan_records():
        if f"{position.chapter}.{position.index}" == segment_id:
            return position
    raise InvalidOptionError(f"no segment {segment_id} in this job" if chapter and index else
                             f"a segment id is CHAPTER.INDEX, such as 3.12, not {segment_id!r}")  # fmt: skip


def _manuscript_text(store: JobStore, position: PlanRecord) -> str:
    """What the manuscript has the position say: its text, unless an override is speaking there."""
    for override in store.text_overrides():
        if (override.chapter, override.index) == (position.chapter, position.index) and override.text == position.text:
            return override.original
    return position.text


def _edited(text: str) -> str:
    cleaned = " ".join(without_terminal_controls(text).split())
    if not cleaned:
        raise InvalidOptionError("the edited text is empty: queue a plain redo, or give the words to say")
    if len(cleaned) > MAX_EDITED_TEXT_CHARS:
        raise InvalidOptionError(
            f"the edited text has {len(cleaned)} characters; a segment takes at most {MAX_EDITED_TEXT_CHARS}"
        )
    return cleaned
