"""Fitting batches into a time budget (`--max-minutes`) from the pace the run has measured.

Stopping only once the budget is spent would let the batch in flight run past it by up to a whole
batch. So before a batch starts, the run asks `BatchPacer.fit` how many of its segments can end
in the time left: the pace is the wall time of the batches finished so far per second of
estimated speech (sorted by length, a chapter's later batches are longer). Near the end the batch
shrinks to what fits; when not even one segment fits, the pacer names the reason and the run
stops. Until a first batch is measured there is no pace, and the first batch starts whole.

The pace is proportional to the speech asked for, which is how a CPU behaves. A GPU takes about
as long for a smaller batch of similar segments, so a shrunken batch there may still overrun,
by at most the length of one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

BUDGET_SPENT = "time budget (--max-minutes) spent"
BUDGET_TOO_SHORT = "time budget (--max-minutes) too short for another batch"


class BatchPacer:
    """Measures batches (`finished`) and sizes the next one to the time left (`fit`).

    `seconds_left` gives the budget's remaining seconds (None: no budget); `clock` is the
    monotonic clock both are read on."""

    def __init__(self, seconds_left: Callable[[], float | None], clock: Callable[[], float]) -> None:
        self._seconds_left = seconds_left
        self.clock = clock
        self._speech = 0.0  # estimated speech seconds of the batches measured
        self._wall = 0.0  # wall seconds they took
        self._last_end: float | None = None
        self.stopped: str | None = None  # why the run must stop: not even one segment fits

    @property
    def seconds_per_speech_second(self) -> float | None:
        """The measured pace; None before any batch has finished."""
        return self._wall / self._speech if self._speech > 0 and self._wall > 0 else None

    def fit(self, est_seconds: Sequence[float]) -> int:
        """How many of these segments, from the first, the next batch may take."""
        left = self._seconds_left()
        pace = self.seconds_per_speech_second
        if left is None or pace is None:
            return len(est_seconds)
        count, expected = 0, 0.0
        for seconds in est_seconds:
            expected += seconds * pace
            if expected > left:
                break
            count += 1
        if count == 0 and est_seconds:
            self.stopped = BUDGET_TOO_SHORT
        return count

    def finished(self, started_at: float, est_seconds: Sequence[float]) -> None:
        """A batch begun at `started_at` (on `clock`) is done. Batches that overlap (one decoded
        while the next generates) count from the end of the one before, so time is never counted twice."""
        now = self.clock()
        begin = started_at if self._last_end is None else max(started_at, self._last_end)
        self._wall += max(0.0, now - begin)
        self._speech += sum(est_seconds)
        self._last_end = now
