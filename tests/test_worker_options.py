"""`--devices` and `--ray` as option values: parsed and checked in one place (WorkerOptions)."""

from __future__ import annotations

import pytest

from llasa_cli.options import WorkerOptions, parse_devices


def test_devices_are_parsed_trimmed_and_lower_cased() -> None:
    assert parse_devices(" cuda:0, CUDA:1 ,") == ("cuda:0", "cuda:1")
    assert WorkerOptions(parse_devices("cpu,cpu")).devices == ("cpu", "cpu")
    assert not WorkerOptions(parse_devices("all")).in_process
    assert WorkerOptions().in_process


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(devices=("gpu0",)), "--devices takes 'all' or a comma-separated list"),
        (dict(devices=("all", "cpu")), "not 'all,cpu'"),
        (dict(devices=("cuda",)), "cuda:N"),
        (dict(devices=("cpu",), ray="auto"), "--devices and --ray cannot be combined"),
        (dict(ray=""), "--ray takes 'auto' or a cluster address"),
    ],
)
def test_bad_combinations_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerOptions(**options)
