"""Benchmark llasa-cli's engine against the naive way Llasa is usually run, on the same segments.

Builds the models from configs with random weights (no download), saves them to a temporary
folder and loads them back through llasa-cli's loaders (`load_generator`, `load_codec`,
`verify.load_verifier`), so the real loaders run (see scripts/bench_models.py for the shapes).
`--size tiny` uses the tiny test models; `--size 1b` the Llasa-1B shape with a default-size
X-Codec2, and verifiers in the whisper-large-v3-turbo and wavlm-base-plus-sv shapes. Random
weights do not stop by themselves, so every segment gets a forced length (its `max_new_tokens`):
both sides generate the same tokens.

Side by side, in one process, on the same segments: the baseline runs them the official Llasa
example's way, one at a time through HF `model.generate` (batch 1, sampling; `min_new_tokens`
forces the length), each then decoded by X-Codec2 and verified alone (one verifier call per
segment); the engine runs `LlasaGenerator.generate` over batches sorted by length (as the
pipeline does), one `XCodec.decode` call and one verifier call per batch (the verifier batches
its models by `--verify-batch-size`). Verification is the pipeline's: signal checks, a Whisper
transcript (WER) and WavLM speaker similarity to a reference clip (random voice codes, decoded).
Random weights fail every check, where the pipeline would retry: the bench times one attempt.
`--no-verify` skips the verifiers.

Then, where `llasa_cli.engine.candidates` exists, --beam N against --beam 1 on (some of) the same
segments, scored by the pipeline's scorers (`search.make_scorers`: partial candidates
by speaker similarity and signal checks, finished ones by the full verifier), and the chosen
results decoded and verified as the pipeline does. The scorers' time is split into codec (their
decoding) and verify; with --no-verify they score signal checks only (booked as "other").

    HF_HUB_OFFLINE=1 python scripts/bench.py --size tiny           # CPU, a few minutes
    HF_HUB_OFFLINE=1 python scripts/bench.py --size 1b --device cuda --segments 32 --batch-size 16

Peak memory: CUDA max allocated on a GPU; on the CPU the process's peak RSS, reset before each
side where Linux allows it (/proc/self/clear_refs), else the peak since the process started.
"""

from __future__ import annotations

import argparse
import dataclasses
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_models, also when loaded by file path

import numpy as np  # noqa: E402
from bench_models import DEFAULT_ASR_TOKENS_PER_SECOND, BenchModels, load_models  # noqa: E402
from bench_report import print_table  # noqa: E402

from llasa_cli.constants import CHARS_PER_SECOND, CODEBOOK_SIZE, CODES_PER_SECOND, SAMPLE_RATE  # noqa: E402
from llasa_cli.engine.protocols import GenerationRequest  # noqa: E402
from llasa_cli.options import VerifyOptions  # noqa: E402
from llasa_cli.verify.signal_checks import EMPTY  # noqa: E402

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
KIB = 1 << 10


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
    codec_seconds: float = 0.0  # decoding: the results, and the scorers' candidates
    verify_seconds: float = 0.0  # verifier calls: the results, and the scorers' verdicts
    other_seconds: float = 0.0  # the scorers' signal checks under --no-verify
    tokens: int = 0  # codes in the final audio
    tokens_generated: int = 0  # codes the LM generated, candidates included
    audio_seconds: float = 0.0
    peak_memory_bytes: int = 0
    peak_memory_added_bytes: int = 0  # over what was in use when the side started (weights, buffers)
    peak_memory_kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.lm_seconds + self.codec_seconds + self.verify_seconds + self.other_seconds

    def count(self, key: str, value: float) -> None:
        self.extra[key] = self.extra.get(key, 0) + value

    def summary(self) -> dict[str, Any]:
        total = max(self.seconds, 1e-9)
        data = asdict(self)
        data.update(
            seconds=self.seconds,
            real_time_factor=self.seconds / max(self.audio_seconds, 1e-9),
            tokens_per_second=self.tokens / total,
            lm_share=self.lm_seconds / total,
            codec_share=self.codec_seconds / total,
            verify_share=self.verify_seconds / total,
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


def _decode(codec: Any, codes: Sequence[np.ndarray], side: Side) -> list[np.ndarray]:
    audio, seconds = _timed(codec.device, lambda: codec.decode(list(codes)))
    side.codec_seconds += seconds
    side.audio_seconds += sum(a.size for a in audio) / SAMPLE_RATE
    return audio


def _verify(
    models: BenchModels,
    requests: Sequence[GenerationRequest],
    audio: Sequence[np.ndarray],
    caps: Sequence[bool],
    side: Side,
) -> None:
    """One verifier call over the segments' audio, as the pipeline verifies a batch (no retries)."""
    if models.verifier is None or not requests:
        return
    from llasa_cli.verify.verdict import VerifyItem

    items = [VerifyItem(r.text, a, cap) for r, a, cap in zip(requests, audio, caps, strict=True)]
    verdicts, seconds = _timed(models.device, lambda: models.verifier.verify(items))
    side.verify_seconds += seconds
    side.count("verify_calls", 1)
    side.count("verified", len(items))
    side.count("asr_skipped", sum(EMPTY in v.failures for v in verdicts))  # silent: no Whisper pass


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


def run_baseline(models: BenchModels, requests: Sequence[GenerationRequest], seed: int) -> Side:
    """One segment at a time: HF generate (batch 1), then decode that segment, then verify it."""
    import torch

    generator = models.generator
    side = Side("baseline: HF generate, batch 1")
    torch.manual_seed(seed)
    for request in requests:
        new_ids, seconds = _timed(generator.device, lambda r=request: _hf_generate(generator, r))
        side.lm_seconds += seconds
        codes = _speech_codes(new_ids, generator.vocab)
        side.tokens += codes.size
        audio = _decode(models.codec, [codes], side)
        _verify(models, [request], audio, [codes.size >= request.max_new_tokens], side)
    side.tokens_generated = side.tokens
    return side


def _batches(requests: Sequence[GenerationRequest], batch_size: int) -> list[list[GenerationRequest]]:
    """The pipeline's batching: segments sorted by length, then cut into batches."""
    ordered = sorted(requests, key=lambda r: r.max_new_tokens)
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def run_engine(models: BenchModels, requests: Sequence[GenerationRequest], batch_size: int) -> Side:
    """`LlasaGenerator.generate` per batch (behind the out-of-memory back-off), one decode call, one verify call."""
    from llasa_cli.engine.oom import OomBackoffGenerator

    generator = models.generator
    side = Side(f"engine: batched, batch {batch_size}")
    backoff = OomBackoffGenerator(generator)
    rows_before = generator.rows_sampled
    for batch in _batches(requests, batch_size):
        results, seconds = _timed(generator.device, lambda b=batch: backoff.generate(b))
        side.lm_seconds += seconds
        side.tokens += sum(r.codes.size for r in results)
        side.count("ended_early", sum(not r.hit_cap for r in results))
        # Without dropping finished rows, a batch would step every row until its longest is done.
        side.count("row_steps_full", len(batch) * max(r.max_new_tokens for r in batch))
        audio = _decode(models.codec, [r.codes for r in results], side)
        _verify(models, batch, audio, [r.hit_cap for r in results], side)
    side.tokens_generated = side.tokens
    side.extra["oom_backoffs"] = backoff.backoffs
    # Row-steps actually run: a row's last step samples its end or its last code, so one per token.
    side.extra["row_steps"] = generator.rows_sampled - rows_before
    side.extra["idle_row_share"] = 1.0 - side.tokens / max(1, side.extra["row_steps"])
    return side


class TimedScorer:
    """A search scorer that sums its seconds; `codec_seconds` (the scorer's decoding) passes through."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.seconds = 0.0

    @property
    def codec_seconds(self) -> float:
        return self.scorer.codec_seconds

    def score(self, items: Sequence[Any]) -> list[float]:
        begin = time.perf_counter()
        scores = self.scorer.score(items)
        self.seconds += time.perf_counter() - begin
        return scores

    def recall(self, text: str, codes: np.ndarray) -> Any:
        return self.scorer.recall(text, codes)


def _scorers(models: BenchModels) -> tuple[TimedScorer, TimedScorer]:
    """The pipeline's (partial, final) scorers; signal checks only without a verifier (--no-verify)."""
    from llasa_cli.options import ScoreWeights
    from llasa_cli.search.scorers import make_scorers
    from llasa_cli.verify.composite import CompositeVerifier

    judge = models.verifier if models.verifier is not None else CompositeVerifier.signal_only("en")
    scorers = make_scorers(models.codec, ScoreWeights(), judge)
    return TimedScorer(scorers.partial), TimedScorer(scorers.final)


def book_scorers(side: Side, scorers: Sequence[TimedScorer], verified: bool) -> None:
    """Move the scorers' seconds (spent inside the timed search calls) from LM to codec and verify
    (or other, when they ran signal checks only)."""
    total = sum(s.seconds for s in scorers)
    codec = min(total, sum(s.codec_seconds for s in scorers))
    side.lm_seconds -= total
    side.codec_seconds += codec
    if verified:
        side.verify_seconds += total - codec
    else:
        side.other_seconds += total - codec
    side.extra["scorer_seconds"] = total
    side.extra["scorer_codec_seconds"] = codec


def run_search(models: BenchModels, requests: Sequence[GenerationRequest], batch_size: int, beam: int) -> Side:
    """search_segments per batch with --beam `beam` (1: plain mode through the search code), then
    the chosen results decoded and verified as the pipeline does: only those the final scorer
    did not already judge whole."""
    from llasa_cli.engine.candidates import LmCandidateGenerator
    from llasa_cli.options import SearchOptions
    from llasa_cli.search.segment_search import search_segments

    options = SearchOptions(beam=beam, beam_candidates=BEAM_CANDIDATES, beam_step_seconds=BEAM_STEP_SECONDS)
    scorers = _scorers(models) if beam > 1 else None
    partial, final = scorers or (None, None)
    side = Side(f"search --beam {beam}" + (f" M={BEAM_CANDIDATES}" if beam > 1 else ""))
    lm = LmCandidateGenerator(models.generator)
    for batch in _batches(requests, batch_size):
        call = lambda b=batch: search_segments(b, lm, partial, final, options)  # noqa: E731
        results, seconds = _timed(models.device, call)
        side.lm_seconds += seconds
        side.tokens += sum(r.codes.size for r in results)
        side.tokens_generated += sum(r.stats.tokens_generated for r in results)
        heard = [None if final is None else final.recall(q.text, r.codes) for q, r in zip(batch, results, strict=True)]
        side.audio_seconds += sum(h.audio.size for h in heard if h is not None) / SAMPLE_RATE
        todo = [n for n, h in enumerate(heard) if h is None]
        audio = _decode(models.codec, [results[n].codes for n in todo], side) if todo else []
        _verify(models, [batch[n] for n in todo], audio, [results[n].hit_cap for n in todo], side)
    if scorers is not None:
        book_scorers(side, scorers, verified=models.verifier is not None)
    return side


# -- the run -------------------------------------------------------------------------------


def _measure(memory: PeakMemory, call: Callable[[], Side]) -> Side:
    in_use = memory.reset()
    side = call()
    side.peak_memory_bytes, side.peak_memory_kind = memory.read(), memory.kind
    side.peak_memory_added_bytes = max(0, side.peak_memory_bytes - in_use)
    return side


def _warm_up(models: BenchModels, args: argparse.Namespace) -> None:
    """One short pass of every side first, so lazy set-up is not billed to whichever runs first.
    The verifiers warm up once (on the engine's pass): a Whisper pass costs the same 30 s window
    on any clip, which a 1b run on a CPU feels."""
    short = [GenerationRequest(text=PASSAGE[:40], seed=1, max_new_tokens=WARMUP_TOKENS)] * 2
    unverified = dataclasses.replace(models, verifier=None)
    run_baseline(unverified, short[:1], args.seed)
    run_engine(models, short, args.batch_size)
    if args.beam > 1:
        run_search(unverified, short, args.batch_size, args.beam)


def _beam_report(models: BenchModels, requests: list[GenerationRequest], args: argparse.Namespace) -> dict:
    if args.beam <= 1:
        return {"measured": False, "reason": "skipped (--beam 0 or 1)"}
    if args.beam_segments:
        requests = requests[: args.beam_segments]
    memory = PeakMemory(models.device)
    plain = _measure(memory, lambda: run_search(models, requests, args.batch_size, 1))
    wide = _measure(memory, lambda: run_search(models, requests, args.batch_size, args.beam))
    return {
        "measured": True,
        "beam": args.beam,
        "beam_candidates": BEAM_CANDIDATES,
        "beam_step_seconds": BEAM_STEP_SECONDS,
        "scorers": "search.make_scorers" + ("" if models.verifier is not None else " (signal checks only)"),
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
        models = load_models(Path(folder), args)
    generator = models.generator
    requests = make_segments(args.segments, args.min_seconds, args.max_seconds, args.seed)
    _warm_up(models, args)
    memory = PeakMemory(generator.device)
    baseline = _measure(memory, lambda: run_baseline(models, requests, args.seed))
    engine = _measure(memory, lambda: run_engine(models, requests, args.batch_size))
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
        "verify": {"enabled": models.verifier is not None, **models.info},
        "baseline": baseline.summary(),
        "engine": engine.summary(),
        "tokens_match": baseline.tokens == engine.tokens,
        "throughput_ratio": baseline.seconds / max(engine.seconds, 1e-9),
        "beam": _beam_report(models, requests, args),
    }


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
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip the verifiers (ASR, speaker)")
    parser.add_argument(
        "--verify-batch-size", type=int, default=VerifyOptions().batch_size, help="clips per ASR / speaker batch"
    )
    parser.add_argument(
        "--asr-tokens-per-second",
        type=float,
        default=DEFAULT_ASR_TOKENS_PER_SECOND,
        help="cap random Whisper's transcripts at this many tokens per second of the longest segment, what a real "
        "transcript takes (0: Whisper's own cap, 224 tokens, which random weights always reach)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.beam_segments is None:
        args.beam_segments = TINY_BEAM_SEGMENTS if args.size == "tiny" else 0
    if args.segments < 1 or args.batch_size < 1 or args.verify_batch_size < 1:
        parser.error("need --segments >= 1, --batch-size >= 1 and --verify-batch-size >= 1")
    if not 0 < args.min_seconds <= args.max_seconds:
        parser.error("need 0 < --min-seconds <= --max-seconds")
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
