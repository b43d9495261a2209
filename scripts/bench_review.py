"""How fast the review page opens on a long book: a synthetic job of 5,000 segments, no models.

The job is written straight through the job store, as a finished `synth` would leave it: the
recorded request and manuscript (so titles and thresholds are real), the plan, every segment done
with codes and a stored verdict (a share flagged, with a transcript that differs; some that hit
their length cap), each chapter's file (silent FLAC of the chapter's length: the page links real
files, and none is loaded before it is played) and the spans of its segments. `llasa review`'s
page writer then writes review.html, and headless Chromium (tests' flags, a fresh profile) opens
it from disk a few times: from navigation to the first page of cards drawn
(`document.body.dataset.ready`, set by the page's script). Also reported: the time to write the
page and its size.

    python scripts/bench_review.py                      # 5,000 segments in 40 chapters
    python scripts/bench_review.py --segments 500 --screenshot docs/review.png
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from llasa_cli.constants import CODES_PER_SECOND, SAMPLE_RATE
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.job.records import OutputRecord, PlanRow
from llasa_cli.job.review_state import SegmentSpan
from llasa_cli.options import StitchOptions, VerifyOptions
from llasa_cli.pipeline.job_folder import WORK_DIR_NAME, open_job
from llasa_cli.pipeline.request import RunRequest
from llasa_cli.pipeline.review_page import ReviewJob, write_review_page
from llasa_cli.pipeline.run import load_plan, read_input
from llasa_cli.testing.browser import chromium_missing, headless_chromium
from llasa_cli.verify.verdict import Verdict

WORDS = [
    "the",
    "keeper",
    "climbed",
    "stairs",
    "at",
    "dusk",
    "and",
    "lit",
    "lamp",
    "while",
    "rain",
    "came",
    "sideways",
    "over",
    "glass",
    "of",
    "old",
    "tower",
]
FLAGGED_EVERY = 12  # about 8 % flagged
CAPPED_EVERY = 31  # about 3 % hit their length cap
READY_SCRIPT = "return document.body.dataset.ready === 'true'"


def manuscript(segments: int, chapters: int, rng: np.random.Generator) -> str:
    """`segments` one-sentence paragraphs under `chapters` headings (each heading is a segment too)."""
    lines: list[str] = []
    per_chapter = max(1, segments // chapters - 1)
    for chapter in range(1, chapters + 1):
        lines.append(f"Chapter {chapter}\n")
        for _ in range(per_chapter):
            words = rng.choice(WORDS, size=int(rng.integers(6, 18)))
            lines.append(" ".join(words).capitalize() + ".\n")
    return "\n".join(lines)


def verdict(text: str, index: int, options: VerifyOptions) -> tuple[Verdict, bool]:
    flagged = index % FLAGGED_EVERY == 0
    words = text.lower().rstrip(".").split()
    if flagged:
        words[len(words) // 2] = "lamb"
    wer = 1 / len(words) if flagged else 0.0
    failures = ("wer",) if wer > options.max_wer else ()
    metrics = {"wer": wer, "similarity": 0.9, "seconds_per_char": 0.07}
    return Verdict(not failures, 1.0 - wer, metrics, failures, " ".join(words)), bool(failures)


def build_job(folder: Path, segments: int, chapters: int) -> Path:
    rng = np.random.default_rng(7)
    book = folder / "long-book.txt"
    book.write_text(manuscript(segments, chapters, rng))
    out = folder / "out"
    options = VerifyOptions(max_wer=0.05)
    request = RunRequest(source=str(book), output=str(out), verify=options, stitch=StitchOptions(format="flac"))
    text = read_input(request)
    plan = load_plan(request, text)
    out.mkdir(parents=True)
    with open_job(request, text) as store:
        store.save_voice(VoicePrompt(codes=np.arange(50), text="Hi."))
        keys = {s.segment_id: hashlib.sha256(f"{s.segment_id} {s.text}".encode()).hexdigest() for s in plan.segments}
        store.sync_plan([PlanRow.from_segment(keys[s.segment_id], s) for s in plan.segments])
        for number, segment in enumerate(plan.segments):
            codes = rng.integers(0, 65_536, size=max(1, round(segment.est_seconds * CODES_PER_SECOND)))
            judged, flagged = verdict(segment.text, number, options)
            store.record_done(keys[segment.segment_id], codes, attempts=1 + flagged, scores=judged.to_dict(),
                              timings={"seconds": 0.5}, hit_cap=number % CAPPED_EVERY == 0, worker="bench",
                              flagged=flagged)  # fmt: skip
        for chapter in plan.chapters:
            spans, position = [], StitchOptions().lead_in
            for segment in plan.segments_of(chapter.number):
                spans.append(SegmentSpan(chapter.number, segment.index, keys[segment.segment_id], position,
                                         position + segment.est_seconds))  # fmt: skip
                position += segment.est_seconds + StitchOptions().sentence_pause
            path = out / f"{chapter.slug}.flac"
            sf.write(path, np.zeros(round(position * SAMPLE_RATE), dtype=np.int16), SAMPLE_RATE, subtype="PCM_16")
            store.record_spans(chapter.number, spans)
            name = Path("..", path.name).as_posix()
            store.record_outputs([OutputRecord(name, "flac", chapter.number, chapter.slug, None)])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=5_000)
    parser.add_argument("--chapters", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the page here (PNG)")
    args = parser.parse_args()
    if (reason := chromium_missing()) is not None:
        print(f"bench_review: {reason}", file=sys.stderr)
        return 1
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="llasa-bench-review-") as temp:
        started = time.perf_counter()
        out = build_job(Path(temp), args.segments, args.chapters)
        built = time.perf_counter() - started
        started = time.perf_counter()
        page = write_review_page(ReviewJob(out / WORK_DIR_NAME, out))
        written = time.perf_counter() - started
        size_mb = page.stat().st_size / 1e6
        browser = headless_chromium(Path(temp) / "profile")
        try:
            opened = []
            for _ in range(args.repeats):
                browser.get("about:blank")
                browser.get(page.as_uri())
                WebDriverWait(browser, 60, poll_frequency=0.01).until(lambda d: d.execute_script(READY_SCRIPT))
                # The page marks when its first page of cards is drawn, in ms from this navigation's start.
                opened.append(browser.execute_script("return performance.getEntriesByName('ready')[0].startTime"))
            cards = browser.execute_script("return document.querySelectorAll('#segments .segment').length")
            total = browser.execute_script("return JSON.parse(document.getElementById('review-data').textContent)"
                                           ".segments.length")  # fmt: skip
            if args.screenshot:
                browser.save_screenshot(str(args.screenshot))
        finally:
            browser.quit()
    print(f"job: {total} segments in {args.chapters} chapters, built in {built:.1f} s (not timed below)")
    print(f"page written in {written:.2f} s ({size_mb:.1f} MB), first page shows {cards} cards")
    print(f"opened in headless Chromium: median {statistics.median(opened) / 1000:.2f} s, "
          f"max {max(opened) / 1000:.2f} s over {len(opened)} loads")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
