"""Where a run records its work, and who it is among the runs sharing the job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..job.store import JobStore

DEFAULT_LEASE_SECONDS = 900.0
POLL_SECONDS = 2.0


@dataclass
class RunContext:
    """Where a run records its work, and who it is among the runs sharing the job."""

    store: JobStore
    worker: str
    stop_reason: Callable[[], str | None] = lambda: None
    # Seconds left of the time budget (None: none); batches are sized to end within it (budget.py).
    seconds_left: Callable[[], float | None] = lambda: None
    clock: Callable[[], float] = time.monotonic  # the clock `seconds_left` and batch timings are read on
    log: Callable[[str], None] = lambda message: None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_seconds: float = POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep
    # Whether the run holding a lease still lives; a dead one's claims are released at once
    # instead of waiting out the lease (a resume right after a crash must not wait 15 minutes).
    worker_alive: Callable[[str], bool] = lambda worker: True
    keys: dict[str, str] = field(default_factory=dict)  # segment id -> segment key
