"""Time verifier-guided search against plain sampling on the same segments, in one run.

Builds the tiny random models (no download), then runs, on the same segments:
plain `LlasaGenerator.generate`, `--beam 1` (search_segments in plain mode, the same codes) and
`--beam N` (default 5, M=2 candidates per beam, 1 s steps), and optionally `--best-of N`.
The scorers are the pipeline's own (`search.make_scorers`) with the signal checks only:
they decode candidates with the tiny X-Codec2 (partial ones: their newest 3 s) and run the
model-free checks, so decode time is part of the scorer time; the ASR and speaker models'
time is not (see `scripts/bench.py` for that). `--no-codec` scores the codes directly.

    HF_HUB_OFFLINE=1 python scripts/bench_search.py [--segments 4] [--seconds 2] [--beam 5]

The tiny LM never emits the end token, so every candidate runs to its cap: the worst case
for search (no beam finishes early).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from llasa_cli.constants import CODES_PER_SECOND  # noqa: E402
from llasa_cli.engine.protocols import GenerationRequest, SpeechCodec  # noqa: E402
from llasa_cli.options import (
    SamplingOptions,  # noqa: E402
    SearchOptions,  # noqa: E402
)
from llasa_cli.search.segment_search import Candidate, search_segments  # noqa: E402

TEXTS = (
    "The lighthouse stood at the edge of the world.",
    "Every night the keeper climbed the stairs.",
    "Ships passed, and nobody thanked him.",
    "In the morning the sea was calm again.",
    "He wrote the weather in a small grey book.",
    "Gulls argued on the rocks below.",
    "A letter came once a month, by boat.",
    "Winter was long, and the lamp was bright.",
)
TARGET_RMS = 0.1


@dataclass
class SignalScorer:
    """Decodes candidates (equal-length groups batch) and scores closeness of their RMS to a target."""

    codec: SpeechCodec | None
    codec_seconds: float = 0.0  # running decode time, booked per segment by the search's statistics

    def score(self, items: Sequence[Candidate]) -> list[float]:
        if self.codec is None:
            return [-float(np.std(item.codes)) for item in items]
        begin = time.perf_counter()
        audio = self.codec.decode([item.codes for item in items])
        self.codec_seconds += time.perf_counter() - begin
        return [-abs(float(np.sqrt(np.mean(a**2))) - TARGET_RMS) if a.size else -1.0 for a in audio]


def _scorers(codec: SpeechCodec | None) -> tuple[Any, Any]:
    """(partial, final): the pipeline's signal-check scorers, or code statistics without a codec."""
    if codec is None:
        return SignalScorer(None), SignalScorer(None)
    from llasa_cli.options import ScoreWeights
    from llasa_cli.search.scorers import make_scorers
    from llasa_cli.verify.composite import CompositeVerifier

    scorers = make_scorers(codec, ScoreWeights(), CompositeVerifier.signal_only("en"))
    return scorers.partial, scorers.final


def _run(label: str, call) -> tuple[str, float, list, float]:
    """(label, wall seconds, results, CPU seconds of this process: steadier on a shared machine)."""
    begin, cpu = time.perf_counter(), time.process_time()
    results = call()
    return label, time.perf_counter() - begin, results, time.process_time() - cpu


def _row(label: str, seconds: float, results: list, cpu: float, plain: tuple[float, float]) -> str:
    if results and hasattr(results[0], "stats"):
        stats = [r.stats for r in results]
        lm = sum(s.lm_seconds for s in stats)
        scorers = sum(s.partial_scorer_seconds + s.final_scorer_seconds for s in stats)
        codec = sum(s.codec_seconds for s in stats)
        tokens = sum(s.tokens_generated for s in stats)
        forward = max(s.lm_forward_calls for s in stats)
        extra = f"{lm:8.2f} {scorers:9.2f} {codec:8.2f} {tokens:8d} {forward:8d}"
    else:
        extra = f"{'':>8} {'':>9} {'':>8} {sum(r.new_tokens for r in results):8d} {'':>8}"
    return f"{label:<22} {seconds:8.2f} {seconds / plain[0]:6.2f}x {cpu:8.2f} {cpu / plain[1]:6.2f}x {extra}"


def _print(args: argparse.Namespace, threads: int, cap: int, step_tokens: int, no_codec: bool, runs: list) -> None:
    print(
        f"tiny Llasa on CPU ({threads} threads), top-p {args.top_p}, "
        f"{args.segments} segments x {cap} tokens, "
        f"step {step_tokens} tokens, "
        f"scorers: {'codes only' if no_codec else 'tiny X-Codec2 + signal checks'}, "
        f"least CPU of {max(1, args.repeats)} interleaved round(s)"
    )
    print(
        f"{'mode':<22} {'wall s':>8} {'ratio':>7} {'CPU s':>8} {'ratio':>7} "
        f"{'LM s':>8} {'scorers s':>9} {'codec s':>8} {'tokens':>8} {'forward':>8}"
    )
    plain = (runs[0][1], runs[0][3])
    for label, seconds, results, cpu in runs:
        print(_row(label, seconds, results, cpu, plain))
    same = all(np.array_equal(a.codes, b.codes) for a, b in zip(runs[0][2], runs[1][2], strict=True))
    print(f"--beam 1 gives the same codes as generate: {same}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0, help="token cap per segment, in seconds of speech")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--beam-candidates", type=int, default=2)
    parser.add_argument("--beam-step-seconds", type=float, default=1.0)
    parser.add_argument("--best-of", type=int, default=0, help="also time --best-of N (0: skip)")
    parser.add_argument("--no-codec", action="store_true", help="score codes directly, without decoding")
    parser.add_argument("--top-p", type=float, default=SamplingOptions().top_p)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of every mode, interleaved; the one with least CPU time counts"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    import torch

    from llasa_cli.engine.candidates import LmCandidateGenerator
    from llasa_cli.engine.loading import load_codec, load_generator
    from llasa_cli.options import EngineOptions
    from llasa_cli.testing.tiny_models import build_tiny_models

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        models = build_tiny_models(folder)
        generator = load_generator(
            EngineOptions(model=str(models.llasa), device="cpu"), SamplingOptions(top_p=args.top_p)
        )
        codec = None if args.no_codec else load_codec(str(models.xcodec2), "cpu")
    cap = round(args.seconds * CODES_PER_SECOND)
    requests = [
        GenerationRequest(TEXTS[i % len(TEXTS)], seed=100 + i, max_new_tokens=cap) for i in range(args.segments)
    ]
    partial, final = _scorers(codec)
    lm = LmCandidateGenerator(generator)
    generator.generate(requests[:1])  # warm up
    beam = SearchOptions(beam=args.beam, beam_candidates=args.beam_candidates, beam_step_seconds=args.beam_step_seconds)
    modes = [
        ("generate (plain)", lambda: generator.generate(requests)),
        ("--beam 1 (search)", lambda: search_segments(requests, lm, None, None, SearchOptions())),
        (f"--beam {args.beam} M={args.beam_candidates}", lambda: search_segments(requests, lm, partial, final, beam)),
    ]
    if args.best_of > 1:
        best_of = SearchOptions(best_of=args.best_of)
        modes.append((f"--best-of {args.best_of}", lambda: search_segments(requests, lm, None, final, best_of)))
    rounds = [[_run(label, call) for label, call in modes] for _ in range(max(1, args.repeats))]
    runs = [min(timings, key=lambda run: run[3]) for timings in zip(*rounds, strict=True)]
    _print(args, torch.get_num_threads(), cap, beam.step_tokens, codec is None, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
