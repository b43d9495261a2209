"""Run a batch's two halves, the second optionally beside the next batch's first.

A batch is spoken in two halves: the language model generates its codes (`generate`), then
the codec decodes them and the verifiers judge them, sampling failing rows again (`finish`).
With overlap on, `finish` runs in one worker thread while the caller's thread already
generates the next batch, so the accelerator is not left waiting while Whisper listens or
while Python prepares the next batch. On CUDA the worker issues its kernels on a stream of its
own, so they can run beside the language model's instead of queueing behind them.

Only one batch is ever in `finish` at a time: the verifiers are never called from two threads
at once (openai-whisper installs key/value cache hooks on its model for every decode). Results
come back through futures in batch order, so the caller alone touches the job store.

torch is imported only when a CUDA stream is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

Work = TypeVar("Work")
Generated = TypeVar("Generated")
Finished = TypeVar("Finished")

OVERLAP_THREAD_NAME = "llasa-finish"


class BatchRunner(Generic[Work, Generated, Finished]):
    """`start(work)` runs `generate(work)` now, in the caller's thread, and `finish(work, generated)`
    now (overlap off) or in the worker thread (overlap on); the future holds what `finish` returned."""

    def __init__(
        self,
        generate: Callable[[Work], Generated],
        finish: Callable[[Work, Generated], Finished],
        overlap: bool,
        device_type: str = "cpu",
    ) -> None:
        self._generate = generate
        self._finish = finish
        self.overlap = overlap
        self._device_type = device_type
        self._pool: ThreadPoolExecutor | None = None
        self._stream: Any = None

    def start(self, work: Work) -> Future[Finished]:
        generated = self._generate(work)
        if not self.overlap:
            done: Future[Finished] = Future()
            done.set_result(self._finish(work, generated))
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=OVERLAP_THREAD_NAME)
        return self._pool.submit(self._finish_on_own_stream, work, generated)

    def close(self) -> None:
        """Wait for the batch in the worker, if any, and stop the worker."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> BatchRunner[Work, Generated, Finished]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _finish_on_own_stream(self, work: Work, generated: Generated) -> Finished:
        if self._device_type != "cuda":
            return self._finish(work, generated)
        import torch

        if self._stream is None:
            self._stream = torch.cuda.Stream()
        with torch.cuda.stream(self._stream):
            finished = self._finish(work, generated)
        # Results are host data (NumPy codes and audio, floats), but make the stream's work
        # complete before another thread can reuse memory it freed.
        self._stream.synchronize()
        return finished


def overlap_wanted(setting: bool | None, device_type: str) -> bool:
    """`--overlap` as set, or by default on CUDA only: there the language model leaves the GPU
    idle between its small decode steps. On a CPU both halves would share the same cores, and
    MPS runs one command queue, so overlap gains nothing there."""
    return setting if setting is not None else device_type == "cuda"
