"""Time one decode step of the language model with the cache llasa-cli uses and the alternatives.

The issue asks to evaluate transformers' static cache and torch.compile "where they pay". This
measures, for each batch size, the milliseconds of one whole decode step (output head, sampling,
one token through the model) after a prompt of `--prompt-tokens`:

- **dynamic**: llasa-cli's loop as it is (`DynamicCache`, which grows by concatenation);
- **static**: a preallocated `StaticCache` (no reallocation per step, fixed shapes);
- **static+compile**: the same with the model body under `torch.compile` (`reduce-overhead`,
  CUDA graphs, on CUDA; the default mode elsewhere). Compilation and warm-up are timed apart.

It also checks that the caches compute the same thing: the static modes are fed the dynamic mode's
codes (teacher forcing) and their logits must match its logits within float rounding
(`LOGIT_TOLERANCE`, on a fixed slice of the vocabulary). Whether each mode would have drawn the same
codes on its own is reported too, but not required: random weights put near-ties among 65,537 ids,
where a last-bit difference from a longer masked key range picks the neighbouring id. Random
weights, no download:

    HF_HUB_OFFLINE=1 python scripts/bench_decode_step.py --size 1b --device cuda --batch-sizes 1,16,64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

MODES = ("dynamic", "static", "static+compile")
WARMUP_STEPS = 3
COMPARED_LOGITS = 1024  # the vocabulary slice whose logits are compared between modes
LOGIT_TOLERANCE = {"float32": 1e-3}  # others (bfloat16, float16): LOW_PRECISION_TOLERANCE
LOW_PRECISION_TOLERANCE = 0.1


def _prompts(generator: Any, rows: int, prompt_tokens: int) -> list[list[int]]:
    """`rows` prompts of about `prompt_tokens` ids: a voice prompt of speech codes and a short text."""
    from llasa_cli.engine.protocols import VoicePrompt

    base = len(generator.prompt_ids("A line.", VoicePrompt(codes=np.zeros(1, dtype=np.int64), text="Hi.")))
    codes = np.arange(max(1, prompt_tokens - base), dtype=np.int64) % 4096
    voice = VoicePrompt(codes=codes, text="Hi.")
    return [generator.prompt_ids(f"Line number {row} of the batch.", voice) for row in range(rows)]


class Stepper:
    """Prefill once, then one decode step at a time with the chosen cache (greedy or sampled)."""

    def __init__(self, generator: Any, mode: str, max_len: int) -> None:
        self.g, self.mode, self.max_len = generator, mode, max_len
        self.body = generator._base
        if mode == "static+compile":
            import torch

            compile_mode = "reduce-overhead" if generator.device.type == "cuda" else None
            self.body = torch.compile(generator._base, mode=compile_mode, dynamic=False)

    def prefill(self, prompts: list[list[int]]) -> None:
        import torch
        from transformers import DynamicCache, StaticCache

        from llasa_cli.engine.generator import _left_pad

        ids, mask = _left_pad(prompts, self.g._pad_id, self.g.device)
        self.width = ids.shape[1]
        ones = torch.ones((ids.shape[0], self.max_len - self.width), dtype=mask.dtype, device=mask.device)
        self.full_mask = torch.cat([mask, ones], dim=-1)  # positions not written yet are kept out by causality
        config = self.g.model.config
        static = self.mode != "dynamic"
        self.cache = StaticCache(config=config, max_cache_len=self.max_len) if static else DynamicCache(config=config)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.hidden = self._run(self.g._base, ids, positions, 0)  # the prompt never goes through compile
        self.next_position = positions[:, -1:] + 1
        self.written = self.width

    def step(self, seeds: Sequence[int], index: int, forced: Any = None) -> tuple[Any, Any, Any]:
        """One step: the code drawn, the code fed on (`forced` when given), and a slice of the logits."""
        from llasa_cli.engine.sampling import sample_next

        logits = self.g._head(self.hidden)
        choice = sample_next(logits, self.g.sampling, seeds, index)
        fed = choice if forced is None else forced
        ids = self.g._allowed[fed].unsqueeze(-1)
        self.hidden = self._run(self.body, ids, self.next_position, self.written)
        self.next_position = self.next_position + 1
        self.written += 1
        return choice, fed, logits[:, :COMPARED_LOGITS].float().cpu()

    def _run(self, body: Any, ids: Any, positions: Any, start: int) -> Any:
        import torch

        end = start + ids.shape[1]
        mask = self.full_mask if self.mode != "dynamic" else self.full_mask[:, :end]
        cache_position = torch.arange(start, end, device=ids.device)
        out = body(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            cache_position=cache_position,
            **{self.g._cache_kwarg: self.cache},
        )
        return out.last_hidden_state[:, -1]


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_mode(generator: Any, mode: str, rows: int, args: argparse.Namespace, forced: Any = None) -> dict[str, Any]:
    """ms per step after warm-up, the warm-up's seconds, the codes drawn and fed, and logit slices.
    With `forced` (a [rows, steps] tensor of codes), those codes are fed on instead of the drawn ones."""
    import torch

    prompts = _prompts(generator, rows, args.prompt_tokens)
    stepper = Stepper(generator, mode, max(len(p) for p in prompts) + WARMUP_STEPS + args.steps + 1)
    seeds = list(range(rows))

    def steps(first: int, count: int) -> list[tuple[Any, Any, Any]]:
        return [stepper.step(seeds, i, None if forced is None else forced[:, i]) for i in range(first, first + count)]

    with torch.inference_mode():
        stepper.prefill(prompts)
        began = time.perf_counter()
        taken = steps(0, WARMUP_STEPS)
        _synchronize(generator.device)
        warmup = time.perf_counter() - began
        began = time.perf_counter()
        taken += steps(WARMUP_STEPS, args.steps)
        _synchronize(generator.device)
        seconds = time.perf_counter() - began
    ms = 1000 * seconds / args.steps
    return {
        "mode": mode,
        "rows": rows,
        "ms_per_step": ms,
        "tokens_per_s": rows * 1000 / ms,
        "warmup_s": warmup,
        "codes": torch.stack([drawn for drawn, _, _ in taken], dim=1).cpu(),
        "fed": torch.stack([fed for _, fed, _ in taken], dim=1),
        "logits": torch.stack([logits for _, _, logits in taken], dim=1),
    }


def _load(folder: Path, args: argparse.Namespace) -> Any:
    from bench_models import build_lm

    from llasa_cli.engine.devices import pick_device
    from llasa_cli.engine.loading import load_generator
    from llasa_cli.options import EngineOptions, SamplingOptions

    device, _ = pick_device(args.device)
    build_lm(folder / "llasa", args.size, device)
    sampling = SamplingOptions(temperature=0.0) if args.greedy else SamplingOptions()
    return load_generator(EngineOptions(model=str(folder / "llasa"), device=device, dtype=args.dtype), sampling)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        generator = _load(Path(folder), args)
    tolerance = LOGIT_TOLERANCE.get(str(generator.model.dtype).removeprefix("torch."), LOW_PRECISION_TOLERANCE)
    results = []
    for rows in args.batch_sizes:
        reference = time_mode(generator, args.modes[0], rows, args)
        by_mode = [reference] + [time_mode(generator, m, rows, args, reference["fed"]) for m in args.modes[1:]]
        for result in by_mode:
            gap = float((result["logits"] - reference["logits"]).abs().max())
            result["max_logit_gap"] = gap
            result["same_logits"] = gap <= tolerance
            result["same_codes_as_dynamic"] = bool(np.array_equal(result["codes"].numpy(), reference["codes"].numpy()))
        results.extend(by_mode)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    parser.add_argument("--batch-sizes", type=lambda text: [int(x) for x in text.split(",")], default=[1, 8])
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--modes", type=lambda text: text.split(","), default=list(MODES))
    parser.add_argument("--greedy", action="store_true", help="argmax instead of the default sampling")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.modes) - set(MODES)
    if unknown or not args.modes or args.modes[0] != "dynamic":
        parser.error(f"--modes: a comma list starting with 'dynamic', from {MODES}")
    return args


def _print(results: list[dict[str, Any]], emit: Callable[[str], None] = print) -> None:
    emit(f"{'mode':<16} {'rows':>5} {'ms/step':>9} {'tokens/s':>10} {'warm-up s':>10} {'logit gap':>10}  same codes")
    for r in results:
        emit(
            f"{r['mode']:<16} {r['rows']:>5} {r['ms_per_step']:9.2f} {r['tokens_per_s']:10.1f} "
            f"{r['warmup_s']:10.2f} {r['max_logit_gap']:10.2e}  {r['same_codes_as_dynamic']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    import json

    args = parse_args(argv)
    results = run(args)
    if args.json:
        arrays = ("codes", "fed", "logits")
        print(json.dumps([{k: v for k, v in r.items() if k not in arrays} for r in results], indent=2))
    else:
        _print(results)
    return 0 if all(r["same_logits"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
