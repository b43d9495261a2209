"""A job's folder: where it lives, the store and log in it, and who is working on it.

The folder (`OUTDIR/.llasa` unless `--work-dir` says otherwise) holds the job database, which
records the request and manuscript of the last `synth`, and `llasa.log`. Runs sharing a job tell
each other apart by a worker id of host, process and a random part.

A job folder is self-contained: the recorded request names its output folder relative to the job
folder, and the m4b cover is copied into it, so a moved or copied job keeps working. Commands on
a job act on the folders they are given (`stored_request(store, outdir)`), never on where the
job was first run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputNotFoundError, JobStoreError, OutputError
from ..job.keys import manuscript_fingerprint
from ..job.schema import DB_NAME
from ..job.store import JobStore
from ..text.cast import Cast, CastMember
from ..text.manuscript import Manuscript
from .request import STDOUT, RunRequest, book_metadata

WORK_DIR_NAME = ".llasa"
LOG_NAME = "llasa.log"
M4B_CHAPTERS = "chapters"  # the m4b's chapter files, inside the job folder
COVER_STEM = "cover"  # the job's copy of the m4b cover image: cover.jpg or cover.png
# A recorded request whose output folder is named relative to the job folder (older jobs recorded
# it as typed, relative to wherever `synth` ran).
PATHS_JOB_RELATIVE = "job-relative"


def work_dir_of(request: RunRequest) -> Path | None:
    """Where the job lives; None for a stream without --work-dir (a throwaway job)."""
    if request.work_dir:
        return Path(request.work_dir)
    if request.output == STDOUT:
        return None
    return Path(request.output) / WORK_DIR_NAME


def find_job_folder(outdir: Path, work_dir: Path | None = None) -> Path:
    """The job folder of a finished or running `synth` into `outdir` (or at `work_dir`)."""
    folder = work_dir or outdir / WORK_DIR_NAME
    if not (folder / DB_NAME).is_file():
        raise InputNotFoundError(f"no llasa job in {folder} (run `llasa synth FILE -o {outdir}` first)")
    return folder


@contextmanager
def open_job(request: RunRequest, manuscript: Manuscript) -> Iterator[JobStore]:
    """The job store for this request, recording the request so `redo` and `stitch` can repeat it."""
    folder = work_dir_of(request)
    throwaway = tempfile.TemporaryDirectory(prefix="llasa-job-") if folder is None else None
    with throwaway or contextlib.nullcontext(str(folder)) as where, JobStore.open(Path(where)) as store:
        store.set_job(
            manuscript_fingerprint(manuscript.text),
            {
                "request": _recorded_form(request, manuscript, store.folder).to_json(),
                "paths": PATHS_JOB_RELATIVE,
                "manuscript": manuscript.text,
                "is_markdown": manuscript.is_markdown,
                "front_matter": {k: v for k, v in manuscript.front_matter.items() if k != "cover"},
                "markup": manuscript.markup,
                "cast": None if manuscript.cast is None else _recorded_cast(manuscript.cast),
            },
            request.engine.model,
            request.engine.codec,
        )
        yield store


def _recorded_form(request: RunRequest, manuscript: Manuscript, folder: Path) -> RunRequest:
    """The request as the job records it: its output folder relative to the job folder, and the
    book's cover (from the flags or the front matter) as the job's own copy."""
    if request.output == STDOUT:
        return request
    metadata = dict(request.metadata)
    cover = book_metadata(request, manuscript).cover
    if cover is not None:
        metadata["cover"] = _keep_cover(Path(cover), folder)
    output = Path(os.path.relpath(Path(request.output).resolve(), folder.resolve())).as_posix()
    return dataclasses.replace(request, output=output, work_dir=None, metadata=metadata)


def _keep_cover(cover: Path, folder: Path) -> str:
    """Copy the cover image into the job folder; its name there (or, when it cannot be read,
    its absolute path, for the m4b writer to report)."""
    kept = folder / f"{COVER_STEM}{cover.suffix.lower()}"
    if not cover.is_file():
        return str(cover.absolute())
    if cover.resolve() != kept.resolve():
        try:
            shutil.copyfile(cover, kept)
        except OSError as exc:
            raise OutputError(
                f"cannot copy the cover image into the job folder {folder}: {exc.strerror or exc}"
            ) from exc
    return kept.name


def stored_request(store: JobStore, outdir: Path | None = None) -> tuple[RunRequest, Manuscript]:
    """The request and manuscript the job's last `synth` ran with, writing to `outdir` (default:
    the output folder recorded relative to the job folder) with the job in the store's folder."""
    job = store.job()
    if job is None or "request" not in job.options:
        raise JobStoreError(f"{store.path}: no synth run was recorded in this job")
    request = RunRequest.from_json(job.options["request"])
    relative = job.options.get("paths") == PATHS_JOB_RELATIVE
    cast = job.options.get("cast")
    manuscript = Manuscript(
        name=request.source,
        text=job.options["manuscript"],
        is_markdown=job.options["is_markdown"],
        front_matter=job.options.get("front_matter", {}),
        markup=job.options.get("markup", True),
        cast=None if cast is None else Cast(tuple(CastMember(*member) for member in cast["members"]), cast["source"]),
    )
    return _placed(request, store.folder, outdir, relative), manuscript


def _recorded_cast(cast: Cast) -> dict[str, Any]:
    """The front matter's cast, which the recorded manuscript text no longer holds."""
    return {"source": cast.source, "members": [[m.character, m.voice, m.text] for m in cast.members]}


def _placed(request: RunRequest, folder: Path, outdir: Path | None, relative: bool) -> RunRequest:
    """A recorded request with its paths where the job is now."""
    if request.output == STDOUT:
        return request
    metadata = dict(request.metadata)
    if relative and "cover" in metadata and not Path(metadata["cover"]).is_absolute():
        metadata["cover"] = str(folder / metadata["cover"])
    output = outdir or _recorded_output(request, folder, relative)
    return dataclasses.replace(request, output=str(output), work_dir=str(folder), metadata=metadata)


def _recorded_output(request: RunRequest, folder: Path, relative: bool) -> Path:
    if relative:
        return folder / request.output
    # Recorded before paths were kept relative: a default job folder sits in its output folder.
    return folder.parent if folder.name == WORK_DIR_NAME else Path(request.output)


class RunLog:
    """Appends timestamped lines to the work folder's log, flushed at once so a crash keeps them."""

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / LOG_NAME if folder else None

    def __call__(self, message: str) -> None:
        if self.path is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} pid={os.getpid()} {message}\n")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_alive(worker: str) -> bool:
    """False only when the worker ran on this host and its process is gone; other hosts count as alive."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(int(pid_text))


def _zombie(pid: int) -> bool:
    """Whether the process has ended but its parent has not reaped it yet (a run killed by SIGKILL
    under a harness): os.kill(pid, 0) still succeeds on it. Read from /proc; False without one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()  # after "pid (command name)", which may hold spaces
    return bool(state) and state[0] in ("Z", "X")
