"""Scale-out measured: the job store's claim+record rate, and one book on 1, 2 (, 4) CPU workers.

1. The store. A driver or a worker spends, per batch, one `claim` (a window of pending keys,
   leased in one transaction), one `takes`, and one `record_done` per segment (one transaction
   each, committed with `synchronous=FULL`): exactly what `dispatch._Drive` does for `--ray` and
   what each `--devices` worker does. This loop runs on a temporary store, with codes of a
   10-second segment (500 codes) and a verdict-sized score dict, in one process and in two
   processes sharing the store (the `--devices` case: SQLite's lock is contended). The result
   is set against what a GPU cluster asks of the store: `--gpu-segment-ms` per segment per GPU
   (Llasa-1B on an H100 writes one every few tens of milliseconds, batched), for 8 and 64 GPUs.

2. The workers. One book (`--segments` segments) spoken by `llasa synth --devices cpu` with
   1, 2 (and, on a larger machine, 4) workers on the tiny test models, `--no-verify`; the rate
   is segments per second between the first `start` and the last `done` in the job's log (so
   model loading is left out), and the wall time of the whole command beside it.

    HF_HUB_OFFLINE=1 python scripts/bench_workers.py                       # store + 1 and 2 workers
    HF_HUB_OFFLINE=1 python scripts/bench_workers.py --workers 1 2 4 --segments 48
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402

from llasa_cli.job.store import JobStore  # noqa: E402

CODES_PER_SEGMENT = 500  # 10 s of speech at 50 codes per second
LEASE_SECONDS = 900.0
CLAIM_WINDOW_BATCHES = 4  # as dispatch.py
GPU_COUNTS = (8, 64)
SCORES = {  # about the size of a verdict's to_dict()
    "passed": True,
    "score": 0.93,
    "metrics": {"wer": 0.04, "cer": 0.02, "similarity": 0.81, "snr_db": 31.0, "pace": 1.02, "rms_db": -21.3},
    "failures": [],
    "transcript": "the tide came in and the gulls cried over the harbour wall",
}
SENTENCES = (
    "The tide came in.",
    "Gulls cried over the wall, one after another, as the light went.",
    "She lit the lamp.",
    "The wind rose and the shutters knocked against the stone.",
    "Morning came at last.",
    "Nobody had slept, and the boat was gone from the rocks.",
)


# --- the store ----------------------------------------------------------------


def store_loop(folder: str, keys: list[str], batch: int, worker: str) -> int:
    """Claim and record batches until no key is left to claim; the number this worker recorded."""
    codes = np.arange(CODES_PER_SEGMENT, dtype=np.int64) % 65_536
    timings = {"seconds": 0.5, "verify_seconds": 0.1, "search": None}
    recorded = 0
    with JobStore.open(Path(folder)) as store:
        remaining = list(keys)
        while remaining:
            window = remaining[: batch * CLAIM_WINDOW_BATCHES]
            claimed = store.claim(window, worker, LEASE_SECONDS, limit=batch)
            store.takes(claimed)
            for key in claimed:
                recorded += store.record_done(
                    key, codes, attempts=1, scores=SCORES, timings=timings, hit_cap=False, worker=worker
                )
            # Nothing claimable in the window: the other process holds or has finished all of it.
            gone = set(claimed) if claimed else set(window)
            remaining = [key for key in window if key not in gone] + remaining[len(window) :]
    return recorded


def _store_worker(args: tuple[str, list[str], int, str]) -> int:
    return store_loop(*args)


def store_rate(segments: int, batch: int, processes: int) -> dict[str, float]:
    keys = [f"{n:064x}" for n in range(segments)]
    with tempfile.TemporaryDirectory(prefix="llasa-bench-store-") as folder:
        JobStore.open(Path(folder)).close()
        started = time.perf_counter()
        if processes == 1:
            recorded = store_loop(folder, keys, batch, "bench:1:a")
        else:
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                recorded = sum(
                    pool.map(_store_worker, [(folder, keys, batch, f"bench:{n}:a") for n in range(processes)])
                )
        seconds = time.perf_counter() - started
    assert recorded == segments, f"recorded {recorded} of {segments}"
    return {"seconds": seconds, "segments_per_second": segments / seconds, "ms_per_segment": 1000 * seconds / segments}


# --- the workers --------------------------------------------------------------


def write_book(path: Path, segments: int, chapters: int = 4) -> None:
    """`segments` segments: each chapter's spoken title, then one sentence per paragraph."""
    per_chapter = max(2, segments // chapters)
    paragraphs = []
    for chapter in range(chapters):
        paragraphs.append(f"Chapter {chapter + 1}")
        paragraphs += [  # each its own text: equal texts share one key and are spoken once
            f"{SENTENCES[(chapter + n) % len(SENTENCES)]} That was hour {n + 1} of night {chapter + 1}."
            for n in range(per_chapter - 1)
        ]
    path.write_text("\n\n".join(paragraphs) + "\n")


def worker_rate(book: Path, models: Path, workers: int, batch: int, out: Path) -> dict[str, float]:
    command = [
        sys.executable, "-m", "llasa_cli", "synth", str(book), "-o", str(out), "--model", str(models / "llasa"),
        "--codec", str(models / "xcodec2"), "--devices", ",".join(["cpu"] * workers), "--no-verify",
        "--batch-size", str(batch), "--max-segment-seconds", "4", "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the workers share the cores out
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"llasa synth failed ({result.returncode}): {result.stderr[-2000:]}")
    summary = [json.loads(line) for line in result.stdout.splitlines() if '"summary"' in line][-1]
    stamps, pids = [], set()
    for line in (out / ".llasa" / "llasa.log").read_text().splitlines():
        words = line.split()
        if len(words) > 2 and words[2] in ("start", "done"):
            stamps.append(datetime.strptime(words[0], "%Y-%m-%dT%H:%M:%S").timestamp())
            pids.add(words[1])
    window = max(1.0, max(stamps) - min(stamps) + 1.0)  # the log stamps whole seconds
    done = summary["segments_generated"]
    return {"workers_seen": len(pids), "segments": done, "seconds": window, "segments_per_second": done / window,
            "wall_seconds": wall, "audio_seconds": summary["audio_seconds"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--segments", type=int, default=48, help="segments of the book the workers speak")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--store-segments", type=int, default=5000)
    parser.add_argument("--store-batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--store-processes", type=int, nargs="+", default=[1, 2, 4], help="processes sharing it")
    parser.add_argument("--gpu-segment-ms", type=float, default=30.0, help="ms per segment per GPU (Llasa-1B, H100)")
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}")
    need = 1000.0 / args.gpu_segment_ms
    print(f"a GPU cluster asks the store for {need:.0f} segments/s per GPU (one every {args.gpu_segment_ms:g} ms): "
          + ", ".join(f"{n} GPUs {n * need:,.0f}/s" for n in GPU_COUNTS))  # fmt: skip
    print(f"store: claim (window of {CLAIM_WINDOW_BATCHES} batches) + takes + record_done per segment "
          f"({CODES_PER_SEGMENT} codes), {args.store_segments} segments, "
          f"temporary store in {tempfile.gettempdir()}")  # fmt: skip
    print(f"{'batch':>6} {'processes':>9} {'seconds':>8} {'segments/s':>11} {'ms/segment':>11} " + " ".join(
        f"{'x ' + str(n) + ' GPUs':>10}" for n in GPU_COUNTS))  # fmt: skip
    for batch in args.store_batches:
        for processes in args.store_processes:
            rate = store_rate(args.store_segments, batch, processes)
            headroom = " ".join(f"{rate['segments_per_second'] / (n * need):>10.1f}" for n in GPU_COUNTS)
            print(f"{batch:>6} {processes:>9} {rate['seconds']:>8.2f} {rate['segments_per_second']:>11,.0f} "
                  f"{rate['ms_per_segment']:>11.2f} {headroom}")  # fmt: skip
    if args.skip_workers:
        return

    from llasa_cli.testing.tiny_models import build_tiny_models

    with tempfile.TemporaryDirectory(prefix="llasa-bench-workers-") as folder:
        root = Path(folder)
        models = build_tiny_models(root / "models").root
        book = root / "book.txt"
        write_book(book, args.segments)
        print(f"workers: one book, {args.segments} segments, tiny models, --batch-size {args.batch_size}, --no-verify")
        header = ("workers", 7), ("seen", 5), ("segments", 8), ("synth s", 8), ("segments/s", 11), ("speedup", 8)
        print(" ".join(f"{name:>{width}}" for name, width in header) + f" {'wall s':>7}")
        first = None
        for workers in args.workers:
            rate = worker_rate(book, models, workers, args.batch_size, root / f"out-{workers}")
            first = first or rate["segments_per_second"]
            print(f"{workers:>7} {rate['workers_seen']:>5} {rate['segments']:>8} {rate['seconds']:>8.1f} "
                  f"{rate['segments_per_second']:>11.2f} {rate['segments_per_second'] / first:>8.2f} "
                  f"{rate['wall_seconds']:>7.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
