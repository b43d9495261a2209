"""Where the books are worked: in this process, one process per device, or on a Ray cluster.

`synthesize_books` yields the same `library` events whichever it is, so the CLI shows one run
however many processes or machines did the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..errors import InvalidOptionError
from ..options import EngineOptions, WorkerOptions
from ..text.manuscript import STDIN_SOURCE
from ..voices.resolve import VoiceSpec
from .library import Book, LibraryEvent, synthesize_library
from .request import STDOUT, RunRequest
from .run import LoadedModels, check_models

Warn = Callable[[str], None]
DEFAULT_DEVICE = EngineOptions().device


def check_placement(request: RunRequest, placement: WorkerOptions) -> None:
    """Combinations of where the work runs and the request that cannot work."""
    if placement.in_process:
        return
    flag = "--devices" if placement.devices else "--ray"
    if request.output == STDOUT:
        raise InvalidOptionError(f"{flag} writes into an output folder; -o - streams from one process")
    if request.source == STDIN_SOURCE:
        raise InvalidOptionError(f"{flag} needs the manuscript as a file: - (standard input) can be read only once")
    if request.engine.device != DEFAULT_DEVICE:
        raise InvalidOptionError(f"give --device or {flag}, not both: {flag} places each worker on its own device")


def synthesize_books(
    books: Sequence[Book],
    placement: WorkerOptions,
    *,
    skip_current: bool = True,
    stop_reason: Callable[[], str | None] = lambda: None,
    seconds_left: Callable[[], float | None] = lambda: None,
    warn: Warn = lambda message: None,
) -> Iterator[LibraryEvent]:
    """Work the books in order where `placement` says; `skip_current`: skip books that are
    finished and unchanged (a library; a single book is always run, as a plain `synth`)."""
    if placement.devices:
        from .workers import synthesize_on_devices

        yield from synthesize_on_devices(
            books, placement.devices,
            skip_current=skip_current, stop_reason=stop_reason, seconds_left=seconds_left, warn=warn,
        )  # fmt: skip
        return
    load = None
    if placement.ray is not None:
        address = placement.ray

        def load(request: RunRequest, voices: Sequence[VoiceSpec], warn: Warn) -> LoadedModels:
            from .ray_workers import load_on_ray

            check_models(request, voices)  # this machine resolves the voices (Whisper may transcribe a clip)
            return load_on_ray(request, address, warn)

    yield from synthesize_library(
        books, skip_current=skip_current, stop_reason=stop_reason, seconds_left=seconds_left, warn=warn, load=load
    )
