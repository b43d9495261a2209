"""Out-of-memory back-off (halving, order, remembered size), the batch size estimate, and
`--batch-size auto` from the option through the free-memory query to the run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from llasa_cli.audio.sinks import WrittenChapter
from llasa_cli.cli import synth as cli_synth
from llasa_cli.cli.app import app, main
from llasa_cli.engine.batch_size import (
    CPU_AUTO_BATCH_SIZE,
    MAX_SUGGESTED_BATCH,
    ModelShape,
    auto_batch_size,
    bytes_per_row,
    kv_bytes_per_token,
    suggest_batch_size,
)
from llasa_cli.engine.devices import free_device_memory
from llasa_cli.engine.loading import SpeechModels, load_speech_models
from llasa_cli.engine.oom import OomBackoffGenerator, is_out_of_memory
from llasa_cli.engine.protocols import GenerationRequest, GenerationResult, VoicePrompt
from llasa_cli.errors import DeviceUnavailableError, InvalidOptionError
from llasa_cli.options import (
    BATCH_SIZE_AUTO,
    DEFAULT_BATCH_SIZE,
    EngineOptions,
    SamplingOptions,
    VerifyOptions,
    parse_batch_size,
)
from llasa_cli.pipeline.job_folder import open_job
from llasa_cli.pipeline.request import RunRequest
from llasa_cli.pipeline.run import engine_for, load_plan, read_input, run_events
from llasa_cli.pipeline.run_context import RunContext
from tests.fakes import FakeCodec, FakeGenerator

GIB = 1 << 30
# Llasa-1B is Llama-3.2-1B's shape; 8B is Llama-3.1-8B's.
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


def test_wrapper_is_a_generator_and_nothing_more() -> None:
    inner = FakeGenerator()
    wrapper = OomBackoffGenerator(inner)
    assert wrapper.prompt_tokens("three words here", None) == inner.prompt_tokens("three words here", None)
    with pytest.raises(AttributeError):
        wrapper.requests  # noqa: B018 - the wrapped generator's own attributes are not passed through


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


# -- --batch-size auto: the option ------------------------------------------------------


@pytest.mark.parametrize("value", [1, 3, DEFAULT_BATCH_SIZE, 512, BATCH_SIZE_AUTO])
def test_engine_options_take_a_whole_batch_size_or_auto(value) -> None:
    engine = EngineOptions(batch_size=value)
    assert engine.batch_size == value
    assert engine.auto_batch_size == (value == BATCH_SIZE_AUTO)


def test_the_default_batch_size_stays_a_fixed_eight() -> None:
    assert EngineOptions().batch_size == DEFAULT_BATCH_SIZE == 8
    assert not EngineOptions().auto_batch_size


@pytest.mark.parametrize("value", [0, -2, 2.5, True, "8", "AUTO", "zero", None])
def test_engine_options_reject_a_bad_batch_size_naming_it(value) -> None:
    with pytest.raises(InvalidOptionError, match="--batch-size") as caught:
        EngineOptions(batch_size=value)
    assert isinstance(caught.value, ValueError)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(("text", "parsed"), [("8", 8), (" 24 ", 24), ("auto", "auto"), ("Auto", "auto"), ("0", 0)])
def test_parse_batch_size_reads_numbers_and_auto(text: str, parsed) -> None:
    assert parse_batch_size(text) == parsed


@pytest.mark.parametrize("text", ["zero", "", "-1", "2.5", "8_0", "auto8"])
def test_parse_batch_size_rejects_anything_else_naming_it(text: str) -> None:
    with pytest.raises(InvalidOptionError, match="whole number >= 1 or 'auto'") as caught:
        parse_batch_size(text)
    assert repr(text) in str(caught.value)


def test_auto_survives_the_job_record_so_a_resume_sizes_again() -> None:
    request = RunRequest(source="book.txt", output="out", engine=EngineOptions(batch_size=BATCH_SIZE_AUTO))
    again = RunRequest.from_json(json.loads(json.dumps(request.to_json())))
    assert again.engine.batch_size == BATCH_SIZE_AUTO and again.engine.auto_batch_size


# -- --batch-size auto: free memory to a size -----------------------------------------------


def _language_model(config: dict, dtype: torch.dtype = torch.bfloat16) -> ModelShape:
    """What `auto_batch_size` reads of a `LlasaGenerator` (its `shape`): its model's config and dtype size."""
    return ModelShape(config, dtype.itemsize)


def _free(amount: int | None, asked: list[str] | None = None):
    def query(device: str) -> int | None:
        if asked is not None:
            asked.append(device)
        return amount

    return query


def test_auto_batch_size_comes_from_the_free_memory_of_the_device() -> None:
    asked: list[str] = []
    size, notice = auto_batch_size(_language_model(LLASA_1B), "cuda:0", _free(10 * GIB, asked))
    assert asked == ["cuda:0"]
    assert size == suggest_batch_size(10 * GIB, LLASA_1B) > DEFAULT_BATCH_SIZE
    assert notice == f"batch size auto: {size} (from 10.0 GiB free on cuda:0)"


def test_auto_batch_size_grows_with_free_memory_and_shrinks_with_model_and_dtype() -> None:
    def size(config: dict, free: int, dtype: torch.dtype = torch.bfloat16) -> int:
        return auto_batch_size(_language_model(config, dtype), "cuda:0", _free(free))[0]

    assert size(LLASA_1B, 4 * GIB) < size(LLASA_1B, 20 * GIB)
    assert size(LLASA_8B, 20 * GIB) < size(LLASA_1B, 20 * GIB)
    assert size(LLASA_1B, 20 * GIB, torch.float32) < size(LLASA_1B, 20 * GIB)  # fp32 caches take twice the room
    assert size(LLASA_1B, 1 << 50) == MAX_SUGGESTED_BATCH
    assert size(LLASA_1B, 0) == 1


def test_a_generator_reports_its_shape(tiny_generator) -> None:
    shape = tiny_generator.shape
    assert shape.config is tiny_generator.model.config and shape.dtype_bytes == 4  # float32 on the CPU
    expected = suggest_batch_size(30 * GIB, shape.config, dtype_bytes=4)
    assert auto_batch_size(shape, "mps", _free(30 * GIB))[0] == expected


def test_auto_batch_size_on_the_cpu_is_fixed_and_asks_for_no_memory() -> None:
    def no_query(device: str) -> int:
        pytest.fail(f"asked the free memory of {device}")

    size, notice = auto_batch_size(_language_model(LLASA_1B), "cpu", no_query)
    assert size == CPU_AUTO_BATCH_SIZE == DEFAULT_BATCH_SIZE
    assert notice == f"batch size auto: {CPU_AUTO_BATCH_SIZE} (fixed on the CPU)"


def test_auto_batch_size_falls_back_to_the_default_when_memory_or_shape_is_unknown() -> None:
    unknown_memory = auto_batch_size(_language_model(LLASA_1B), "mps", _free(None))
    assert unknown_memory == (DEFAULT_BATCH_SIZE, f"batch size auto: {DEFAULT_BATCH_SIZE} (free memory on mps unknown)")
    assert auto_batch_size(None, "cuda:0", _free(10 * GIB))[0] == DEFAULT_BATCH_SIZE  # no model to measure


def test_free_device_memory_is_unknown_on_the_cpu() -> None:
    assert free_device_memory("cpu") is None


def test_free_device_memory_on_cuda_asks_mem_get_info_of_that_device(monkeypatch) -> None:
    asked: list[torch.device] = []

    def mem_get_info(device: torch.device) -> tuple[int, int]:
        asked.append(device)
        return 5 * GIB, 80 * GIB

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)  # undone when the test ends
    assert free_device_memory("cuda:1") == 5 * GIB
    assert asked == [torch.device("cuda:1")]


def test_free_device_memory_on_mps_is_the_recommended_limit_less_what_the_driver_holds(monkeypatch) -> None:
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * GIB, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 * GIB, raising=False)
    assert free_device_memory("mps") == 10 * GIB
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 20 * GIB)
    assert free_device_memory("mps") == 0
    monkeypatch.delattr(torch.mps, "recommended_max_memory")  # torch older than 2.5
    assert free_device_memory("mps") is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_free_device_memory_on_a_real_gpu_is_within_its_total() -> None:
    free = free_device_memory("cuda:0")
    assert free is not None and 0 < free <= torch.cuda.get_device_properties(0).total_memory


# -- --batch-size auto: the run ------------------------------------------------------------


def test_engine_for_hands_the_synthesizer_a_whole_number() -> None:
    models = SpeechModels(generator=FakeGenerator(), codec=FakeCodec(), device="cpu", batch_size=24)
    assert engine_for(EngineOptions(batch_size=BATCH_SIZE_AUTO), models).batch_size == 24
    fixed = EngineOptions(batch_size=5)
    assert engine_for(fixed, models) is fixed
    by_hand = SpeechModels(generator=FakeGenerator(), codec=FakeCodec(), device="cpu")
    assert engine_for(EngineOptions(batch_size=BATCH_SIZE_AUTO), by_hand).batch_size == CPU_AUTO_BATCH_SIZE


BOOK = "Chapter One\n\n" + "\n\n".join(f"Paragraph number {n} is here." for n in range(1, 8)) + "\n"


def test_run_events_batch_at_the_size_auto_resolved_to(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text(BOOK)
    request = RunRequest(
        source=str(book),
        output=str(tmp_path / "out"),
        engine=EngineOptions(batch_size=BATCH_SIZE_AUTO, overlap=False),  # cuda:0 below, but no CUDA here
        sampling=SamplingOptions(seed=1),
        verify=VerifyOptions(enabled=False),
    )
    generator = FakeGenerator()
    models = SpeechModels(generator=generator, codec=FakeCodec(), device="cuda:0", batch_size=3)
    voice = VoicePrompt(codes=np.arange(50, dtype=np.int64), text="The narrator speaks.")
    plan = load_plan(request)
    assert len(plan.segments) > 3
    with open_job(request, read_input(request)) as store:
        list(run_events(request, plan, models, voice, _NullSink(), RunContext(store=store, worker="test")))
    assert len(generator.requests) == len(plan.segments)
    assert max(len(batch) for batch in generator.batches) == 3


class _NullSink:
    """A chapter sink that keeps nothing (the test looks at the batches only)."""

    def destination(self, chapter) -> str:
        return "null"

    def exists(self, chapter) -> bool:
        return False

    def fingerprint(self) -> str:
        return "null"

    def write(self, chapter, pieces) -> WrittenChapter:
        return WrittenChapter("null", 0.0)

    def close(self) -> None:
        pass


def test_load_speech_models_resolves_auto_on_the_cpu_and_says_so(tiny_models) -> None:
    engine = EngineOptions(
        model=str(tiny_models.llasa), codec=str(tiny_models.xcodec2), device="cpu", batch_size=BATCH_SIZE_AUTO
    )
    models = load_speech_models(engine, SamplingOptions())
    assert models.batch_size == CPU_AUTO_BATCH_SIZE
    assert models.notice == f"batch size auto: {CPU_AUTO_BATCH_SIZE} (fixed on the CPU)"
    fixed = load_speech_models(EngineOptions(model=engine.model, codec=engine.codec, device="cpu"), SamplingOptions())
    assert fixed.batch_size is None and fixed.notice is None


# -- --batch-size auto: the command line ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"), [([], 8), (["--batch-size", "16"], 16), (["--batch-size", "auto"], "auto")]
)
def test_synth_parses_batch_size(monkeypatch, args: list[str], expected) -> None:
    seen: list[RunRequest] = []

    def execute(request: RunRequest, *rest) -> int:
        seen.append(request)
        return 0

    monkeypatch.setattr(cli_synth, "execute", execute)
    result = CliRunner().invoke(app, ["synth", "--text", "Hello there.", *args])
    assert result.exit_code == 0, result.output
    assert [r.engine.batch_size for r in seen] == [expected]


@pytest.mark.parametrize(("value", "named"), [("zero", "'zero'"), ("0", "not 0"), ("-4", "'-4'"), ("", "''")])
def test_synth_rejects_a_bad_batch_size_in_one_line(monkeypatch, capsys, value: str, named: str) -> None:
    monkeypatch.setattr(cli_synth, "execute", lambda *a: pytest.fail("ran with a bad --batch-size"))
    assert main(["synth", "--text", "Hello there.", "--batch-size", value]) == InvalidOptionError.exit_code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llasa: error: --batch-size"), lines
    assert named in lines[0]


def test_synth_with_auto_batch_size_runs_end_to_end_on_the_cpu(tmp_path: Path, tiny_models, capsys) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "synth", "--text", "Hello there. This is a short line.", "-o", str(out), "--model", str(tiny_models.llasa),
            "--codec", str(tiny_models.xcodec2), "--device", "cpu", "--batch-size", "auto", "--no-verify", "--json",
        ]
    )  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert f"batch size auto: {CPU_AUTO_BATCH_SIZE} (fixed on the CPU)" in warnings
    assert events[-1]["event"] == "summary" and events[-1]["status"] != "partial"
    assert list(out.glob("*.wav"))
