"""The books' batches spoken on a Ray cluster (`--ray auto|ADDRESS`, `pip install 'llasa-cli[ray]'`).

One Ray actor per GPU of the cluster (`num_gpus=1`; on a cluster without GPUs, one per CPU,
`num_cpus=1`) runs a `RenderWorker`: it loads the models once and renders the batches the driver
sends. The driver (`dispatch.Dispatcher`, in the `llasa` process) keeps the job store and records
each batch as `ray.wait` hands it back. An actor that dies is restarted by Ray (`max_restarts`)
and reloads its models; its batch in flight comes back as `WorkerLost` and is claimed again. An
actor lost more often than it may restart is left out; with none left the run stops.

Every machine needs llasa-cli and the models at the same paths (or the same hub ids in its
cache); the manuscript, the voice clip, the job and the output stay on the driver's machine.
Ray itself starts its own processes, which listen on the cluster's ports (`ray start`): that is
Ray's, and only with `--ray`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ..errors import DeviceUnavailableError, LlasaError, first_line
from ..options import MODE_PLAIN, RAY_AUTO
from .dispatch import Dispatcher, RemoteCodec, RemoteGenerator, WorkerLost
from .render_worker import RenderCall, RenderWorker
from .renderer import Outcome
from .request import RunRequest
from .run import LoadedModels

RAY_MISSING = "--ray needs Ray on this machine: pip install 'llasa-cli[ray]'"
# Ray restarts a dead actor this often (each restart reloads the models) before it is left out.
MAX_ACTOR_RESTARTS = 3

Warn = Callable[[str], None]


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise DeviceUnavailableError(RAY_MISSING) from exc
    return ray


def connect(address: str) -> None:
    """Join the cluster at `address` (RAY_AUTO: the running one, else a new local one), unless this
    process is already in one (a test's `ray.init`)."""
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == RAY_AUTO else address, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        raise DeviceUnavailableError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from exc


class RayPool:
    """One `RenderWorker` actor per GPU of the cluster (per CPU where it has none)."""

    def __init__(self, request: RunRequest, actors: int | None = None) -> None:
        ray = self.ray = _ray()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        device, placement = ("cuda", {"num_gpus": 1}) if gpus else ("cpu", {"num_cpus": 1})
        count = actors or gpus or max(1, int(resources.get("CPU", 1)))
        on_device = dataclasses.replace(request, engine=dataclasses.replace(request.engine, device=device))
        actor_class = ray.remote(RenderWorker).options(max_restarts=MAX_ACTOR_RESTARTS, max_task_retries=0, **placement)
        self.actors = {index: actor_class.remote(on_device) for index in range(count)}
        self.losses = dict.fromkeys(self.actors, 0)
        self.owners: dict[Hashable, int] = {}  # batch in flight -> its actor
        self.restarting: dict[int, Any] = {}  # actor lost -> its `ready` call, answered once Ray has restarted it
        self.device = device
        try:
            sizes = ray.get([actor.batch_size.remote() for actor in self.actors.values()])
            self.sizes = dict(zip(self.actors, sizes, strict=True))
        except Exception as exc:
            raise self._error(exc) from exc

    def workers(self) -> list[int]:
        """The actors that can take a batch now: neither restarting nor lost for good."""
        for index, probe in list(self.restarting.items()):
            if self.ray.wait([probe], timeout=0)[0]:
                del self.restarting[index]
                try:
                    self.ray.get(probe)
                except self.ray.exceptions.RayActorError:
                    self._lost(index)  # died again while restarting
        return [index for index in self._usable() if index not in self.restarting]

    def gone(self) -> bool:
        return not self._usable()

    def _usable(self) -> list[int]:
        return [index for index, losses in self.losses.items() if losses <= MAX_ACTOR_RESTARTS]

    def _lost(self, index: int) -> None:
        """Ray restarts a lost actor (reloading its models); it takes no batch until it answers."""
        self.losses[index] += 1
        if self.losses[index] <= MAX_ACTOR_RESTARTS:
            self.restarting[index] = self.actors[index].ready.remote()

    def batch_size(self, worker: int) -> int:
        return self.sizes[worker]

    def submit(self, worker: int, call: RenderCall) -> Hashable:
        ref = self.actors[worker].render.remote(call)
        self.owners[ref] = worker
        return ref

    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[Hashable]:
        ready, rest = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return ready

    def result(self, handle: Hashable) -> list[Outcome]:
        worker = self.owners.pop(handle)
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayActorError as exc:
            self._lost(worker)
            raise WorkerLost(f"Ray actor {worker + 1} was lost: {first_line(exc)}") from exc
        except Exception as exc:
            raise self._error(exc) from exc

    def call(self, method: str, *args: Any) -> Any:
        """The method on the first actor that answers (one lost meanwhile is skipped)."""
        error: Exception | None = None
        for worker in self.workers():
            try:
                return self.ray.get(getattr(self.actors[worker], method).remote(*args))
            except self.ray.exceptions.RayActorError as exc:
                self._lost(worker)
                error = exc
            except Exception as exc:
                raise self._error(exc) from exc
        raise DeviceUnavailableError(f"no Ray actor is left to run {method}: {first_line(error or Exception())}")

    def close(self) -> None:
        for actor in self.actors.values():
            self.ray.kill(actor)

    def _error(self, exc: Exception) -> Exception:
        """The error an actor raised, as itself (a missing model is the same error as in a plain run)."""
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, LlasaError) else exc


def load_on_ray(request: RunRequest, address: str, warn: Warn) -> LoadedModels:
    """Join the cluster, start the actors (each loads the models) and drive them from here."""
    connect(address)
    return drive(request, RayPool(request), warn)


def drive(request: RunRequest, pool: RayPool, warn: Warn) -> LoadedModels:
    """The models of a run whose books this process drives and the pool's actors speak: a codec
    and a generator that call the actors, and the `Dispatcher` as the book runner."""
    from ..engine.devices import pick_device
    from ..engine.loading import SpeechModels

    if pool.device == "cpu":
        warn(f"the Ray cluster has no GPU: {len(pool.actors)} actor(s) on CPUs, which is much slower")
    search = request.search if request.search.mode != MODE_PLAIN else None
    strict = request.verify.enabled and request.verify.strict
    dispatcher = Dispatcher(pool, request.sampling, request.engine, search, strict=strict)
    device, _ = pick_device("auto")  # where this process transcribes a voice clip without its text
    models = SpeechModels(generator=RemoteGenerator(pool), codec=RemoteCodec(pool), device=device)
    return LoadedModels(request, models, runner=dispatcher, close=pool.close)
