"""A book spoken by Ray actors (`--ray`) while this process keeps the job: on a local Ray
(`ray.init(num_cpus=2)`: two actors on the CPU) with the tiny real-architecture models. Both
actors do work, nothing is synthesised twice, the codes are a plain run's, and an actor killed
mid-batch (`ray.kill`, which Ray restarts) costs only that batch. Skipped where Ray is not
installed (`pip install 'llasa-cli[ray]'`) or cannot start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llasa_cli.options import EngineOptions, SamplingOptions, TextOptions, VerifyOptions
from llasa_cli.pipeline import RunRequest
from llasa_cli.pipeline.job_folder import LOG_NAME, WORK_DIR_NAME
from llasa_cli.pipeline.library import Book, BookEnded, synthesize_library

from .test_workers import BOOK, stored_codes

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'llasa-cli[ray]')")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - whatever keeps Ray from starting here
        pytest.skip(f"Ray cannot start here: {exc}")
    yield ray
    ray.shutdown()


def request_for(folder: Path, tiny_models, name: str) -> RunRequest:
    (folder / "book.txt").write_text(BOOK)
    return RunRequest(
        source=str(folder / "book.txt"),
        output=str(folder / name),
        text=TextOptions(max_segment_seconds=3.0),
        sampling=SamplingOptions(top_p=1.0, seed=5),
        engine=EngineOptions(model=str(tiny_models.llasa), codec=str(tiny_models.xcodec2), device="cpu", batch_size=1),
        verify=VerifyOptions(enabled=False),
    )


@pytest.fixture(scope="module")
def plain_codes(tmp_path_factory: pytest.TempPathFactory, tiny_models) -> dict:
    request = request_for(tmp_path_factory.mktemp("plain"), tiny_models, "out")
    events = list(synthesize_library([Book("book", request)], skip_current=False))
    assert isinstance(events[-1], BookEnded) and events[-1].error is None
    return stored_codes(Path(request.output))


def run_on_ray(request: RunRequest, pool_class) -> tuple[list, object]:
    from llasa_cli.pipeline.ray_workers import drive

    pools = []

    def load(request: RunRequest, voices, warn):
        pools.append(pool_class(request))
        return drive(request, pools[0], warn)

    events = list(synthesize_library([Book("book", request)], skip_current=False, load=load))
    return events, pools[0]


def recording(base):
    """A pool that notes which actor got which batch; `kill_first` kills the first batch's actor."""

    class Recording(base):
        kill_first = False

        def __init__(self, request: RunRequest) -> None:
            super().__init__(request)
            self.sent: list[tuple[int, tuple[str, ...]]] = []

        def submit(self, worker: int, call):
            handle = super().submit(worker, call)
            self.sent.append((worker, tuple(s.segment_id for s in call.segments)))
            if self.kill_first and len(self.sent) == 1:
                ray.kill(self.actors[worker], no_restart=False)  # Ray restarts it; this batch is lost
            return handle

    return Recording


def log_words(out: Path) -> list[list[str]]:
    return [line.split()[2:] for line in (out / WORK_DIR_NAME / LOG_NAME).read_text().splitlines()]


def assert_same_codes(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    differing = [p for p in expected if not np.array_equal(expected[p], got[p])]
    assert not differing, f"segments {differing} differ from the plain run"


def test_two_actors_share_the_book_nothing_twice_codes_as_a_plain_run(local_ray, tmp_path, tiny_models, plain_codes):
    from llasa_cli.pipeline.ray_workers import RayPool

    request = request_for(tmp_path, tiny_models, "out")
    events, pool = run_on_ray(request, recording(RayPool))
    assert isinstance(events[-1], BookEnded) and events[-1].error is None
    assert {worker for worker, _ids in pool.sent} == {0, 1}, "both actors got batches"
    sent = [segment for _worker, ids in pool.sent for segment in ids]
    assert len(sent) == len(set(sent)), "a segment was sent twice"
    dones = [w[1] for w in log_words(Path(request.output)) if w[0] == "done"]
    assert len(dones) == len(set(dones)) == len(plain_codes)
    assert_same_codes(plain_codes, stored_codes(Path(request.output)))


def test_an_actor_killed_mid_batch_costs_only_that_batch(local_ray, tmp_path, tiny_models, plain_codes):
    from llasa_cli.pipeline.ray_workers import RayPool

    killing = recording(RayPool)
    killing.kill_first = True
    request = request_for(tmp_path, tiny_models, "out")
    events, pool = run_on_ray(request, killing)
    assert isinstance(events[-1], BookEnded) and events[-1].error is None
    lost = pool.sent[0][1]
    assert sum(ids.count(lost[0]) for _worker, ids in pool.sent) == 2, "the lost batch was claimed again"
    words = log_words(Path(request.output))
    assert any(w[0] == "lost" for w in words), "the driver logged the lost batch"
    dones = [w[1] for w in words if w[0] == "done"]
    assert len(dones) == len(set(dones)) == len(plain_codes), "a segment was recorded twice"
    assert_same_codes(plain_codes, stored_codes(Path(request.output)))
