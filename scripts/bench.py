"""Benchmark llasa-cli's engine against the naive way Llasa is usually run, on the same segments.

Builds the models from configs with random weights (no download), saves them to a temporary
folder and loads them back through `llasa_cli.models.load_generator` / `load_codec`, so the
real loaders run. `--size tiny` uses the tiny test models; `--size 1b` the Llasa-1B shape
(Llama hidden 2048, 16 layers, 32 heads, 8 KV heads, MLP 8192, tied embeddings, vocabulary
193,800) with a default-size X-Codec2. Random weights do not stop by themselves, so every
segment gets a forced length (its `max_new_tokens`): both sides generate the same tokens.

Side by side, in one process, on the same segments: the baseline runs them the official Llasa
example's way, one at a time through HF `model.generate` (batch 1, sampling; `min_new_tokens`
forces the length), each then decoded by X-Codec2; the engine runs `LlasaGenerator.generate`
over batches sorted by length (as the pipeline does), one `XCodec.decode` call per batch. Then,
where `llasa_cli.lm_search` exists, --beam N against --beam 1 on (some of) the same segments,
scored by decoding candidates and a signal statistic (a stand-in for the verifiers).

    HF_HUB_OFFLINE=1 python scripts/bench.py --size tiny           # CPU, a few minutes
    HF_HUB_OFFLINE=1 python scripts/bench.py --size 1b --device cuda --segments 32 --batch-size 16

Peak memory: CUDA max allocated on a GPU; on the CPU the process's peak RSS, reset before each
side where Linux allows it (/proc/self/clear_refs), else the peak since the process started.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402

from llasa_cli.constants import CHARS_PER_SECOND, CODEBOOK_SIZE, CODES_PER_SECOND, SAMPLE_RATE  # noqa: E402
from llasa_cli.protocols import GenerationRequest  # noqa: E402

# Llasa-1B is Llama-3.2-1B's shape (DESIGN 4); speed does not depend on the weights' values.
LLASA_1B_LM = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32}
LLASA_1B_LM |= {"num_key_value_heads": 8, "rope_theta": 500_000.0, "max_position_embeddings": 131_072}
LLASA_1B_LM["tie_word_embeddings"] = True
LLASA_1B_VOCAB = 193_800
SIZES = ("tiny", "1b")
ROOT = Path(__file__).resolve().parent.parent
PASSAGE = " ".join((ROOT / "sample_texts" / "the_lighthouse.txt").read_text(encoding="utf-8").split()) + " "
WARMUP_TOKENS = 8
# On a small shared CPU, torch's default of one thread per core spin-waits whenever another
# process holds a core: measured here, 50 tokens took 3.7 s with 2 threads and 1.1 s with 1.
DEFAULT_CPU_THREADS = 1
BEAM_CANDIDATES = 2
TINY_BEAM_SEGMENTS = 2  # beam 5 x M=2 grows 10 candidates a segment: 10x the tokens, on a 2-core CPU
BEAM_STEP_SECONDS = 1.0
SCORER_TARGET_RMS = 0.1
MIB = 1 << 20
KIB = 1 << 10


# -- models --------------------------------------------------------------------------


def _build_lm(out: Path, size: str, device: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llasa_cli.prompt import SPEECH_END_TOKEN
    from llasa_cli.tiny_models import TINY_LM, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    shape = TINY_LM if size == "tiny" else LLASA_1B_LM
    vocab = len(tokenizer) if size == "tiny" else LLASA_1B_VOCAB
    end_id = tokenizer.convert_tokens_to_ids(SPEECH_END_TOKEN)
    config = LlamaConfig(vocab_size=vocab, bos_token_id=tokenizer.bos_token_id, eos_token_id=end_id, **shape)
    torch.manual_seed(0)
    with torch.device(device):  # random init of a 1B model is much faster on the GPU
        model = LlamaForCausalLM(config).eval()
    if device.startswith("cuda"):
        model = model.to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_codec(out: Path, size: str, device: str) -> None:
    import torch
    from transformers import Xcodec2Config, Xcodec2Model
    from transformers.models.xcodec2.feature_extraction_xcodec2 import Xcodec2FeatureExtractor

    from llasa_cli.constants import SAMPLES_PER_CODE
    from llasa_cli.tiny_models import TINY_XCODEC2

    config = Xcodec2Config(**TINY_XCODEC2) if size == "tiny" else Xcodec2Config()
    torch.manual_seed(0)
    with torch.device(device):
        Xcodec2Model(config).eval().save_pretrained(out)
    Xcodec2FeatureExtractor(sampling_rate=SAMPLE_RATE, hop_length=SAMPLES_PER_CODE).save_pretrained(out)


def load_models(folder: Path, size: str, device: str, dtype: str, seed: int) -> tuple[Any, Any]:
    """Build random models of `size`, save them, and load them back through the user's loaders."""
    from transformers.utils import logging as hf_logging

    from llasa_cli.models import load_codec, load_generator, pick_device
    from llasa_cli.options import EngineOptions, SamplingOptions

    hf_logging.disable_progress_bar()
    device, _ = pick_device(device)
    _build_lm(folder / "llasa", size, device)
    _build_codec(folder / "xcodec2", size, device)
    engine = EngineOptions(model=str(folder / "llasa"), device=device, dtype=dtype)
    generator = load_generator(engine, SamplingOptions(seed=seed))
    return generator, load_codec(str(folder / "xcodec2"), device)


# -- segments and measuring ------------------------------------------------------------


def make_segments(count: int, min_seconds: float, max_seconds: float, seed: int) -> list[GenerationRequest]:
    """`count` segments with lengths spread evenly over [min, max] seconds, in a shuffled (book-like) order."""
    spread = np.linspace(min_seconds, max_seconds, count) if count > 1 else np.array([max_seconds])
    order = np.random.default_rng(seed).permutation(count)
    requests = []
    for index, seconds in enumerate(spread[order]):
        chars = max(10, round(float(seconds) * CHARS_PER_SECOND))
        start = (index * 37) % (len(PASSAGE) // 2)
        text = (PASSAGE * (2 + chars // len(PASSAGE)))[start : start + chars].strip()
        tokens = max(1, round(float(seconds) * CODES_PER_SECOND))
        requests.append(GenerationRequest(text=text, seed=seed * 1_000 + index, max_new_tokens=tokens))
    return requests


class PeakMemory:
    """CUDA max allocated, or the process's peak RSS (reset through /proc/self/clear_refs where possible)."""

    def __init__(self, device: Any) -> None:
        self.cuda = str(device).startswith("cuda")
        self.kind = "cuda max allocated" if self.cuda else "peak RSS"

    def reset(self) -> int:
        """Start a new peak; returns the memory in use now (weights and all)."""
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            return int(torch.cuda.memory_allocated())
        try:
            Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        except OSError:
            self.kind = "peak RSS since start (cannot reset)"
        return self._status("VmRSS:")

    def read(self) -> int:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated())
        if self.kind == "peak RSS" and (peak := self._status("VmHWM:")):
            return peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * KIB)

    @staticmethod
    def _status(key: str) -> int:
        status = Path("/proc/self/status")
        lines = status.read_text().splitlines() if status.exists() else []
        return next((int(line.split()[1]) * KIB for line in lines if line.startswith(key)), 0)


@dataclass
class Side:
    """What one way of running produced on the segments, and what it cost."""

    name: str
    lm_seconds: float = 0.0
    codec_seconds: float = 0.0
    other_seconds: float = 0.0  # scorers (beam search)
    tokens: int = 0  # codes in the final audio
    tokens_generated: int = 0  # codes the LM generated, candidates included
    audio_seconds: float = 0.0
    peak_memory_bytes: int = 0
    peak_memory_added_bytes: int = 0  # over what was in use when the side started (weights, buffers)
    peak_memory_kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.lm_seconds + self.codec_seconds + self.other_seconds

    def summary(self) -> dict[str, Any]:
        total = max(self.seconds, 1e-9)
        data = asdict(self)
        data.update(
            seconds=self.seconds,
            real_time_factor=self.seconds / max(self.audio_seconds, 1e-9),
            tokens_per_second=self.tokens / total,
            lm_share=self.lm_seconds / total,
            codec_share=self.codec_seconds / total,
        )
        return data


def _timed(device: Any, call: Callable[[], Any]) -> tuple[Any, float]:
    """call()'s value and its seconds, the GPU's queued work included."""
    import torch

    sync = torch.cuda.synchronize if str(device).startswith("cuda") else lambda: None
    sync()
    begin = time.perf_counter()
    value = call()
    sync()
    return value, time.perf_counter() - begin


def _codec_seconds(codec: Any, codes: Sequence[np.ndarray], side: Side) -> None:
    audio, seconds = _timed(codec.device, lambda: codec.decode(list(codes)))
    side.codec_seconds += seconds
    side.audio_seconds += sum(a.size for a in audio) / SAMPLE_RATE


# -- the sides ---------------------------------------------------------------------------


def _speech_codes(new_ids: np.ndarray, vocab: Any) -> np.ndarray:
    """Codes of generated ids, like the official example's `<|s_N|>` parsing; random weights also
    pick text ids, which are folded into the codebook so the codec decodes as many codes."""
    known = new_ids < vocab.id_to_code.size
    codes = np.where(known, vocab.id_to_code[np.minimum(new_ids, vocab.id_to_code.size - 1)], -1)
    return np.where(codes >= 0, codes, new_ids % CODEBOOK_SIZE).astype(np.int64)


def _hf_generate(generator: Any, request: GenerationRequest) -> np.ndarray:
    import torch

    sampling, model = generator.sampling, generator.model
    ids = torch.tensor([generator.prompt_ids(request.text, request.voice)], device=generator.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=request.max_new_tokens,
            min_new_tokens=request.max_new_tokens,
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            repetition_penalty=sampling.repetition_penalty,
            eos_token_id=generator.vocab.end_id,
            pad_token_id=generator.vocab.end_id,
        )
    return out[0, ids.shape[1] :].cpu().numpy()


def run_baseline(generator: Any, codec: Any, requests: Sequence[GenerationRequest], seed: int) -> Side:
    """One segment at a time: HF generate (batch 1), then decode that segment."""
    import torch

    side = Side("baseline: HF generate, batch 1")
    torch.manual_seed(seed)
    for request in requests:
        new_ids, seconds = _timed(generator.device, lambda r=request: _hf_generate(generator, r))
        side.lm_seconds += seconds
        codes = _speech_codes(new_ids, generator.vocab)
        side.tokens += codes.size
        _codec_seconds(codec, [codes], side)
    side.tokens_generated = side.tokens
    return side


def _batches(requests: Sequence[GenerationRequest], batch_size: int) -> list[list[GenerationRequest]]:
    """The pipeline's batching: segments sorted by length, then cut into batches."""
    ordered = sorted(requests, key=lambda r: r.max_new_tokens)
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def run_engine(generator: Any, codec: Any, requests: Sequence[GenerationRequest], batch_size: int) -> Side:
    """`LlasaGenerator.generate` per batch (behind the out-of-memory back-off), then one decode call."""
    from llasa_cli.oom import OomBackoffGenerator

    side = Side(f"engine: batched, batch {batch_size}")
    backoff = OomBackoffGenerator(generator)
    for batch in _batches(requests, batch_size):
        results, seconds = _timed(generator.device, lambda b=batch: backoff.generate(b))
        side.lm_seconds += seconds
        side.tokens += sum(r.codes.size for r in results)
        side.extra["ended_early"] = side.extra.get("ended_early", 0) + sum(not r.hit_cap for r in results)
        # The batch runs until its longest row is done: every row takes a step each time.
        side.extra["row_steps"] = side.extra.get("row_steps", 0) + len(batch) * max(r.max_new_tokens for r in batch)
        _codec_seconds(codec, [r.codes for r in results], side)
    side.tokens_generated = side.tokens
    side.extra["oom_backoffs"] = backoff.backoffs
    side.extra["idle_row_share"] = 1.0 - side.tokens / max(1, side.extra["row_steps"])
    return side


@dataclass
class SignalScorer:
    """Decodes candidates and scores how close their RMS is to a target: the verifiers' stand-in."""

    codec: Any
    seconds: float = 0.0

    def score(self, items: Sequence[Any]) -> list[float]:
        begin = time.perf_counter()
        audio = self.codec.decode([item.codes for item in items])
        scores = [-abs(float(np.sqrt(np.mean(a**2))) - SCORER_TARGET_RMS) if a.size else -1.0 for a in audio]
        self.seconds += time.perf_counter() - begin
        return scores


def run_search(generator: Any, codec: Any, requests: Sequence[GenerationRequest], batch_size: int, beam: int) -> Side:
    """search_segments per batch with --beam `beam` (1: plain mode through the search code)."""
    from llasa_cli.lm_search import LmCandidateGenerator
    from llasa_cli.search import SearchOptions, search_segments

    options = SearchOptions(beam=beam, beam_candidates=BEAM_CANDIDATES, beam_step_seconds=BEAM_STEP_SECONDS)
    scorer = SignalScorer(codec) if beam > 1 else None
    side = Side(f"search --beam {beam}" + (f" M={BEAM_CANDIDATES}" if beam > 1 else ""))
    lm = LmCandidateGenerator(generator)
    for batch in _batches(requests, batch_size):
        call = lambda b=batch: search_segments(b, lm, scorer, scorer, options)  # noqa: E731
        results, seconds = _timed(generator.device, call)
        side.lm_seconds += seconds
        side.tokens += sum(r.codes.size for r in results)
        side.tokens_generated += sum(r.stats.tokens_generated for r in results)
        _codec_seconds(codec, [r.codes for r in results], side)
    if scorer is not None:  # the scorers ran inside the timed search calls
        side.lm_seconds -= scorer.seconds
        side.other_seconds = scorer.seconds
    return side


# -- the run -------------------------------------------------------------------------------


def _measure(memory: PeakMemory, call: Callable[[], Side]) -> Side:
    in_use = memory.reset()
    side = call()
    side.peak_memory_bytes, side.peak_memory_kind = memory.read(), memory.kind
    side.peak_memory_added_bytes = max(0, side.peak_memory_bytes - in_use)
    return side


def _warm_up(generator: Any, codec: Any, args: argparse.Namespace) -> None:
    """One short pass of every side first, so lazy set-up is not billed to whichever runs first."""
    short = [GenerationRequest(text=PASSAGE[:40], seed=1, max_new_tokens=WARMUP_TOKENS)] * 2
    run_baseline(generator, codec, short[:1], args.seed)
    run_engine(generator, codec, short, args.batch_size)
    if args.beam > 1 and _search_available():
        run_search(generator, codec, short, args.batch_size, args.beam)


def _search_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(f"llasa_cli.{name}") for name in ("lm_search", "search"))


def _beam_report(generator: Any, codec: Any, requests: list[GenerationRequest], args: argparse.Namespace) -> dict:
    if args.beam <= 1:
        return {"measured": False, "reason": "skipped (--beam 0 or 1)"}
    if not _search_available():
        return {"measured": False, "reason": "beam search is not yet measured: llasa_cli.lm_search is not available"}
    if args.beam_segments:
        requests = requests[: args.beam_segments]
    memory = PeakMemory(generator.device)
    plain = _measure(memory, lambda: run_search(generator, codec, requests, args.batch_size, 1))
    wide = _measure(memory, lambda: run_search(generator, codec, requests, args.batch_size, args.beam))
    return {
        "measured": True,
        "beam": args.beam,
        "beam_candidates": BEAM_CANDIDATES,
        "beam_step_seconds": BEAM_STEP_SECONDS,
        "segments": len(requests),
        "beam_1": plain.summary(),
        "beam_n": wide.summary(),
        "cost_ratio": wide.seconds / max(plain.seconds, 1e-9),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="llasa-bench-") as folder:
        generator, codec = load_models(Path(folder), args.size, args.device, args.dtype, args.seed)
    requests = make_segments(args.segments, args.min_seconds, args.max_seconds, args.seed)
    _warm_up(generator, codec, args)
    memory = PeakMemory(generator.device)
    baseline = _measure(memory, lambda: run_baseline(generator, codec, requests, args.seed))
    engine = _measure(memory, lambda: run_engine(generator, codec, requests, args.batch_size))
    return {
        "size": args.size,
        "device": str(generator.device),
        "device_name": torch.cuda.get_device_name() if generator.device.type == "cuda" else "cpu",
        "dtype": str(next(generator.model.parameters()).dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "segments": len(requests),
        "batch_size": args.batch_size,
        "segment_seconds": [args.min_seconds, args.max_seconds],
        "audio_seconds": baseline.audio_seconds,
        "baseline": baseline.summary(),
        "engine": engine.summary(),
        "tokens_match": baseline.tokens == engine.tokens,
        "throughput_ratio": baseline.seconds / max(engine.seconds, 1e-9),
        "beam": _beam_report(generator, codec, requests, args),
    }


# -- output ----------------------------------------------------------------------------------

_COLUMNS = ("wall s", "LM s", "codec s", "RTF", "tok/s", "LM %", "codec %", "peak MiB")
_HEADER = f"{'side':<34} " + " ".join(f"{c:>8}" for c in _COLUMNS)


def _row(side: dict[str, Any]) -> str:
    return (
        f"{side['name']:<34} {side['seconds']:8.2f} {side['lm_seconds']:8.2f} {side['codec_seconds']:8.2f} "
        f"{side['real_time_factor']:8.3f} {side['tokens_per_second']:8.1f} {100 * side['lm_share']:8.0f} "
        f"{100 * side['codec_share']:8.0f} {side['peak_memory_bytes'] / MIB:8.0f}"
    )


def print_table(report: dict[str, Any]) -> None:
    base, engine = report["baseline"], report["engine"]
    print(
        f"llasa-cli bench: --size {report['size']} on {report['device']} ({report['device_name']}, "
        f"{report['dtype']}, {report['threads']} threads); {report['segments']} segments of "
        f"{report['segment_seconds'][0]:g}-{report['segment_seconds'][1]:g} s = {report['audio_seconds']:.1f} s "
        f"of audio; batch size {report['batch_size']}; peak memory = {base['peak_memory_kind']}"
    )
    print(_HEADER)
    print(_row(base))
    print(_row(engine))
    print(
        f"tokens: baseline {base['tokens']}, engine {engine['tokens']} (same: {report['tokens_match']}); "
        f"engine row-steps {engine['extra']['row_steps']} ({100 * engine['extra']['idle_row_share']:.0f}% on rows "
        f"already at their length); peak memory added: baseline {base['peak_memory_added_bytes'] / MIB:.0f} MiB, "
        f"engine {engine['peak_memory_added_bytes'] / MIB:.0f} MiB"
    )
    print(f"throughput engine / baseline: {report['throughput_ratio']:.2f}x")
    beam = report["beam"]
    if not beam["measured"]:
        print(f"beam: {beam['reason']}")
        return
    print(
        f"beam search on {beam['segments']} of the segments (M={beam['beam_candidates']}, "
        f"{beam['beam_step_seconds']:g} s steps; scorer: decode + RMS):"
    )
    for side in (beam["beam_1"], beam["beam_n"]):
        print(_row(side) + f"   generated {side['tokens_generated']} tokens, scorers {side['other_seconds']:.2f} s")
    print(f"--beam {beam['beam']} costs {beam['cost_ratio']:.2f}x the time of --beam 1")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--min-seconds", type=float, default=3.0, help="shortest segment (forced length)")
    parser.add_argument("--max-seconds", type=float, default=12.0, help="longest segment (forced length)")
    parser.add_argument("--beam", type=int, default=5, help="also time --beam N against --beam 1 (0: skip)")
    parser.add_argument("--threads", type=int, default=DEFAULT_CPU_THREADS, help="torch threads (0: torch's choice)")
    parser.add_argument("--beam-segments", type=int, help="beam-time the first K segments (tiny: 2, 1b: all; 0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.beam_segments is None:
        args.beam_segments = TINY_BEAM_SEGMENTS if args.size == "tiny" else 0
    if args.segments < 1 or args.batch_size < 1 or not 0 < args.min_seconds <= args.max_seconds:
        parser.error("need --segments >= 1, --batch-size >= 1 and 0 < --min-seconds <= --max-seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
