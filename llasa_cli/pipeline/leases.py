"""Keeping a run's claims alive while it works on them.

A run claims segments under a lease (`JobStore.claim`); another run may take a segment whose
lease has run out. A batch on a slow device can outlast the lease, so while the run holds keys a
background thread renews their leases every `lease_seconds / RENEWALS_PER_LEASE` seconds. A key
the store no longer lets this run hold (another run took it over) is logged, not fought for: the
job store's first-result-wins rule keeps its codes correct either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ..errors import LlasaError
from ..job.store import JobStore

# Renewing three times a lease leaves two renewals of slack for a busy disk or a locked database.
RENEWALS_PER_LEASE = 3
RENEWER_THREAD_NAME = "llasa-leases"


class LeaseKeeper:
    """Renews the leases of the keys this run holds (`hold` / `release`) until it is closed."""

    def __init__(
        self, store: JobStore, worker: str, lease_seconds: float, log: Callable[[str], None] = lambda message: None
    ) -> None:
        self.store = store
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.log = log
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, keys: Iterable[str]) -> None:
        """Keep these keys' leases alive from now on."""
        with self._lock:
            self._held.update(keys)
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_until_closed, name=RENEWER_THREAD_NAME, daemon=True)
            self._thread.start()

    def release(self, keys: Iterable[str]) -> None:
        """Stop renewing these keys (they are recorded, or given up)."""
        with self._lock:
            self._held.difference_update(keys)

    @property
    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _renew_until_closed(self) -> None:
        while not self._stop.wait(self.lease_seconds / RENEWALS_PER_LEASE):
            self._renew()

    def _renew(self) -> None:
        """One round of renewals."""
        keys = sorted(self.held)
        if not keys:
            return
        try:
            kept = set(self.store.renew(keys, self.worker, self.lease_seconds))
            gone = [key for key in keys if key not in kept]
            finished = self.store.done_keys(gone) if gone else set()
        except LlasaError as exc:  # a locked or full database: the next round tries again
            self.log(f"could not renew leases: {exc}")
            return
        self.release(gone)  # recorded meanwhile, or taken over by another run: nothing left to keep alive
        taken = [key for key in gone if key not in finished]
        if taken:
            self.log(f"another run took over {' '.join(taken)}")
