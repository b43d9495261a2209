"""Out-of-memory back-off for batched generation.

`OomBackoffGenerator` wraps any `SpeechGenerator`. When a batch runs out of accelerator memory
it frees the allocator's cache and runs the batch again in two halves, recursively, down to one
request; a single request that still does not fit raises `DeviceUnavailableError` (exit code
22: the device cannot serve this model and segment, whatever the batch size). The size that
worked is remembered, so later batches are cut to it up front instead of failing again. Results
come back complete and in request order, as from the wrapped generator; since every row draws
its noise from its own seed (`sampling`) and, on the CPU, computes what it would alone
(`row_invariance`), the halves give the same codes the whole batch would (on a GPU, batched
kernels may round the halves differently).

torch is never imported here: an out-of-memory error can only come from torch when torch is
already loaded, so it is looked up in `sys.modules`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence

from ..errors import DeviceUnavailableError
from .protocols import GenerationRequest, GenerationResult, SpeechGenerator, VoicePrompt

# Lower-case fragments of the messages allocators raise when memory runs out: CUDA and MPS
# ("CUDA out of memory", "MPS backend out of memory"), the CPU allocator ("DefaultCPUAllocator:
# can't allocate memory" / "not enough memory"), and MPS buffers above the device's limit.
OOM_MESSAGE_MARKERS = (
    "out of memory",
    "can't allocate memory",
    "not enough memory",
    "invalid buffer size",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocator's out-of-memory error (CUDA, MPS, CPU) or Python's MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    message = str(exc).lower()
    return any(marker in message for marker in OOM_MESSAGE_MARKERS)


def free_accelerator_memory() -> None:
    """Drop unreachable tensors, then give cached blocks back to the CUDA / MPS driver."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    if mps is not None and backend is not None and backend.is_available():
        mps.empty_cache()


class OomBackoffGenerator:
    """`SpeechGenerator` that halves a batch that runs out of memory and remembers the size that fits.

    `batch_limit` is None until the first out-of-memory error, then the largest batch size run
    since (requests beyond it are run in further batches). `on_backoff(failed, next_size)` is
    called at each halving, e.g. to log it."""

    def __init__(
        self,
        inner: SpeechGenerator,
        *,
        on_backoff: Callable[[int, int], None] | None = None,
        free_memory: Callable[[], None] = free_accelerator_memory,
    ) -> None:
        self.inner = inner
        self.batch_limit: int | None = None
        self.backoffs = 0
        self._on_backoff = on_backoff
        self._free_memory = free_memory

    def prompt_tokens(self, text: str, voice: VoicePrompt | None) -> int:
        return self.inner.prompt_tokens(text, voice)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order; batches larger than `batch_limit` are split first."""
        pending = list(requests)
        results: list[GenerationResult] = []
        start = 0
        while start < len(pending):
            size = len(pending) - start if self.batch_limit is None else min(self.batch_limit, len(pending) - start)
            results.extend(self._attempt(pending[start : start + size]))
            start += size
        return results

    def _attempt(self, batch: list[GenerationRequest]) -> list[GenerationResult]:
        results = self._try(batch)
        if results is not None:
            return results
        # Outside the `except` block: the error's traceback (and the tensors its frames hold) is gone.
        self._free_memory()
        half = (len(batch) + 1) // 2
        self.batch_limit = half if self.batch_limit is None else min(self.batch_limit, half)
        self.backoffs += 1
        if self._on_backoff is not None:
            self._on_backoff(len(batch), half)
        return self.generate(batch)

    def _try(self, batch: list[GenerationRequest]) -> list[GenerationResult] | None:
        """The batch's results, or None when it ran out of memory."""
        try:
            results = list(self.inner.generate(batch))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if len(batch) == 1:
                raise DeviceUnavailableError(
                    "out of memory with a single segment: the device cannot hold this model and segment; "
                    "try --dtype bfloat16 (or float16), a smaller --model, shorter segments "
                    "(--max-segment-seconds) or a shorter voice clip"
                ) from exc
            return None
        if len(results) != len(batch):
            raise RuntimeError(f"the generator returned {len(results)} results for {len(batch)} requests")
        return results
