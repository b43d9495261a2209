"""The job database's schema, migrations, opening checks and SQLite error mapping.

Apart from `store.py` so the store's operations read on their own. Nothing here is
specific to one run; `JobStore.open` calls `connect`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..errors import JobBusyError, JobStoreError, LlasaError, OutputError

DB_NAME = "job.sqlite3"
APPLICATION_ID = 0x4C4C5341  # "LLSA" in the SQLite header
MAGIC = "llasa-cli job store"
DEFAULT_BUSY_TIMEOUT_S = 30.0
SQLITE_HEADER = b"SQLite format 3\x00"
# Damage SQLite reads without complaint but Python cannot decode: text that is not UTF-8, JSON that
# does not parse.
CORRUPT_DATA_ERRORS = (UnicodeDecodeError, json.JSONDecodeError)


def _outputs_from_chapters(conn: sqlite3.Connection, path: Path) -> None:
    """v5: the chapter files recorded with absolute paths become outputs named relative to the
    job folder. What they held was not kept, so they are never removed as stale."""
    folder = path.parent.resolve()
    for chapter, digest, written, updated in conn.execute("SELECT * FROM chapters").fetchall():
        name, kind = Path(os.path.relpath(written, folder)).as_posix(), Path(written).suffix.lstrip(".")
        row = (name, kind, chapter, digest, updated)
        conn.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, NULL, ?)", row)


Step = str | Callable[[sqlite3.Connection, Path], None]
# MIGRATIONS[i] takes a store from schema version i to i + 1, inside one transaction.
MIGRATIONS: list[tuple[Step, ...]] = [
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE job (
            id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL,
            options TEXT NOT NULL, model TEXT NOT NULL, codec TEXT NOT NULL,
            created REAL NOT NULL, updated REAL NOT NULL)""",
        """CREATE TABLE voice (
            id INTEGER PRIMARY KEY CHECK (id = 1), codes BLOB NOT NULL, text TEXT NOT NULL,
            updated REAL NOT NULL)""",
        """CREATE TABLE segments (
            key TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'failed')),
            codes BLOB, n_codes INTEGER, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            scores TEXT, timings TEXT, hit_cap INTEGER, worker TEXT, lease_until REAL,
            done_by TEXT, updated REAL)""",
        """CREATE TABLE positions (
            chapter INTEGER NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL,
            text TEXT NOT NULL, est_seconds REAL NOT NULL, PRIMARY KEY (chapter, idx))""",
        "CREATE INDEX positions_key ON positions (key)",
        """CREATE TABLE chapters (
            chapter INTEGER PRIMARY KEY, digest TEXT NOT NULL, path TEXT NOT NULL,
            updated REAL NOT NULL)""",
    ),
    # v2: `take` counts `redo`s of a segment, so a redone segment samples with fresh seeds.
    ("ALTER TABLE segments ADD COLUMN take INTEGER NOT NULL DEFAULT 0",),
    # v3: `flagged` marks a finished segment that failed verification on every attempt (it was a
    # key of the scores before), so status counts it as failed.
    (
        "ALTER TABLE segments ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0",
        "UPDATE segments SET flagged = 1 WHERE json_extract(scores, '$.flagged') = 1",
    ),
    # v4, for `llasa review`: where each position's audio sits in its chapter file as last written
    # (and which take it holds), flagged takes a listener accepted, redos queued from the review page,
    # per-position text overrides, and the previous takes kept to be heard beside a redo.
    (
        """CREATE TABLE spans (
            chapter INTEGER NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, take INTEGER NOT NULL,
            start_s REAL NOT NULL, end_s REAL NOT NULL, PRIMARY KEY (chapter, idx))""",
        """CREATE TABLE accepted (
            key TEXT NOT NULL, take INTEGER NOT NULL, who TEXT NOT NULL, at REAL NOT NULL,
            failures TEXT NOT NULL, PRIMARY KEY (key, take))""",
        """CREATE TABLE redo_queue (
            chapter INTEGER NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, who TEXT NOT NULL,
            at REAL NOT NULL, PRIMARY KEY (chapter, idx))""",
        """CREATE TABLE text_overrides (
            chapter INTEGER NOT NULL, idx INTEGER NOT NULL, original TEXT NOT NULL, text TEXT NOT NULL,
            who TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (chapter, idx))""",
        """CREATE TABLE previous_takes (
            chapter INTEGER NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, take INTEGER NOT NULL,
            path TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (chapter, idx))""",
    ),
    # v5: every file a job writes is recorded by its name relative to the job folder (a moved job
    # keeps working), the format of the audio it is or goes with (`kind`), its chapter (NULL: the
    # m4b and its subtitles), what it was made of (`digest`, per file, not per chapter, so an m4b's
    # chapter WAVs and a wav run's are told apart) and the SHA-256 of what was written.
    (
        """CREATE TABLE outputs (
            name TEXT PRIMARY KEY, kind TEXT NOT NULL, chapter INTEGER, digest TEXT NOT NULL,
            sha256 TEXT, updated REAL NOT NULL)""",
        _outputs_from_chapters,
        "DROP TABLE chapters",
    ),
    # v6: who speaks each position: a character of the cast, NULL for the narrator.
    ("ALTER TABLE positions ADD COLUMN voice TEXT",),
    # v7: the characters' voices the last run spoke with (the narrator's is `voice`), so `redo` keys
    # their segments as that run did.
    (
        """CREATE TABLE characters (
            name TEXT PRIMARY KEY, codes BLOB NOT NULL, text TEXT NOT NULL, updated REAL NOT NULL)""",
    ),
]


# --- error mapping ----------------------------------------------------------


def map_sqlite_error(exc: sqlite3.Error, path: Path, busy_timeout_s: float) -> LlasaError:
    """One-line domain error for a SQLite failure on the job database at `path`."""
    text = str(exc).lower()
    if "full" in text:
        return OutputError(f"cannot write job database {path}: disk is full")
    if "readonly" in text or "read-only" in text:
        return OutputError(f"cannot write job database {path}: the file or its folder is read-only")
    if "unable to open" in text:
        return OutputError(f"cannot open job database {path}: its folder is missing or read-only")
    if "disk i/o" in text:
        return OutputError(f"cannot write job database {path}: disk I/O error")
    if "locked" in text or "busy" in text:
        return JobBusyError(
            f"job database {path} is locked by another llasa run (waited {busy_timeout_s:g} s); try again later"
        )
    if any(sign in text for sign in ("not a database", "malformed", "encrypted", "could not decode")):
        return corrupt_error(path)
    return JobStoreError(f"job database {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def corrupt_error(path: Path) -> JobStoreError:
    return JobStoreError(f"{path} is not a usable llasa-cli job database (corrupt or not SQLite)")


# --- opening and migrating --------------------------------------------------


def check_header(path: Path) -> None:
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise OutputError(f"cannot read job database {path}: {exc.strerror or exc}") from exc
    if header != SQLITE_HEADER:
        raise JobStoreError(
            f"{path} is not a llasa-cli job database (not an SQLite file); move it or pick another work dir"
        )


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """0 for an empty database, else our schema version; refuses foreign or newer files."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id == 0 and not tables:
        return 0
    foreign = JobStoreError(f"{path} is an SQLite file but not a llasa-cli job database; pick another work dir")
    if app_id != APPLICATION_ID or "meta" not in tables:
        raise foreign
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("magic") != MAGIC or not str(meta.get("schema_version", "")).isdigit():
        raise foreign
    version = int(meta["schema_version"])
    if version > len(MIGRATIONS):
        raise JobStoreError(
            f"{path} was written by a newer llasa-cli (schema {version}, this one knows {len(MIGRATIONS)}); "
            "upgrade llasa-cli"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations in order, one transaction each, safe against racing openers."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _schema_version(conn, path)
            if version >= len(MIGRATIONS):
                conn.execute("COMMIT")
                return
            for step in MIGRATIONS[version]:
                if callable(step):
                    step(conn, path)
                else:
                    conn.execute(step)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('magic', ?)", (MAGIC,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version + 1),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def connect(path: Path, busy_timeout_s: float, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the job database at `path`, migrated to the current schema.

    `read_only` (for commands that only read, so they work in a read-only folder) opens it
    without writing, unless its schema is older and must be migrated first."""
    if read_only and (conn := _connect_read_only(path, busy_timeout_s)) is not None:
        return conn
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _schema_version(conn, path)  # validate before changing anything in a foreign file
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise JobStoreError(f"job database {path}: cannot switch to WAL journal mode")
        conn.execute("PRAGMA synchronous = FULL")  # a power cut must not lose a committed segment
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(path: Path, busy_timeout_s: float) -> sqlite3.Connection | None:
    """Open without writing (`mode=ro`); where SQLite cannot create the WAL index beside the file
    (a read-only folder), as an immutable file. None when the schema is older than this version's."""
    last_error: sqlite3.Error | None = None
    for flags in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?{flags}",
            uri=True,
            timeout=busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            version = _schema_version(conn, path)
        except sqlite3.OperationalError as exc:
            conn.close()
            if "unable to open" not in str(exc).lower():
                raise
            last_error = exc
            continue
        except BaseException:
            conn.close()
            raise
        if version < len(MIGRATIONS):
            conn.close()
            return None
        return conn
    assert last_error is not None
    raise last_error
