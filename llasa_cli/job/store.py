"""The resumable job database: one SQLite file per work folder.

A segment is finished only once `record_done` has committed its codes (yt-dlp archive
style), so a crash, SIGKILL or power cut at any other moment loses at most the work in
flight. Several runs may share one store at once: `claim` hands out keys under leases
inside `BEGIN IMMEDIATE` transactions, and a dead worker's lease simply expires.

Segments are keyed by `keys.segment_key` (a digest of everything that changes their codes),
not by position, so an edited manuscript reuses every unchanged segment. Codes are
stored as little-endian uint16 blobs, options and scores as JSON; nothing is pickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..constants import CODEBOOK_SIZE, CODES_PER_SECOND
from ..engine.protocols import VoicePrompt
from ..errors import OutputError
from .records import ChapterStatus, JobInfo, JobStatus, OutputRecord, PlanRecord, PlanRow, SegmentRecord
from .review_state import Acceptance, Position, PreviousTake, QueuedRedo, SegmentSpan, TextOverride
from .schema import (
    CORRUPT_DATA_ERRORS,
    DB_NAME,
    DEFAULT_BUSY_TIMEOUT_S,
    check_header,
    connect,
    corrupt_error,
    map_sqlite_error,
)

CODE_DTYPE = np.dtype("<u2")
ENSURE_ROW = "INSERT OR IGNORE INTO segments (key, updated) VALUES (?, ?)"
SQL_CHUNK = 500  # stays under SQLite's smallest host-parameter limit (999)


# --- pure helpers -----------------------------------------------------------


def encode_codes(codes: np.ndarray) -> bytes:
    """Codec codes as a compact little-endian uint16 blob; refuses anything else."""
    array = np.asarray(codes)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"codes must be a 1-D integer array, not {array.dtype} of shape {array.shape}")
    if array.size and (int(array.min()) < 0 or int(array.max()) >= CODEBOOK_SIZE):
        raise ValueError(f"codes must lie in 0..{CODEBOOK_SIZE - 1}")
    return array.astype(CODE_DTYPE).tobytes()


def decode_codes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=CODE_DTYPE).astype(np.int64)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), SQL_CHUNK):
        yield items[start : start + SQL_CHUNK]


def _unique(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def plain_json(value: Any) -> Any:
    """JSON fallback for NumPy scalars and arrays (scores are often NumPy floats)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=plain_json)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# The columns of a segment row that make a SegmentRecord (table alias `s`), in its field order.
_RECORD_COLUMNS = (
    "s.key, s.status, s.attempts, s.last_error, s.scores, s.timings, s.hit_cap, s.flagged, s.n_codes, s.worker, "
    "s.lease_until"
)


def _record(row: Sequence[Any]) -> SegmentRecord:
    key, status, attempts, last_error, scores, timings, hit_cap, flagged, n_codes, worker, lease_until = row
    return SegmentRecord(
        key=key,
        status=status,
        attempts=attempts,
        last_error=last_error,
        scores=_loads(scores),
        timings=_loads(timings),
        hit_cap=None if hit_cap is None else bool(hit_cap),
        flagged=bool(flagged),
        n_codes=n_codes,
        worker=worker,
        lease_until=lease_until,
    )


F = TypeVar("F", bound=Callable[..., Any])


def _db_op(method: F) -> F:
    """Serialise a store method across threads and turn SQLite errors into domain errors."""

    @functools.wraps(method)
    def wrapper(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                raise map_sqlite_error(exc, self.path, self._busy_timeout_s) from exc
            except CORRUPT_DATA_ERRORS as exc:
                raise corrupt_error(self.path) from exc

    return wrapper  # type: ignore[return-value]


# --- the store --------------------------------------------------------------


class JobStore:
    """A work folder's job database. Open with `JobStore.open(work_dir)`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
        self._conn = conn
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls, work_dir: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, read_only: bool = False
    ) -> JobStore:
        """The store in `work_dir`, created if missing. `read_only`: for commands that only read
        (`status`, `report`), which then work in a read-only folder; its store refuses writes."""
        work_dir = Path(work_dir)
        path = work_dir / DB_NAME
        if not read_only:
            try:
                work_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create work dir {work_dir}: {exc.strerror or exc}") from exc
        check_header(path)
        try:
            conn = connect(path, busy_timeout_s, read_only=read_only)
        except sqlite3.DatabaseError as exc:
            raise map_sqlite_error(exc, path, busy_timeout_s) from exc
        except CORRUPT_DATA_ERRORS as exc:
            raise corrupt_error(path) from exc
        return cls(conn, path, busy_timeout_s)

    @property
    def folder(self) -> Path:
        """The job folder: output names are recorded relative to it."""
        return self.path.parent

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock, contextlib.closing(self._conn):
            self._rollback()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # the error that led here says more
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _rows_for_keys(self, sql: str, keys: Sequence[str], *params: Any) -> list[Any]:
        """Rows of `sql` (its `{keys}` a placeholder list, then `params`) over the keys, in SQL-sized chunks."""
        rows: list[Any] = []
        for chunk in _chunks(_unique(keys)):
            marks = ",".join("?" * len(chunk))
            rows.extend(self._conn.execute(sql.format(keys=marks), (*chunk, *params)))
        return rows

    def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: committed whole or rolled back whole."""
        self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    # --- job metadata and narrator ---

    @_db_op
    def set_job(self, fingerprint: str, options: dict[str, Any], model: str, codec: str) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                """INSERT INTO job VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
                   fingerprint = excluded.fingerprint, options = excluded.options,
                   model = excluded.model, codec = excluded.codec, updated = excluded.updated""",
                (fingerprint, _dumps(options), model, codec, now, now),
            )

    @_db_op
    def job(self) -> JobInfo | None:
        row = self._row("SELECT fingerprint, options, model, codec, created, updated FROM job WHERE id = 1")
        return None if row is None else JobInfo(row[0], json.loads(row[1]), *row[2:])

    @_db_op
    def save_voice(self, voice: VoicePrompt) -> None:
        """Fix the narrator; a resumed run loads it back so every chapter keeps one voice."""
        blob = encode_codes(voice.codes)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO voice VALUES (1, ?, ?, ?)", (blob, voice.text, time.time()))

    @_db_op
    def load_voice(self) -> VoicePrompt | None:
        row = self._row("SELECT codes, text FROM voice WHERE id = 1")
        return None if row is None else VoicePrompt(codes=decode_codes(row[0]), text=row[1])

    @_db_op
    def save_characters(self, voices: Mapping[str, VoicePrompt]) -> None:
        """The characters' voices of this run, in place of the last run's."""
        rows = [(name, encode_codes(voice.codes), voice.text, time.time()) for name, voice in voices.items()]
        with self._tx() as db:
            db.execute("DELETE FROM characters")
            db.executemany("INSERT INTO characters VALUES (?, ?, ?, ?)", rows)

    @_db_op
    def load_characters(self) -> dict[str, VoicePrompt]:
        rows = self._conn.execute("SELECT name, codes, text FROM characters ORDER BY name").fetchall()
        return {name: VoicePrompt(codes=decode_codes(codes), text=text) for name, codes, text in rows}

    # --- plan ---

    @_db_op
    def sync_plan(self, rows: Sequence[PlanRow]) -> None:
        """Replace the positions wholesale; segment rows (and their codes) survive plan edits."""
        seen: set[tuple[int, int]] = set()
        for row in rows:
            if (row.chapter, row.index) in seen:
                raise ValueError(f"plan has two segments at position {row.chapter}.{row.index}")
            seen.add((row.chapter, row.index))
        with self._tx() as db:
            db.execute("DELETE FROM positions")
            db.executemany(
                "INSERT INTO positions (chapter, idx, key, text, est_seconds, voice) VALUES (?, ?, ?, ?, ?, ?)",
                [(int(r.chapter), int(r.index), r.key, r.text, float(r.est_seconds), r.voice) for r in rows],
            )
            db.executemany(ENSURE_ROW, [(key, time.time()) for key in _unique([r.key for r in rows])])

    # --- claims and leases ---

    @_db_op
    def claim(
        self,
        keys: Sequence[str],
        worker: str,
        lease_seconds: float,
        now: float | None = None,
        *,
        limit: int | None = None,
    ) -> list[str]:
        """Atomically lease the keys that are not done and not leased live by another worker.

        Returns the claimed keys in the given order (at most `limit`). A key this worker
        already holds is claimed again with a fresh lease.
        """
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {lease_seconds}")
        now = time.time() if now is None else now
        claimed: list[str] = []
        with self._tx() as db:
            for key in _unique(keys):
                if limit is not None and len(claimed) >= limit:
                    break
                db.execute(ENSURE_ROW, (key, now))
                cursor = db.execute(
                    """UPDATE segments SET worker = ?, lease_until = ?
                       WHERE key = ? AND status != 'done'
                         AND (worker IS NULL OR worker = ? OR lease_until IS NULL OR lease_until <= ?)""",
                    (worker, now + lease_seconds, key, worker, now),
                )
                if cursor.rowcount:
                    claimed.append(key)
        return claimed

    @_db_op
    def renew(self, keys: Sequence[str], worker: str, lease_seconds: float, now: float | None = None) -> list[str]:
        """Extend this worker's leases; returns the keys it still holds (lost ones are left out)."""
        now = time.time() if now is None else now
        held: list[str] = []
        with self._tx() as db:
            for key in _unique(keys):
                cursor = db.execute(
                    "UPDATE segments SET lease_until = ? WHERE key = ? AND worker = ? AND status != 'done'",
                    (now + lease_seconds, key, worker),
                )
                if cursor.rowcount:
                    held.append(key)
        return held

    @_db_op
    def holders(self, keys: Sequence[str], now: float | None = None) -> dict[str, str]:
        """key -> worker, for the given keys that are leased live and not done."""
        now = time.time() if now is None else now
        found: dict[str, str] = dict(
            self._rows_for_keys(
                "SELECT key, worker FROM segments WHERE key IN ({keys}) AND status != 'done'"
                " AND worker IS NOT NULL AND lease_until > ?",
                keys,
                now,
            )
        )
        return found

    @_db_op
    def release(self, keys: Sequence[str], worker: str) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE segments SET worker = NULL, lease_until = NULL WHERE key = ? AND worker = ?",
                [(key, worker) for key in _unique(keys)],
            )

    # --- results ---

    @_db_op
    def record_done(
        self,
        key: str,
        codes: np.ndarray,
        *,
        attempts: int,
        scores: dict[str, Any],
        timings: dict[str, Any],
        hit_cap: bool,
        worker: str,
        flagged: bool = False,
    ) -> bool:
        """Store a finished segment and clear its lease, in one transaction.

        `flagged`: it failed verification on every attempt (its best attempt is stored and
        stitched, and it counts as failed). Returns False (and changes nothing) when the key was
        already done: the first result wins, so a segment is never finished twice. `attempts` adds
        to the failures already counted.
        """
        blob, now = encode_codes(codes), time.time()
        n_codes, hit = len(blob) // CODE_DTYPE.itemsize, int(bool(hit_cap))
        with self._tx() as db:
            db.execute(ENSURE_ROW, (key, now))
            cursor = db.execute(
                """UPDATE segments SET status = 'done', codes = ?, n_codes = ?, attempts = attempts + ?,
                       last_error = NULL, scores = ?, timings = ?, hit_cap = ?, flagged = ?, worker = NULL,
                       lease_until = NULL, done_by = ?, updated = ?
                   WHERE key = ? AND status != 'done'""",
                (blob, n_codes, int(attempts), _dumps(scores), _dumps(timings), hit, int(flagged), worker, now, key),
            )
            return cursor.rowcount == 1

    @_db_op
    def record_failure(self, key: str, error: str, worker: str) -> None:
        """A segment that could not be synthesised: count the attempt, keep its error and release
        this worker's lease. It counts as failed until a later run finishes it."""
        with self._tx() as db:
            db.execute(ENSURE_ROW, (key, time.time()))
            db.execute(
                """UPDATE segments SET status = 'failed', attempts = attempts + 1, last_error = ?, updated = ?,
                       lease_until = CASE WHEN worker = ? THEN NULL ELSE lease_until END,
                       worker = CASE WHEN worker = ? THEN NULL ELSE worker END
                   WHERE key = ? AND status != 'done'""",
                (error, time.time(), worker, worker, key),
            )

    @_db_op
    def codes(self, key: str) -> np.ndarray | None:
        row = self._row("SELECT codes FROM segments WHERE key = ? AND status = 'done'", (key,))
        return None if row is None else decode_codes(row[0])

    @_db_op
    def done_keys(self, keys: Sequence[str]) -> set[str]:
        rows = self._rows_for_keys("SELECT key FROM segments WHERE status = 'done' AND key IN ({keys})", keys)
        return {row[0] for row in rows}

    @_db_op
    def flagged_keys(self, keys: Sequence[str]) -> set[str]:
        """The given keys that are finished but failed verification on every attempt."""
        rows = self._rows_for_keys(
            "SELECT key FROM segments WHERE status = 'done' AND flagged AND key IN ({keys})", keys
        )
        return {row[0] for row in rows}

    @_db_op
    def segment(self, key: str) -> SegmentRecord | None:
        row = self._row(f"SELECT {_RECORD_COLUMNS} FROM segments s WHERE s.key = ?", (key,))
        return None if row is None else _record(row)

    @_db_op
    def takes(self, keys: Sequence[str]) -> dict[str, int]:
        """How often each key was redone (0 for keys never redone or unknown)."""
        found = dict(self._rows_for_keys("SELECT key, take FROM segments WHERE key IN ({keys})", keys))
        return {key: int(found.get(key, 0)) for key in keys}

    @_db_op
    def reset(self, keys: Sequence[str]) -> None:
        """Forget the results of these keys (for `redo`): they become pending again, as a new take."""
        with self._tx() as db:
            db.executemany(
                """UPDATE segments SET status = 'pending', take = take + 1, codes = NULL, n_codes = NULL, attempts = 0,
                       last_error = NULL, scores = NULL, timings = NULL, hit_cap = NULL, flagged = 0, worker = NULL,
                       lease_until = NULL, done_by = NULL, updated = ? WHERE key = ?""",
                [(time.time(), key) for key in _unique(keys)],
            )

    # --- progress and chapter outputs ---

    @_db_op
    def status(self) -> JobStatus:
        """Counts over the current plan's positions, in total and per chapter. A flagged segment
        (failed verification) or one that could not be synthesised counts as failed, not done."""
        with self._tx(immediate=False) as db:
            rows = db.execute(
                """SELECT p.chapter, COUNT(*),
                       COALESCE(SUM(s.status = 'done' AND NOT s.flagged), 0),
                       COALESCE(SUM(s.status = 'done' AND s.flagged), 0), COALESCE(SUM(s.status = 'failed'), 0),
                       COALESCE(SUM(CASE WHEN s.status = 'done' THEN s.n_codes ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN s.status = 'done' THEN 0 ELSE p.est_seconds END), 0.0)
                   FROM positions p LEFT JOIN segments s ON s.key = p.key
                   GROUP BY p.chapter ORDER BY p.chapter"""
            ).fetchall()
        return JobStatus.of(
            tuple(
                ChapterStatus(
                    chapter=chapter,
                    total=total,
                    done=done,
                    failed=flagged + errored,
                    pending=total - done - flagged - errored,
                    finished=done + flagged,
                    done_seconds=codes / CODES_PER_SECOND,
                    pending_est_seconds=float(est),
                )
                for chapter, total, done, flagged, errored, codes, est in rows
            )
        )

    @_db_op
    def plan_records(self) -> list[PlanRecord]:
        """Every position of the current plan with its text and segment record, in order."""
        rows = self._conn.execute(
            f"""SELECT p.chapter, p.idx, p.text, p.voice, {_RECORD_COLUMNS}
               FROM positions p JOIN segments s ON s.key = p.key ORDER BY p.chapter, p.idx"""
        ).fetchall()
        return [PlanRecord(chapter, index, text, _record(rest), voice) for chapter, index, text, voice, *rest in rows]

    @_db_op
    def work_rate(self) -> tuple[float, float]:
        """(processing seconds, audio seconds) over the finished segments of the plan, for ETAs."""
        row = self._row(
            """SELECT COALESCE(SUM(json_extract(s.timings, '$.seconds')), 0.0), COALESCE(SUM(s.n_codes), 0)
               FROM positions p JOIN segments s ON s.key = p.key WHERE s.status = 'done'"""
        )
        return float(row[0]), float(row[1]) / CODES_PER_SECOND

    # --- output files ---

    @_db_op
    def record_outputs(self, outputs: Sequence[OutputRecord]) -> None:
        """Remember files this job wrote (names relative to the job folder), replacing older records."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (o.name, o.kind, None if o.chapter is None else int(o.chapter), o.digest, o.sha256, now)
                    for o in outputs
                ],
            )

    @_db_op
    def output_digest(self, name: str) -> str | None:
        """What the file `name` was made of when this job last wrote it (None: never written)."""
        row = self._row("SELECT digest FROM outputs WHERE name = ?", (name,))
        return None if row is None else row[0]

    @_db_op
    def outputs(self) -> list[OutputRecord]:
        """Every file this job wrote and has not forgotten, by name."""
        rows = self._conn.execute("SELECT name, kind, chapter, digest, sha256 FROM outputs ORDER BY name").fetchall()
        return [OutputRecord(*row) for row in rows]

    @_db_op
    def forget_outputs(self, names: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM outputs WHERE name = ?", [(name,) for name in _unique(names)])

    # --- review: spans, accepted takes, the redo queue, text overrides, previous takes -----------
    # What `llasa review` reads and writes (records in review_state.py, tables in schema v4).

    @_db_op
    def record_spans(self, chapter: int, spans: Sequence[SegmentSpan]) -> None:
        """Where each position's audio sits in the chapter file just written; replaces the chapter's
        spans. The take recorded is the store's current take of each key (the codes stitched)."""
        with self._tx() as db:
            db.execute("DELETE FROM spans WHERE chapter = ?", (int(chapter),))
            db.executemany(
                """INSERT INTO spans VALUES (?, ?, ?, COALESCE((SELECT take FROM segments WHERE key = ?), 0), ?, ?)""",
                [(int(chapter), int(s.index), s.key, s.key, float(s.start), float(s.end)) for s in spans],
            )

    @_db_op
    def spans(self) -> dict[Position, SegmentSpan]:
        rows = self._conn.execute("SELECT chapter, idx, key, start_s, end_s, take FROM spans").fetchall()
        return {(row[0], row[1]): SegmentSpan(*row) for row in rows}

    @_db_op
    def accept(self, key: str, who: str, now: float | None = None) -> Acceptance | None:
        """Accept a flagged take: it stops counting as flagged (status, report, --strict), and who
        accepted it when is recorded. None (nothing changes) unless the key is done and flagged."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute("SELECT take, scores FROM segments WHERE key = ? AND status = 'done' AND flagged",
                             (key,)).fetchone()  # fmt: skip
            if row is None:
                return None
            failures = tuple((_loads(row[1]) or {}).get("failures", ()))
            db.execute("INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?, ?)",
                       (key, row[0], who, now, _dumps(list(failures))))  # fmt: skip
            db.execute("UPDATE segments SET flagged = 0 WHERE key = ?", (key,))
        return Acceptance(key, row[0], who, now, failures)

    @_db_op
    def acceptances(self) -> dict[str, Acceptance]:
        """key -> the acceptance of its current take (a redone segment's earlier acceptance lapses)."""
        rows = self._conn.execute(
            """SELECT a.key, a.take, a.who, a.at, a.failures FROM accepted a
               JOIN segments s ON s.key = a.key AND s.take = a.take"""
        ).fetchall()
        return {key: Acceptance(key, take, who, at, tuple(json.loads(f))) for key, take, who, at, f in rows}

    @_db_op
    def queue_redo(self, chapter: int, index: int, key: str, who: str, now: float | None = None) -> QueuedRedo:
        """Ask for the position to be synthesised again by `llasa redo OUTDIR --queued`."""
        queued = QueuedRedo(int(chapter), int(index), key, who, time.time() if now is None else now)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO redo_queue VALUES (?, ?, ?, ?, ?)", dataclasses.astuple(queued))
        return queued

    @_db_op
    def redo_queue(self) -> list[QueuedRedo]:
        rows = self._conn.execute("SELECT chapter, idx, key, who, at FROM redo_queue ORDER BY chapter, idx")
        return [QueuedRedo(*row) for row in rows]

    @_db_op
    def dequeue(self, positions: Sequence[Position]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM redo_queue WHERE chapter = ? AND idx = ?", list(positions))

    @_db_op
    def set_text_override(
        self, chapter: int, index: int, original: str, text: str, who: str, now: float | None = None
    ) -> TextOverride | None:
        """Make the position say `text` instead of the manuscript's `original`; the same text as the
        manuscript removes the override (None)."""
        override = TextOverride(int(chapter), int(index), original, text, who, time.time() if now is None else now)
        with self._tx() as db:
            db.execute("DELETE FROM text_overrides WHERE chapter = ? AND idx = ?", (override.chapter, override.index))
            if text == original:
                return None
            db.execute("INSERT INTO text_overrides VALUES (?, ?, ?, ?, ?, ?)", dataclasses.astuple(override))
        return override

    @_db_op
    def text_overrides(self) -> list[TextOverride]:
        rows = self._conn.execute(
            "SELECT chapter, idx, original, text, who, at FROM text_overrides ORDER BY chapter, idx"
        )
        return [TextOverride(*row) for row in rows]

    @_db_op
    def record_previous_take(self, take: PreviousTake) -> None:
        """The take a redo replaces, kept as a file in the job folder (one per position: the latest)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO previous_takes VALUES (?, ?, ?, ?, ?, ?)", dataclasses.astuple(take))

    @_db_op
    def previous_takes(self) -> dict[Position, PreviousTake]:
        rows = self._conn.execute("SELECT chapter, idx, key, take, path, at FROM previous_takes").fetchall()
        return {(row[0], row[1]): PreviousTake(*row) for row in rows}
