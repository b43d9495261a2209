"""The files a job writes: recorded in its store, named relative to the job folder, so a moved or
copied job keeps knowing them; rebuilt only when out of date; and retired when the manuscript no
longer has them.

Each recorded file keeps the format of the audio it is or goes with (`kind`), what it was made of
(a digest of the codes and settings, per file, so an m4b's chapter files and a wav run's never
stand for each other) and the SHA-256 of what was written. When a run completes, `finish_outputs`
writes the audiobook if the sink gathers one (m4b) and is out of date, then removes the files of
the same format in the same folder as this run's outputs that the manuscript no longer has
(chapters renumbered by an inserted one): only files the job wrote, still exactly as written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from ..audio.sinks import ChapterSink
from ..job.records import OutputRecord
from ..job.store import JobStore
from ..text.plan import Plan
from .events import BookWritten

HASH_CHUNK_BYTES = 1 << 20


def output_name(store: JobStore, path: str | Path) -> str:
    """`path` named relative to the job folder ('/'-separated), as the store records it."""
    return Path(os.path.relpath(Path(path).resolve(), store.folder.resolve())).as_posix()


def output_path(store: JobStore, name: str) -> Path:
    """Where the recorded file `name` is now (wherever the job folder has moved)."""
    return store.folder / name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def record_files(store: JobStore, files: Iterable[Path], kind: str, chapter: int | None, digest: str) -> None:
    """Remember files just written from `digest`'s inputs, with what they hold."""
    store.record_outputs(
        [OutputRecord(output_name(store, path), kind, chapter, digest, file_sha256(Path(path))) for path in files]
    )


def finish_outputs(
    plan: Plan, sink: ChapterSink, store: JobStore, log: Callable[[str], None], force: bool = False
) -> Iterator[BookWritten]:
    """A complete run's last step: close the sink, write its audiobook if out of date (or `force`),
    and retire the files of this format that the plan no longer has."""
    book = sink.close()
    current = [output_name(store, sink.destination(chapter)) for chapter in plan.chapters]
    if book is not None:
        name = output_name(store, book.path)
        current.append(name)
        made_of = [store.output_digest(output_name(store, path)) for path in book.chapter_files]
        digest = hashlib.sha256(json.dumps([made_of, book.fingerprint]).encode()).hexdigest()
        fresh = store.output_digest(name) == digest and all(path.is_file() for path in book.files)
        subtitles = tuple(str(path) for path in book.subtitles)
        if fresh and not force:
            yield BookWritten(str(book.path), len(book.chapter_files), book.audio_seconds(), subtitles, unchanged=True)
        else:
            written = book.write()
            record_files(store, written.files, book.kind, None, digest)
            log(f"book -> {written.path}")
            yield BookWritten(str(written.path), written.chapters, written.audio_seconds, subtitles)
    retire_stale(store, current, log)


def retire_stale(store: JobStore, current: list[str], log: Callable[[str], None]) -> list[Path]:
    """Remove the recorded files whose stem no current output has (`current`: names of this run's
    chapter files and book), among those of the same kind in the same folder; returns them.

    A file is removed only if it still holds what the job wrote; one changed since is forgotten
    and left alone. So is one whose content was never recorded."""
    records = store.outputs()
    by_name = {record.name: record for record in records}
    places = {(by_name[name].kind, _folder(store, name)) for name in current if name in by_name}
    stems = {_stem(name) for name in current}
    stale = [r for r in records if (r.kind, _folder(store, r.name)) in places and _stem(r.name) not in stems]
    removed: list[Path] = []
    forget: list[str] = []
    for record in stale:
        path = output_path(store, record.name)
        if record.sha256 is not None and path.is_file() and file_sha256(path) == record.sha256:
            path.unlink(missing_ok=True)  # another run finishing now may have removed it first
            removed.append(path)
            log(f"removed {record.name}: the manuscript no longer has it")
        forget.append(record.name)
    if forget:
        store.forget_outputs(forget)
    return removed


def _folder(store: JobStore, name: str) -> Path:
    return output_path(store, name).resolve().parent


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_name(path.name.split(".", 1)[0]))
