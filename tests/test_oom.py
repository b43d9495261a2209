"""Out-of-memory back-off (halving, order, remembered size) and the batch size estimate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from llasa_cli.errors import DeviceUnavailableError
from llasa_cli.oom import (
    OomBackoffGenerator,
    bytes_per_row,
    is_out_of_memory,
    kv_bytes_per_token,
    suggest_batch_size,
)
from llasa_cli.protocols import GenerationRequest, GenerationResult
from tests.fakes import FakeGenerator

GIB = 1 << 30
# Llasa-1B is Llama-3.2-1B's shape (DESIGN 4); 8B is Llama-3.1-8B's.
LLASA_1B = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
}
LLASA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
}


class OomAbove(FakeGenerator):
    """A fake LM whose batches above `limit` rows fail the way torch does when memory runs out."""

    def __init__(self, limit: int, error: type[BaseException] | None = None, message: str = "") -> None:
        super().__init__()
        self.limit = limit
        self.error = error or torch.OutOfMemoryError
        self.message = message or "CUDA out of memory. Tried to allocate 2.00 GiB"
        self.sizes: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.sizes.append(len(requests))
        if len(requests) > self.limit:
            raise self.error(self.message)
        return super().generate(requests)


def _requests(count: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(text=f"Sentence number {i} of the test.", seed=100 + i, max_new_tokens=80)
        for i in range(count)
    ]


def _same(left: list[GenerationResult], right: list[GenerationResult]) -> bool:
    return len(left) == len(right) and all(
        np.array_equal(a.codes, b.codes) and a.hit_cap == b.hit_cap and a.new_tokens == b.new_tokens
        for a, b in zip(left, right, strict=True)
    )


def test_halves_until_it_fits_and_keeps_order() -> None:
    requests = _requests(8)
    inner = OomAbove(limit=3)
    freed: list[int] = []
    backoffs: list[tuple[int, int]] = []
    wrapper = OomBackoffGenerator(
        inner, free_memory=lambda: freed.append(1), on_backoff=lambda failed, size: backoffs.append((failed, size))
    )
    results = wrapper.generate(requests)
    assert _same(results, FakeGenerator().generate(requests))
    assert inner.sizes == [8, 4, 2, 2, 2, 2]
    assert [r.seed for r in inner.requests] == [r.seed for r in requests]  # each request ran once, in order
    assert backoffs == [(8, 4), (4, 2)]
    assert len(freed) == 2 and wrapper.backoffs == 2
    assert wrapper.batch_limit == 2


def test_later_batches_start_at_the_size_that_worked() -> None:
    inner = OomAbove(limit=4)
    wrapper = OomBackoffGenerator(inner, free_memory=lambda: None)
    wrapper.generate(_requests(8))
    assert inner.sizes == [8, 4, 4]
    inner.sizes.clear()
    later = _requests(10)
    assert _same(wrapper.generate(later), FakeGenerator().generate(later))
    assert inner.sizes == [4, 4, 2]  # no failed attempt at 10 or 8
    assert wrapper.backoffs == 1


def test_odd_batches_split_into_a_larger_and_a_smaller_half() -> None:
    inner = OomAbove(limit=4)
    wrapper = OomBackoffGenerator(inner, free_memory=lambda: None)
    requests = _requests(7)
    assert _same(wrapper.generate(requests), FakeGenerator().generate(requests))
    assert inner.sizes == [7, 4, 3]


def test_no_memory_trouble_means_one_call_and_no_limit() -> None:
    inner = OomAbove(limit=100)
    wrapper = OomBackoffGenerator(inner, free_memory=lambda: pytest.fail("nothing to free"))
    wrapper.generate(_requests(8))
    assert inner.sizes == [8]
    assert wrapper.batch_limit is None
    assert wrapper.generate([]) == []


def test_a_single_segment_that_does_not_fit_is_a_device_error() -> None:
    wrapper = OomBackoffGenerator(OomAbove(limit=0), free_memory=lambda: None)
    with pytest.raises(DeviceUnavailableError, match="single segment") as caught:
        wrapper.generate(_requests(4))
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert DeviceUnavailableError.exit_code == 22


def test_other_errors_pass_through_untouched() -> None:
    inner = OomAbove(limit=0, error=RuntimeError, message="shape mismatch: [2, 64] vs [3, 64]")
    wrapper = OomBackoffGenerator(inner, free_memory=lambda: pytest.fail("not an OOM"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        wrapper.generate(_requests(4))
    assert inner.sizes == [4]


@pytest.mark.parametrize(
    "message",
    [
        "MPS backend out of memory (MPS allocated: 17.50 GB, other allocations: 1.20 GB, max allowed: 18.13 GB)",
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate",
        "Invalid buffer size: 24.00 GB",
        "CUDA out of memory. Tried to allocate 20.00 MiB",
    ],
)
def test_backs_off_on_plain_runtime_errors_from_any_backend(message: str) -> None:
    inner = OomAbove(limit=2, error=RuntimeError, message=message)
    wrapper = OomBackoffGenerator(inner, free_memory=lambda: None)
    assert len(wrapper.generate(_requests(4))) == 4
    assert inner.sizes == [4, 2, 2]


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float but found Half"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only allocator errors count


def test_wrapper_is_a_generator_and_passes_other_attributes_through() -> None:
    inner = FakeGenerator()
    inner.notice = "no GPU found"  # type: ignore[attr-defined]
    wrapper = OomBackoffGenerator(inner)
    assert wrapper.prompt_tokens("three words here", None) == inner.prompt_tokens("three words here", None)
    assert wrapper.notice == "no GPU found"
    with pytest.raises(AttributeError):
        wrapper.no_such_attribute  # noqa: B018


def test_kv_bytes_per_token_of_the_real_sizes() -> None:
    assert kv_bytes_per_token(LLASA_1B) == 2 * 16 * 8 * 64 * 2 == 32 * 1024
    assert kv_bytes_per_token(LLASA_8B) == 128 * 1024
    assert kv_bytes_per_token(LLASA_1B, dtype_bytes=4) == 64 * 1024
    assert kv_bytes_per_token({**LLASA_1B, "head_dim": 128}) == 64 * 1024
    assert kv_bytes_per_token({**LLASA_1B, "num_key_value_heads": None}) == 4 * 32 * 1024  # MHA: kv heads = heads


def test_kv_bytes_per_token_reads_a_transformers_config() -> None:
    from transformers import LlamaConfig

    assert kv_bytes_per_token(LlamaConfig(**LLASA_1B)) == kv_bytes_per_token(LLASA_1B)


def test_suggest_batch_size_scales_with_free_memory() -> None:
    row = bytes_per_row(LLASA_1B)
    assert 64 << 20 < row < 256 << 20  # a full context's cache is 64 MiB; work space adds to it
    assert suggest_batch_size(10 * GIB, LLASA_1B) == int(10 * GIB * 0.8) // row
    assert suggest_batch_size(20 * GIB, LLASA_1B) >= 2 * suggest_batch_size(10 * GIB, LLASA_1B) - 1
    assert suggest_batch_size(40 * GIB, LLASA_8B) < suggest_batch_size(40 * GIB, LLASA_1B)
    assert suggest_batch_size(40 * GIB, LLASA_1B, dtype_bytes=4) < suggest_batch_size(40 * GIB, LLASA_1B)


def test_suggest_batch_size_stays_in_bounds() -> None:
    assert suggest_batch_size(0, LLASA_1B) == 1
    assert suggest_batch_size(-5, LLASA_1B) == 1
    assert suggest_batch_size(1 << 50, LLASA_1B) == 256
    assert suggest_batch_size(1 << 50, LLASA_1B, max_batch=16) == 16
