"""The decode loop: per-row stops, batch-independent codes (bit-identical rows on the CPU), context
clipping; loading and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llasa_cli.constants import CODEBOOK_SIZE, CONTEXT_TOKENS
from llasa_cli.engine import devices, loading
from llasa_cli.engine.devices import CPU_FALLBACK_NOTICE, pick_device, resolve_dtype
from llasa_cli.engine.generator import END_INDEX, LlasaGenerator, _left_pad
from llasa_cli.engine.hub import resolve_spec
from llasa_cli.engine.loading import load_generator, load_speech_models
from llasa_cli.engine.protocols import GenerationRequest, VoicePrompt
from llasa_cli.engine.row_invariance import ROW_TILE, row_wise_attention, tiled_linear
from llasa_cli.errors import DeviceUnavailableError, ModelLoadError, ModelNotFoundError
from llasa_cli.options import EngineOptions, SamplingOptions

VOICE = VoicePrompt(codes=np.arange(1000, 1040, dtype=np.int64), text="A short reference clip.")


class ScriptedEnd:
    """Wraps the generator's logits: request r emits the end token from step stops[r] on (None: never ends).

    Rows are told apart by `context.origin`, since finished rows leave the batch."""

    def __init__(self, logits, stops: list[int | None]) -> None:
        self.logits, self.stops, self.step = logits, stops, 0
        self.batch_rows: list[int] = []

    def __call__(self, context) -> torch.Tensor:
        logits = self.logits(context)
        self.batch_rows.append(logits.shape[0])
        for row, request in enumerate(context.origin.tolist()):
            stop = self.stops[request]
            ends = stop is not None and self.step >= stop
            logits[row, END_INDEX] = 1e9 if ends else float("-inf")
        self.step += 1
        return logits


def scripted(generator: LlasaGenerator, stops: list[int | None], sampling: SamplingOptions) -> LlasaGenerator:
    twin = LlasaGenerator(generator.model, generator.tokenizer, sampling)
    twin.logits = ScriptedEnd(twin.logits, stops)  # type: ignore[method-assign]
    return twin


def test_each_row_stops_at_its_own_end(tiny_generator) -> None:
    greedy = SamplingOptions(temperature=0.0)
    requests = [
        GenerationRequest("One.", seed=1, max_new_tokens=50),
        GenerationRequest("A longer line of text to speak.", seed=2, max_new_tokens=50, voice=VOICE),
        GenerationRequest("Three.", seed=3, max_new_tokens=5),
    ]
    results = scripted(tiny_generator, [3, 7, None], greedy).generate(requests)
    assert [r.new_tokens for r in results] == [3, 7, 5]
    assert [r.hit_cap for r in results] == [False, False, True]
    assert [len(r.codes) for r in results] == [3, 7, 5]
    for result in results:
        assert result.codes.dtype == np.int64
        assert ((result.codes >= 0) & (result.codes < CODEBOOK_SIZE)).all()
    # Stopping a row does not change what it said before stopping.
    free = scripted(tiny_generator, [None], greedy).generate([requests[1]])[0]
    assert np.array_equal(free.codes[:7], results[1].codes)


def test_finished_rows_leave_the_batch_without_changing_the_others(tiny_generator) -> None:
    sampling = SamplingOptions(temperature=0.9, top_p=0.95)
    texts = ["One.", "Two words.", "Three more words.", "And a fourth line.", "Five.", "Six lines in all."]
    stops = [2, 4, 4, None, 9, None]
    requests = [GenerationRequest(t, seed=i, max_new_tokens=12) for i, t in enumerate(texts)]
    twin = scripted(tiny_generator, stops, sampling)
    batch = twin.generate(requests)
    assert [r.new_tokens for r in batch] == [2, 4, 4, 12, 9, 12]
    # Rows leave once a quarter of the batch has finished: 6 rows; 3 after step 4 (rows 0-2 done); 2 after step 9.
    assert twin.logits.batch_rows == [6] * 5 + [3] * 5 + [2] * 2
    for request, stop, in_batch in zip(requests, stops, batch, strict=True):
        alone = scripted(tiny_generator, [stop], sampling).generate([request])[0]
        assert np.array_equal(alone.codes, in_batch.codes)


def test_same_codes_alone_and_in_a_batch(tiny_generator) -> None:
    requests = [
        GenerationRequest("Hello there.", seed=5, max_new_tokens=24),
        GenerationRequest("A much longer sentence, with more words in it.", seed=7, max_new_tokens=32, voice=VOICE),
        GenerationRequest("Short.", seed=9, max_new_tokens=12),
    ]
    batch = tiny_generator.generate(requests)
    for request, in_batch in zip(requests, batch, strict=True):
        alone = tiny_generator.generate([request])[0]
        assert np.array_equal(alone.codes, in_batch.codes)
        assert (alone.hit_cap, alone.new_tokens) == (in_batch.hit_cap, in_batch.new_tokens)
    reordered = tiny_generator.generate([requests[2], requests[0]])
    assert np.array_equal(reordered[1].codes, batch[0].codes)


def test_batch_independence_with_every_filter(tiny_generator) -> None:
    sampling = SamplingOptions(temperature=0.8, top_p=0.9, top_k=200, repetition_penalty=1.3)
    twin = LlasaGenerator(tiny_generator.model, tiny_generator.tokenizer, sampling)
    requests = [
        GenerationRequest("First line.", seed=1, max_new_tokens=16, voice=VOICE),
        GenerationRequest("Second, longer line of text.", seed=2, max_new_tokens=20),
    ]
    batch = twin.generate(requests)
    assert np.array_equal(twin.generate([requests[0]])[0].codes, batch[0].codes)
    assert np.array_equal(twin.generate([requests[1]])[0].codes, batch[1].codes)


PROMPTS = [
    ("Hi.", None),
    ("A much longer sentence, with more words in it, to pad the others.", VOICE),
    ("Mid length line.", VOICE),
    ("Another line of text, of a middling length.", None),
    ("Six.", VOICE),
]


def step_logits(generator: LlasaGenerator, which: list[int], steps: int = 4, drop_after: int | None = None):
    """Logits of each prompt in `which`, batched in that order: after the prefill and after each of
    `steps` fed tokens (token s of prompt p: a function of (p, s) only). With `drop_after`, the
    batch keeps only its odd positions from that step on (as when finished rows leave)."""
    prompts = [generator.prompt_ids(text, voice) for text, voice in PROMPTS]
    seen: dict[int, list[torch.Tensor]] = {p: [] for p in which}
    with torch.inference_mode():
        context = generator.prefill([prompts[p] for p in which])
        live = list(which)
        for step in range(steps + 1):
            for row, logits in zip(live, generator.logits(context), strict=True):
                seen[row].append(logits.clone())
            if step == drop_after:
                keep = list(range(1, len(live), 2))
                context, live = context.select(torch.tensor(keep)), [live[k] for k in keep]
            generator.feed(context, torch.tensor([(97 * p + 31 * step) % CODEBOOK_SIZE for p in live]))
    return seen


def test_a_row_computes_the_same_bits_alone_and_in_any_batch(tiny_generator) -> None:
    """On the CPU a row's logits do not depend, even in the last bit, on the batch around it: its
    size (1, 2, 3, 5 rows: matmuls of other shapes), its padding (longer prompts beside it), its
    position, or rows leaving it. Sampling turns any last-bit difference into other codes sooner or later."""
    assert tiny_generator.row_invariant
    alone = {p: step_logits(tiny_generator, [p])[p] for p in range(len(PROMPTS))}
    for which, drop_after in (([0, 1], None), ([4, 2, 0], None), ([1, 2, 3, 4, 0], None), ([3, 0, 1, 4, 2], 1)):
        batched = step_logits(tiny_generator, which, drop_after=drop_after)
        for prompt, rows in batched.items():
            for step, logits in enumerate(rows):
                assert torch.equal(logits, alone[prompt][step]), f"prompt {prompt} in batch {which}, step {step}"


def test_the_row_wise_forward_computes_what_the_model_computes(tiny_generator) -> None:
    """Row tiling and row-wise attention change the rounding only: a padded batch's logits match the
    model's own forward pass (SDPA, no padding) of each prompt, and so does the model called
    directly on the padded batch."""
    prompts = [tiny_generator.prompt_ids(text, voice) for text, voice in PROMPTS]
    allowed = torch.as_tensor(tiny_generator.vocab.allowed_ids)
    ids, mask = _left_pad(prompts, tiny_generator._pad_id, tiny_generator.device)
    with torch.inference_mode():
        logits = tiny_generator.logits(tiny_generator.prefill(prompts))
        # Other callers of the model (the benchmark's model.generate) still get SDPA with its masks.
        other_caller = tiny_generator.model(input_ids=ids, attention_mask=mask).logits[:, -1, allowed]
        for row, prompt in enumerate(prompts):
            plain = tiny_generator.model(input_ids=torch.tensor([prompt])).logits[0, -1, allowed]
            assert torch.allclose(logits[row], plain, atol=1e-4), f"prompt {row}"
            assert torch.allclose(other_caller[row], plain, atol=1e-4), f"prompt {row}, padded, without row_starts"
            assert not torch.equal(logits[row], torch.zeros_like(plain))


def test_tiled_matmul_rows_do_not_depend_on_the_row_count() -> None:
    """What the CPU path rests on: this BLAS sums every row of a call of ROW_TILE * k rows in one order.
    If this fails here, the machine's BLAS picks kernels otherwise, and codes may depend on the batch size."""
    generator = torch.Generator().manual_seed(0)
    for width, outputs in ((64, 128), (128, 64), (64, CODEBOOK_SIZE + 1)):
        weight = torch.randn(outputs, width, generator=generator)
        rows = torch.randn(3 * ROW_TILE + 1, width, generator=generator)
        alone = torch.cat([tiled_linear(rows[r : r + 1], weight) for r in range(rows.shape[0])])
        for count in range(2, rows.shape[0] + 1):
            assert torch.equal(tiled_linear(rows[:count], weight), alone[:count]), f"{count} rows of {width}->{outputs}"
        shaped = tiled_linear(rows[:6].reshape(2, 3, width), weight)
        assert torch.equal(shaped.reshape(6, outputs), alone[:6])


def test_row_wise_attention_runs_a_prefill_or_one_new_token_only() -> None:
    query, key = torch.zeros((1, 2, 3, 4)), torch.zeros((1, 2, 5, 4))
    with pytest.raises(ValueError, match="3 queries on 5 keys"):
        row_wise_attention(None, query, key, key, None, scaling=1.0, row_starts=[0])


def test_codes_do_not_depend_on_the_batch_size(tiny_generator) -> None:
    """Whole generations, default sampling: batches of 1, 2 and 5 (rows leaving as they reach their
    caps) give every request the same codes."""
    requests = [
        GenerationRequest(text, seed=11 * row, max_new_tokens=20 + 20 * row, voice=voice)
        for row, (text, voice) in enumerate(PROMPTS)
    ]
    by_size = {}
    for size in (1, 2, 5):
        results = []
        for start in range(0, len(requests), size):
            results += tiny_generator.generate(requests[start : start + size])
        by_size[size] = results
    for size in (2, 5):
        for row, (one, other) in enumerate(zip(by_size[1], by_size[size], strict=True)):
            assert one.new_tokens == other.new_tokens == requests[row].max_new_tokens
            assert np.array_equal(one.codes, other.codes), f"request {row} at batch size {size}"


def test_seed_decides_the_codes(tiny_generator) -> None:
    first = tiny_generator.generate([GenerationRequest("Seeded.", seed=123, max_new_tokens=16)])[0]
    again = tiny_generator.generate([GenerationRequest("Seeded.", seed=123, max_new_tokens=16)])[0]
    other = tiny_generator.generate([GenerationRequest("Seeded.", seed=124, max_new_tokens=16)])[0]
    assert np.array_equal(first.codes, again.codes)
    assert not np.array_equal(first.codes, other.codes)


def test_cap_is_clipped_to_the_context(tiny_generator) -> None:
    text = "Fill the context."
    base = tiny_generator.prompt_tokens(text, VoicePrompt(codes=np.zeros(0, dtype=np.int64), text="Ref."))
    room = 20
    long_voice = VoicePrompt(codes=np.full(CONTEXT_TOKENS - base - room, 42, dtype=np.int64), text="Ref.")
    assert tiny_generator.prompt_tokens(text, long_voice) == CONTEXT_TOKENS - room
    too_long = VoicePrompt(codes=np.full(CONTEXT_TOKENS, 42, dtype=np.int64), text="Ref.")
    never_ends = scripted(tiny_generator, [None, None], SamplingOptions(temperature=0.0))
    results = never_ends.generate(
        [
            GenerationRequest(text, seed=1, max_new_tokens=1000, voice=long_voice),
            GenerationRequest(text, seed=1, max_new_tokens=1000, voice=too_long),
        ]
    )
    assert (results[0].new_tokens, results[0].hit_cap) == (room, True)
    assert (results[1].new_tokens, results[1].hit_cap, results[1].codes.size) == (0, True, 0)


def prefill_widths(generator: LlasaGenerator, run) -> list[int]:
    """Token widths of the multi-token (prefill) calls into the LM body while `run()` runs."""
    widths: list[int] = []

    def record(_module, _args, kwargs) -> None:
        if kwargs["input_ids"].shape[1] > 1:
            widths.append(int(kwargs["input_ids"].shape[1]))

    handle = generator.model.base_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return widths


def test_a_prompt_that_fills_the_context_is_not_prefilled(tiny_generator) -> None:
    """A row with no room (a 20,000-letter word's prompt) gets no codes at once, and the batch is
    not padded to its length: the others are prefilled as wide as their own prompts."""
    fills = VoicePrompt(codes=np.full(CONTEXT_TOKENS, 42, dtype=np.int64), text="Ref.")
    requests = [
        GenerationRequest("Short.", seed=1, max_new_tokens=6),
        GenerationRequest("Short.", seed=2, max_new_tokens=6, voice=fills),
        GenerationRequest("A little longer.", seed=3, max_new_tokens=4),
    ]
    results: list = []
    widths = prefill_widths(tiny_generator, lambda: results.extend(tiny_generator.generate(requests)))
    assert widths == [tiny_generator.prompt_tokens("A little longer.", None)]
    assert (results[1].codes.size, results[1].new_tokens, results[1].hit_cap) == (0, 0, True)
    for row in (0, 2):
        alone = tiny_generator.generate([requests[row]])[0]
        assert np.array_equal(results[row].codes, alone.codes)
        assert results[row].new_tokens == requests[row].max_new_tokens


def test_prompt_tokens_and_empty_batch(tiny_generator) -> None:
    assert tiny_generator.prompt_tokens("Hi.", None) == len(tiny_generator.prompt_ids("Hi.", None))
    assert tiny_generator.prompt_tokens("Hi.", VOICE) > tiny_generator.prompt_tokens("Hi.", None) + len(VOICE.codes)
    assert tiny_generator.generate([]) == []


# -- loading ---------------------------------------------------------------------


def test_short_names_and_specs() -> None:
    assert resolve_spec("1b").location == "HKUSTAudio/Llasa-1B"
    assert resolve_spec("8B").location == "HKUSTAudio/Llasa-8B"
    source = resolve_spec("HKUSTAudio/Llasa-3B")
    assert (source.location, source.is_local) == ("HKUSTAudio/Llasa-3B", False)


def test_loading_finds_the_local_model(tiny_generator) -> None:
    assert tiny_generator.device.type == "cpu"
    assert tiny_generator.model.dtype == torch.float32


@pytest.mark.parametrize("spec", ["/no/such/folder", "./no-such-folder", "~/no-such-folder-llasa", "a/b/c"])
def test_missing_path_is_not_found(spec: str) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_generator(EngineOptions(model=spec, device="cpu"), SamplingOptions())


def test_unfetchable_id_says_how_to_download() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_generator(EngineOptions(model="llasa-cli-tests/no-such-model", device="cpu"), SamplingOptions())
    message = str(info.value)
    assert "\n" not in message
    assert "hf download llasa-cli-tests/no-such-model" in message and "local path" in message


def test_folder_that_is_not_a_model_is_a_load_error(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError):
        load_generator(EngineOptions(model=str(tmp_path), device="cpu"), SamplingOptions())
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError):
        load_generator(EngineOptions(model=str(tmp_path), device="cpu"), SamplingOptions())


def test_codec_folder_is_not_a_llasa_model(tiny_models) -> None:
    with pytest.raises(ModelLoadError):
        load_generator(EngineOptions(model=str(tiny_models.xcodec2), device="cpu"), SamplingOptions())


# -- devices -----------------------------------------------------------------------


def _devices(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(devices, "_cuda_available", lambda: cuda)
    monkeypatch.setattr(devices, "_mps_available", lambda: mps)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch) -> None:
    _devices(monkeypatch, cuda=True, mps=True)
    assert pick_device("auto") == ("cuda", None)
    _devices(monkeypatch, cuda=False, mps=True)
    assert pick_device("auto") == ("mps", None)
    _devices(monkeypatch, cuda=False, mps=False)
    assert pick_device("auto") == ("cpu", CPU_FALLBACK_NOTICE)
    assert pick_device("cpu") == ("cpu", None)


def test_asking_for_a_missing_gpu_is_an_error(monkeypatch) -> None:
    _devices(monkeypatch, cuda=False, mps=False)
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        pick_device("cuda")
    with pytest.raises(DeviceUnavailableError, match="mps"):
        pick_device("mps")
    with pytest.raises(DeviceUnavailableError):
        load_generator(EngineOptions(model="1b", device="cuda"), SamplingOptions())


def test_cpu_fallback_notice_reaches_the_run(monkeypatch, tiny_generator, tiny_models) -> None:
    _devices(monkeypatch, cuda=False, mps=False)
    loaded: list[tuple[str, torch.dtype]] = []

    def fake_load_lm(spec: str, device: str, dtype: torch.dtype):
        loaded.append((device, dtype))
        return tiny_generator.model, tiny_generator.tokenizer

    monkeypatch.setattr(loading, "load_lm", fake_load_lm)
    engine = EngineOptions(model="1b", codec=str(tiny_models.xcodec2), device="auto")
    models = load_speech_models(engine, SamplingOptions())
    assert (models.device, models.notice) == ("cpu", CPU_FALLBACK_NOTICE)
    assert loaded == [("cpu", torch.float32)]
    assert models.candidates is not None  # the Llasa model can branch, for --beam and --best-of


def test_dtype_auto_is_bf16_on_cuda_only() -> None:
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "mps") == torch.float32
    assert resolve_dtype("float16", "cuda") == torch.float16


def test_model_too_small_for_the_tokenizer_is_a_load_error(tiny_generator) -> None:
    class Truncated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(4, 10, bias=False)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.head

    with pytest.raises(ModelLoadError, match="do not belong together"):
        LlasaGenerator(Truncated(), tiny_generator.tokenizer, SamplingOptions(), vocab=tiny_generator.vocab)
