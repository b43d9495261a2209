"""A job's folder: where it lives, the store and log in it, and who is working on it.

The folder (`OUTDIR/.llasa` unless `--work-dir` says otherwise) holds the job database, which
records the request and manuscript of the last `synth`, and `llasa.log`. Runs sharing a job tell
each other apart by a worker id of host, process and a random part.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputNotFoundError, JobStoreError
from ..job.keys import manuscript_fingerprint
from ..job.schema import DB_NAME
from ..job.store import JobStore
from ..text.manuscript import Manuscript
from .request import STDOUT, RunRequest

WORK_DIR_NAME = ".llasa"
LOG_NAME = "llasa.log"
M4B_CHAPTERS = "chapters"  # the m4b's chapter files, inside the job folder


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
            {"request": request.to_json(), "manuscript": manuscript.text, "is_markdown": manuscript.is_markdown},
            request.engine.model,
            request.engine.codec,
        )
        yield store


def stored_request(store: JobStore) -> tuple[RunRequest, Manuscript]:
    """The request and manuscript the job's last `synth` ran with."""
    job = store.job()
    if job is None or "request" not in job.options:
        raise JobStoreError(f"{store.path}: no synth run was recorded in this job")
    request = RunRequest.from_json(job.options["request"])
    manuscript = Manuscript(
        name=request.source,
        text=job.options["manuscript"],
        is_markdown=job.options["is_markdown"],
        front_matter=job.options.get("front_matter", {}),
    )
    return request, manuscript


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
