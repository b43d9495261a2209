"""Stopping cleanly: first Ctrl-C (or SIGTERM) or a spent time budget ends the run after
the batch in flight is saved; a second signal stops at once (finished work is already
safe in the job store).

The signal handler only records the signal: Python runs it between two bytecodes of whatever
the main thread is doing (an import, a Rich redraw, a database transaction), so it must not
print or import anything. The caller's loop asks `take_notice` and tells the user.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType

from .budget import BUDGET_SPENT

SECONDS_PER_MINUTE = 60.0
# What the user is told once the first signal arrives: only a terminal's user presses Ctrl-C.
STOP_NOTICES = {
    signal.SIGINT: "stopping after the batch in flight is saved; press Ctrl-C again to stop now",
    signal.SIGTERM: "SIGTERM: stopping after the batch in flight is saved (a second SIGTERM stops at once)",
}


class StopController:
    def __init__(self, max_minutes: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + max_minutes * SECONDS_PER_MINUTE if max_minutes is not None else None
        self.signalled: str | None = None
        self._signal: int | None = None
        self._noticed = False
        self._previous: dict[int, object] = {}

    def stop_reason(self) -> str | None:
        """Why the run should stop now, or None to carry on."""
        if self.signalled:
            return self.signalled
        if self.deadline is not None and self.clock() >= self.deadline:
            return BUDGET_SPENT
        return None

    def seconds_left(self) -> float | None:
        """Seconds until the time budget is spent (negative once it is); None without a budget."""
        return None if self.deadline is None else self.deadline - self.clock()

    def take_notice(self) -> str | None:
        """Once after the first signal, the line to show the user; otherwise None."""
        if self._signal is None or self._noticed:
            return None
        self._noticed = True
        return STOP_NOTICES[signal.Signals(self._signal)]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            raise KeyboardInterrupt
        self._signal = signum
        self.signalled = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"

    def __enter__(self) -> StopController:
        for signum in STOP_NOTICES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
