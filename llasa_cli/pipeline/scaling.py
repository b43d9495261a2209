"""`llasa scaling`: does verifier-guided search pay on this book, with these models and verifiers?

The study speaks the same segments (a seeded sample spread over the book) once per setting, plain
sampling (N = 1) and `--beam N` / `--best-of N` for each N asked, exactly as `synth` would: the same
`Synthesizer.renderer_for` wiring of verifier and scorers, the same seeds (so N = 1 is the very
take a plain run makes), no retries (a retry is more compute, spent where it would blur the
curve). Each setting gets a fresh verifier, as a run does. Per setting it reports the chosen
takes' mean WER (CER for Chinese), mean speaker similarity, share flagged and mean verdict score,
and what they cost: LM tokens generated, codec seconds, verifier seconds, wall seconds, and the
real-time factor (wall seconds per second of speech chosen).

The judge is the run's own verifier, which is also what the search ranks by: a search always looks
somewhat better to it than to a listener. In a world where the truth is known
(llasa_cli/testing/known_world.py, scripts/scaling_world.py, docs/scaling.md) the gain holds up.

The recommendation is the cheapest setting (lowest real-time factor) whose mean score is within
`ScalingOptions.margin` of the best. Where every setting is within the margin the curve is flat:
the verifiers cannot tell these models' candidates apart (the tiny random models, say), and plain
sampling is recommended.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import SAMPLE_RATE
from ..engine.protocols import CandidateGenerator, SpeechCodec, SpeechGenerator, VoicePrompt
from ..errors import InvalidOptionError, OutputError
from ..options import (
    MODE_BEAM,
    MODE_BEST_OF,
    MODE_PLAIN,
    EngineOptions,
    SamplingOptions,
    ScalingOptions,
    SearchOptions,
)
from ..text.plan import Plan, Segment
from ..verify.verdict import CER, SIMILARITY, WER, SegmentVerifier, Verdict, VerifyItem
from .renderer import Outcome
from .request import RunRequest
from .synthesizer import SearchSetup, Synthesizer, VerifierSetup

SCALING_JSON = "scaling.json"
SCALING_PNG = "scaling.png"
PLOT_INCHES = (13.5, 4.0)
PLOT_DPI = 100  # the PNG is PLOT_INCHES * PLOT_DPI pixels
X_RTF = "rtf"
X_LM_TOKENS = "lm_tokens"
X_LABELS = {X_RTF: "real-time factor (wall seconds per second of speech)", X_LM_TOKENS: "LM tokens per segment"}
PANELS = (
    ("mean_score", "mean verdict score"),
    ("mean_wer", "mean WER"),
    ("mean_similarity", "mean speaker similarity"),
)
# Each panel spans at least this much, so that a flat curve looks flat rather than magnified.
MIN_Y_SPAN = 0.05
MATPLOTLIB_MISSING = (
    "llasa scaling draws scaling.png with matplotlib, which is not installed: pip install 'llasa-cli[scaling]'"
)
_MODE_NAMES = {MODE_PLAIN: "plain", MODE_BEAM: "beam", MODE_BEST_OF: "best-of"}


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One point of the curve: plain sampling (N = 1), or `--beam N` / `--best-of N`."""

    mode: str
    n: int

    @property
    def label(self) -> str:
        return "plain" if self.n == 1 else f"{_MODE_NAMES[self.mode]} {self.n}"

    def search_options(self, base: SearchOptions) -> SearchOptions:
        beam = self.n if self.mode == MODE_BEAM else 1
        return dataclasses.replace(base, beam=beam, best_of=self.n if self.mode == MODE_BEST_OF else 1)


def settings_for(options: ScalingOptions) -> list[Setting]:
    """Plain sampling once (when N = 1 is asked: both modes share it), then each mode's N in order."""
    plain = [Setting(MODE_PLAIN, 1)] if 1 in options.widths else []
    return plain + [Setting(mode, n) for mode in options.modes for n in sorted(options.widths) if n > 1]


def sample_segments(plan: Plan, count: int, seed: int) -> list[Segment]:
    """`count` narrator segments spread over the book: one drawn at random (seeded) from each of
    `count` equal runs of its segments, in book order. Spoken chapter titles count only in a book of nothing else."""
    pool = [s for s in plan.segments if s.voice is None and not s.is_title] or [
        s for s in plan.segments if s.voice is None
    ]
    if not pool:
        raise InvalidOptionError("the book has no narrator's segments to measure")
    if count >= len(pool):
        return pool
    draw = random.Random(seed)
    return [pool[draw.choice(run)] for run in np.array_split(np.arange(len(pool)), count)]


# -- what each setting costs -------------------------------------------------------------


@dataclass
class Meter:
    """Seconds spent decoding codes and verifying audio (running totals)."""

    codec_seconds: float = 0.0
    verifier_seconds: float = 0.0


class MeteredCodec:
    """A `SpeechCodec` that books its decoding time on a `Meter`."""

    def __init__(self, codec: SpeechCodec, meter: Meter) -> None:
        self.codec = codec
        self.meter = meter

    def decode(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        begin = time.perf_counter()
        try:
            return self.codec.decode(codes)
        finally:
            self.meter.codec_seconds += time.perf_counter() - begin

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.codec.encode(audio)


class MeteredVerifier:
    """A `SegmentVerifier` that books its time on a `Meter` (its partial-speech form too)."""

    def __init__(self, verifier: SegmentVerifier, meter: Meter) -> None:
        self.verifier = verifier
        self.meter = meter

    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        begin = time.perf_counter()
        try:
            return self.verifier.verify(items)
        finally:
            self.meter.verifier_seconds += time.perf_counter() - begin

    def for_partial_speech(self) -> MeteredVerifier:
        return MeteredVerifier(self.verifier.for_partial_speech(), self.meter)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentResult:
    """The take a setting chose for one segment, as its verifier judged it."""

    segment_id: str
    text: str
    audio_seconds: float
    score: float
    passed: bool
    failures: tuple[str, ...]
    error_rate: float | None  # WER (CER for Chinese); None without ASR
    similarity: float | None  # None without the speaker check
    transcript: str | None  # what ASR heard; None without ASR
    codes: np.ndarray = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.segment_id,
            "audio_seconds": round(self.audio_seconds, 3),
            "score": _rounded(self.score),
            "passed": self.passed,
            "failures": list(self.failures),
            "error_rate": _rounded(self.error_rate),
            "similarity": _rounded(self.similarity),
            "transcript": self.transcript,
        }


@dataclass(frozen=True)
class Compute:
    lm_tokens: int  # tokens generated, every candidate's (the stop tokens too)
    codec_seconds: float
    verifier_seconds: float
    wall_seconds: float

    @property
    def lm_seconds(self) -> float:
        """The rest of the wall time: the language model (and the search's bookkeeping)."""
        return max(0.0, self.wall_seconds - self.codec_seconds - self.verifier_seconds)


@dataclass(frozen=True)
class SettingResult:
    setting: Setting
    segments: tuple[SegmentResult, ...]
    compute: Compute

    @property
    def mean_error_rate(self) -> float | None:
        return _mean([s.error_rate for s in self.segments])

    @property
    def mean_similarity(self) -> float | None:
        return _mean([s.similarity for s in self.segments])

    @property
    def mean_score(self) -> float:
        return float(np.mean([s.score for s in self.segments]))

    @property
    def flagged_share(self) -> float:
        return sum(not s.passed for s in self.segments) / len(self.segments)

    @property
    def audio_seconds(self) -> float:
        return sum(s.audio_seconds for s in self.segments)

    @property
    def rtf(self) -> float:
        return self.compute.wall_seconds / max(self.audio_seconds, 1e-9)

    @property
    def lm_tokens_per_segment(self) -> float:
        return self.compute.lm_tokens / len(self.segments)

    def to_json(self) -> dict[str, Any]:
        compute = self.compute
        return {
            "label": self.setting.label,
            "mode": _MODE_NAMES[self.setting.mode],
            "n": self.setting.n,
            "mean_score": _rounded(self.mean_score),
            "mean_wer": _rounded(self.mean_error_rate),
            "mean_similarity": _rounded(self.mean_similarity),
            "flagged_share": _rounded(self.flagged_share),
            "audio_seconds": _rounded(self.audio_seconds),
            "rtf": _rounded(self.rtf),
            "lm_tokens": compute.lm_tokens,
            "lm_tokens_per_segment": _rounded(self.lm_tokens_per_segment),
            "lm_seconds": _rounded(compute.lm_seconds),
            "codec_seconds": _rounded(compute.codec_seconds),
            "verifier_seconds": _rounded(compute.verifier_seconds),
            "wall_seconds": _rounded(compute.wall_seconds),
            "segments": [s.to_json() for s in self.segments],
        }


@dataclass(frozen=True)
class ScalingReport:
    results: tuple[SettingResult, ...]
    margin: float

    @property
    def best(self) -> SettingResult:
        """The highest mean score (the cheaper of equals)."""
        return max(self.results, key=lambda r: (r.mean_score, -r.rtf))

    @property
    def recommended(self) -> SettingResult:
        """The cheapest setting (real-time factor) within the margin of the best mean score."""
        good = [r for r in self.results if r.mean_score >= self.best.mean_score - self.margin]
        return min(good, key=lambda r: (r.rtf, r.setting.n))

    @property
    def flat(self) -> bool:
        scores = [r.mean_score for r in self.results]
        return max(scores) - min(scores) <= self.margin

    def summary(self) -> str:
        """One sentence: what to use, and why."""
        best, pick = self.best, self.recommended
        if len(self.results) > 1 and self.flat:
            return (
                f"the curve is flat: every setting's mean score is within {self.margin:g} of the best "
                f"({best.mean_score:.3f}), so the verifiers cannot tell these candidates apart (random test "
                "models, or samples already as good as the checks can judge) and search buys nothing here: "
                f"use {pick.setting.label}"
            )
        return (
            f"use {pick.setting.label}: the cheapest setting within {self.margin:g} of the best mean score "
            f"({best.setting.label}, {best.mean_score:.3f}; {pick.setting.label} {pick.mean_score:.3f} "
            f"at {pick.rtf:.2f}x real time)"
        )

    def to_json(self) -> dict[str, Any]:
        width, height = (round(side * PLOT_DPI) for side in PLOT_INCHES)
        return {
            "segments": [{"id": s.segment_id, "text": s.text} for s in self.results[0].segments],
            "settings": [r.to_json() for r in self.results],
            "margin": self.margin,
            "best": self.best.setting.label,
            "recommended": self.recommended.setting.label,
            "flat": self.flat,
            "summary": self.summary(),
            "plot": {
                "file": SCALING_PNG,
                "width": width,
                "height": height,
                "x": X_LABELS[X_RTF],
                "panels": [title for _, title in PANELS],
            },
        }


# -- the study ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyModels:
    """What the study speaks and judges with (loaded once for every setting)."""

    generator: SpeechGenerator
    codec: SpeechCodec
    candidates: CandidateGenerator | None
    verification: VerifierSetup


@dataclass(frozen=True)
class StudyPlan:
    """The segments, their voice, and the run's options that every setting shares."""

    segments: tuple[Segment, ...]
    voice: VoicePrompt
    sampling: SamplingOptions
    engine: EngineOptions  # a whole-number batch size: segments per batch
    search: SearchOptions  # beam candidates, step and score weights (beam and best-of are set per setting)
    lang: str = "en"


def run_study(
    models: StudyModels,
    plan: StudyPlan,
    options: ScalingOptions,
    on_result: Callable[[SettingResult], None] = lambda result: None,
) -> ScalingReport:
    """Every setting of `options` on the same segments and seeds; `on_result` hears each as it ends."""
    settings = settings_for(options)
    if models.candidates is None and any(s.n > 1 for s in settings):
        raise InvalidOptionError("--beam and --best-of need a language model that can branch (the Llasa model)")
    results = []
    for setting in settings:
        results.append(run_setting(models, plan, setting))
        on_result(results[-1])
    return ScalingReport(tuple(results), options.margin)


def run_setting(models: StudyModels, plan: StudyPlan, setting: Setting) -> SettingResult:
    """The segments spoken with one setting, as `synth` would (no retries), and what it cost."""
    meter = Meter()
    verification = VerifierSetup(
        dataclasses.replace(models.verification.options, retries=0),
        lambda reference: MeteredVerifier(models.verification.load(reference), meter),
    )
    search = None
    if setting.n > 1:
        assert models.candidates is not None
        search = SearchSetup(setting.search_options(plan.search), models.candidates, plan.lang)
    codec = MeteredCodec(models.codec, meter)
    synthesizer = Synthesizer(models.generator, codec, plan.sampling, plan.engine, verification, search)
    renderer = synthesizer.renderer_for(plan.voice, {})
    meter.codec_seconds = meter.verifier_seconds = 0.0  # the voice's reference is not the setting's work
    batch = max(1, int(plan.engine.batch_size))
    begin = time.perf_counter()
    outcomes: list[Outcome] = []
    for start in range(0, len(plan.segments), batch):
        segments = list(plan.segments[start : start + batch])
        outcomes += renderer.render_verified(segments, [plan.voice] * len(segments), [0] * len(segments))
    wall = time.perf_counter() - begin
    compute = Compute(sum(_tokens(o) for o in outcomes), meter.codec_seconds, meter.verifier_seconds, wall)
    chosen = tuple(_segment_result(s, o) for s, o in zip(plan.segments, outcomes, strict=True))
    return SettingResult(setting, chosen, compute)


def _tokens(outcome: Outcome) -> int:
    """Tokens the LM generated for a segment: every candidate's with search, else the take's (and its stop token)."""
    stats = outcome.item.search
    if stats is not None:
        return int(stats["tokens_generated"])
    result = outcome.item.result
    return int(result.new_tokens) + (0 if result.hit_cap else 1)


def _segment_result(segment: Segment, outcome: Outcome) -> SegmentResult:
    verdict = outcome.verdict
    if verdict is None:
        raise ValueError("the scaling study needs verified takes")
    metrics = verdict.metrics
    error = metrics.get(WER, metrics.get(CER))
    return SegmentResult(
        segment_id=segment.segment_id,
        text=segment.text,
        audio_seconds=outcome.item.audio.size / SAMPLE_RATE,
        score=float(verdict.score),
        passed=verdict.passed,
        failures=tuple(verdict.failures),
        error_rate=None if error is None else float(error),
        similarity=None if SIMILARITY not in metrics else float(metrics[SIMILARITY]),
        transcript=verdict.transcript,
        codes=outcome.item.result.codes,
    )


# -- a user's book ----------------------------------------------------------------------


def measure_scaling(
    request: RunRequest,
    options: ScalingOptions,
    outdir: Path,
    *,
    warn: Callable[[str], None] = lambda message: None,
    on_result: Callable[[SettingResult], None] = lambda result: None,
) -> ScalingReport:
    """The study on `request`'s book with its models, voice and verifier; scaling.json and
    scaling.png written into `outdir`. Without a voice, the narrator is fixed as `synth` fixes it."""
    from .run import check_models, engine_for, load_plan, make_verification, read_input, resolve_voice

    if not request.verify.enabled:
        raise InvalidOptionError("llasa scaling measures with the verifiers: leave out --no-verify")
    check_plotting()
    manuscript = read_input(request)
    plan = load_plan(request, manuscript)
    segments = sample_segments(plan, options.sample, request.sampling.seed)
    check_models(request)
    from ..engine.loading import load_speech_models

    models = load_speech_models(request.engine, request.sampling)
    if models.notice:
        warn(models.notice)
    engine = engine_for(request.engine, models)
    verification = make_verification(request, models.device)
    assert verification is not None  # verification is enabled
    voice = resolve_voice(request, models, warn=warn)
    if voice is None:
        _, voice = Synthesizer(models.generator, models.codec, request.sampling, engine).fix_narrator(plan)
    study = StudyPlan(tuple(segments), voice, request.sampling, engine, request.search, request.text.lang)
    report = run_study(
        StudyModels(models.generator, models.codec, models.candidates, verification), study, options, on_result
    )
    write_report(report, outdir)
    return report


# -- output ------------------------------------------------------------------------------


def check_plotting() -> None:
    """matplotlib is there to draw the plot (asked before minutes of synthesis, not after)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise OutputError(MATPLOTLIB_MISSING)


def write_report(report: ScalingReport, outdir: Path) -> tuple[Path, Path]:
    """scaling.json and scaling.png in `outdir` (made if missing)."""
    outdir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = outdir / SCALING_JSON, outdir / SCALING_PNG
    write_plot(report, png_path)
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return json_path, png_path


def write_plot(report: ScalingReport, path: Path, x: str = X_RTF, title: str | None = None) -> None:
    """Mean score, WER and similarity against `x` (X_RTF or X_LM_TOKENS), one line per mode (plain
    sampling starts each), each point labelled with its setting's N."""
    check_plotting()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PANELS), figsize=PLOT_INCHES, dpi=PLOT_DPI)
    for axis, (metric, label) in zip(axes, PANELS, strict=True):
        for mode, points in _lines(report).items():
            xs = [_x(point, x) for point in points]
            ys = [point.to_json()[metric] for point in points]
            if any(y is None for y in ys):
                continue
            axis.plot(xs, ys, marker="o", label=mode)
            for point, px, py in zip(points, xs, ys, strict=True):
                axis.annotate(f"N={point.setting.n}", (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8)
        _keep_span(axis, MIN_Y_SPAN)
        axis.set_xlabel(X_LABELS[x])
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title or _title(report), fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=PLOT_DPI)
    plt.close(figure)


def _title(report: ScalingReport) -> str:
    best, pick = report.best, report.recommended
    flat = ", the curve is flat" if len(report.results) > 1 and report.flat else ""
    return (
        f"{len(best.segments)} segments: best {best.setting.label} (score {best.mean_score:.3f}), "
        f"recommended {pick.setting.label} (within {report.margin:g}){flat}"
    )


def _keep_span(axis: Any, span: float) -> None:
    """Widen an axis to at least `span`, so that differences too small to matter look small."""
    low, high = axis.get_ylim()
    if high - low < span:
        middle = (low + high) / 2
        axis.set_ylim(middle - span / 2, middle + span / 2)


def _lines(report: ScalingReport) -> dict[str, list[SettingResult]]:
    plain = [r for r in report.results if r.setting.mode == MODE_PLAIN]
    searched = [r for r in report.results if r.setting.mode != MODE_PLAIN]
    lines: dict[str, list[SettingResult]] = {}
    for result in searched:
        lines.setdefault(_MODE_NAMES[result.setting.mode], list(plain)).append(result)
    return lines or {"plain": plain}


def _x(result: SettingResult, x: str) -> float:
    return result.rtf if x == X_RTF else result.lm_tokens_per_segment


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)
