"""Verifying synthesised segments: signal checks, ASR (WER/CER) and speaker similarity, combined.

`load_verifier(options, device, reference_audio, lang)` gives a `SegmentVerifier`; its
`verify(items)` takes a batch of `VerifyItem`s and returns one `Verdict` per item. Retrying is the
caller's: regenerate the failing items with a new seed, verify again, and keep the best attempt
(`best_attempt`: passing attempts first, then the highest score).

Score (higher is better, 0..1): a weighted mean of the parts that ran:
ASR_WEIGHT * (1 - min(WER or CER, 1)) + SPEAKER_WEIGHT * max(similarity, 0)
+ SIGNAL_WEIGHT * (share of signal checks passed), divided by the weights used.

This module imports no torch: the models load inside `load_verifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..options import VerifyOptions
from . import signal_checks as sc
from .asr import Transcriber
from .signal_checks import SignalReport, check_signal
from .speaker import SpeakerEmbedder, cosine_similarity

ASR_WEIGHT = 0.5
SPEAKER_WEIGHT = 0.3
SIGNAL_WEIGHT = 0.2
SPEAKER = "speaker"
SIMILARITY = "similarity"
WER = "wer"
CER = "cer"

FAILURE_HELP = {
    sc.EMPTY: "no audible speech",
    sc.TOO_SHORT: "audio too short for its text (early stop or skipped words)",
    sc.TOO_LONG: "audio too long for its text (runaway babble or stalls)",
    sc.LEAD_SILENCE: "long silence before the speech",
    sc.TRAIL_SILENCE: "long silence after the speech",
    sc.INNER_SILENCE: "long pause inside the speech",
    sc.CLIPPING: "clipped samples",
    sc.TOO_QUIET: "speech too quiet",
    sc.HIT_CAP: "generation hit its token cap (runaway)",
    WER: "transcript differs from the text",
    CER: "transcript differs from the text",
    SPEAKER: "voice differs from the reference",
}


@dataclass(frozen=True)
class VerifyItem:
    """One synthesised segment: the text it should say and its 16 kHz mono audio."""

    text: str
    audio: np.ndarray
    hit_cap: bool = False  # generation stopped at max_new_tokens, not at the end-of-speech token


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float  # higher is better; ranks attempts at one segment
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    failures: tuple[str, ...] = ()
    transcript: str | None = None  # None when ASR did not run

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number finite, failures as a list."""
        return {
            "passed": self.passed,
            "score": round(self.score, 4),
            "failures": list(self.failures),
            "transcript": self.transcript,
            **{name: _json_number(value) for name, value in self.metrics.items()},
        }


class SegmentVerifier(Protocol):
    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]: ...


def _json_number(value: float) -> float:
    return round(float(np.nan_to_num(value, nan=0.0, posinf=1e9, neginf=-1e9)), 6)


def best_attempt(verdicts: Sequence[Verdict]) -> int:
    """Index of the attempt to keep: a passing one before any failing one, then the highest
    score, then the earliest."""
    if not verdicts:
        raise ValueError("best_attempt needs at least one verdict")
    return max(range(len(verdicts)), key=lambda i: (verdicts[i].passed, verdicts[i].score, -i))


def failure_limits(options: VerifyOptions, lang: str = "en") -> dict[str, tuple[str, str, float]]:
    """failure name -> (metric, comparison that passes, limit), for messages and reports."""
    return {
        sc.EMPTY: ("voiced_s", ">=", sc.MIN_VOICED_SECONDS),
        sc.TOO_SHORT: ("seconds_per_char", ">=", options.min_seconds_per_char),
        sc.TOO_LONG: ("seconds_per_char", "<=", options.max_seconds_per_char),
        sc.LEAD_SILENCE: ("lead_silence_s", "<=", options.max_lead_silence),
        sc.TRAIL_SILENCE: ("trail_silence_s", "<=", options.max_trail_silence),
        sc.INNER_SILENCE: ("inner_silence_s", "<=", options.max_inner_silence),
        sc.CLIPPING: ("clipping_share", "<=", options.max_clipping),
        sc.TOO_QUIET: ("rms_dbfs", ">=", options.min_rms_dbfs),
        sc.HIT_CAP: ("hit_cap", "<=", 0.0),
        WER: (WER, "<=", options.max_wer),
        CER: (CER, "<=", options.max_cer),
        SPEAKER: (SIMILARITY, ">=", options.similarity_threshold),
    }


def describe_failures(verdict: Verdict, options: VerifyOptions) -> list[str]:
    """One line per failure, e.g. `wer 0.62 (limit <= 0.3): transcript differs from the text`."""
    limits = failure_limits(options)
    lines = []
    for name in verdict.failures:
        metric, comparison, limit = limits[name]
        value = verdict.metrics.get(metric, float("nan"))
        lines.append(f"{name}: {metric} {value:.3g} (limit {comparison} {limit:g}): {FAILURE_HELP[name]}")
    return lines


def combine_score(signal: SignalReport, error: float | None, similarity: float | None) -> float:
    parts = [(SIGNAL_WEIGHT, sum(c.passed for c in signal.checks) / max(len(signal.checks), 1))]
    if error is not None:
        parts.append((ASR_WEIGHT, 1.0 - min(max(error, 0.0), 1.0)))
    if similarity is not None:
        parts.append((SPEAKER_WEIGHT, max(similarity, 0.0)))
    return sum(w * v for w, v in parts) / sum(w for w, _ in parts)


class CompositeVerifier:
    """Signal checks for every item, ASR batched over the items (skipping silent ones), and
    speaker similarity to the reference clip when an embedder and a reference are given."""

    def __init__(
        self,
        options: VerifyOptions,
        transcriber: Transcriber | None,
        embedder: SpeakerEmbedder | None,
        reference_audio: np.ndarray | None,
        lang: str = "en",
    ) -> None:
        self.options = options
        self.lang = lang
        self.transcriber = transcriber if options.check_asr else None
        use_speaker = options.check_speaker and embedder is not None and reference_audio is not None
        self.embedder = embedder if use_speaker else None
        self.reference: np.ndarray | None = None
        if self.embedder is not None and reference_audio is not None:
            self.reference = self.embedder.embed([reference_audio])[0]

    @property
    def checks_asr(self) -> bool:
        return self.transcriber is not None

    @property
    def checks_speaker(self) -> bool:
        return self.reference is not None

    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        items = list(items)
        signals = [check_signal(item.audio, item.text, self.options, item.hit_cap) for item in items]
        transcripts = self._transcribe(items, signals)
        similarities = self._similarities(items)
        return [
            self._verdict(item, signal, transcript, similarity)
            for item, signal, transcript, similarity in zip(items, signals, transcripts, similarities, strict=True)
        ]

    def _transcribe(self, items: list[VerifyItem], signals: list[SignalReport]) -> list[str | None]:
        if self.transcriber is None:
            return [None] * len(items)
        # Silence is not worth a Whisper pass (it only invites hallucinated text): its transcript is "".
        audible = [i for i, signal in enumerate(signals) if sc.EMPTY not in signal.failures]
        texts: list[str | None] = [""] * len(items)
        if audible:
            heard = self.transcriber.transcribe([items[i].audio for i in audible], self.lang)
            for index, text in zip(audible, heard, strict=True):
                texts[index] = text
        return texts

    def _similarities(self, items: list[VerifyItem]) -> list[float | None]:
        if self.embedder is None or self.reference is None or not items:
            return [None] * len(items)
        embeddings = self.embedder.embed([item.audio for item in items])
        return [float(value) for value in cosine_similarity(embeddings, self.reference)]

    def _verdict(
        self, item: VerifyItem, signal: SignalReport, transcript: str | None, similarity: float | None
    ) -> Verdict:
        from .textcompare import error_rate

        metrics = dict(signal.metrics)
        failures = list(signal.failures)
        error = None
        if transcript is not None:
            result = error_rate(item.text, transcript, self.lang)
            error = result.rate
            metrics[result.metric] = error
            if error > (self.options.max_cer if result.metric == CER else self.options.max_wer):
                failures.append(result.metric)
        if similarity is not None:
            metrics[SIMILARITY] = similarity
            if similarity < self.options.similarity_threshold:
                failures.append(SPEAKER)
        score = combine_score(signal, error, similarity)
        return Verdict(not failures, score, metrics, tuple(failures), transcript)


class DisabledVerifier:
    """`--no-verify`: every segment passes unexamined."""

    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [Verdict(passed=True, score=1.0) for _ in items]


def load_verifier(
    options: VerifyOptions, device: str, reference_audio: np.ndarray | None, lang: str = "en"
) -> SegmentVerifier:
    """The verifier `options` describe, its models on `device` (`auto` allowed).

    The speaker model is loaded only when there is a reference clip to compare with."""
    if not options.enabled:
        return DisabledVerifier()
    transcriber, embedder = load_verifier_models(options, device, speaker=reference_audio is not None)
    return CompositeVerifier(options, transcriber, embedder, reference_audio, lang)


def load_verifier_models(options: VerifyOptions, device: str, speaker: bool = True) -> tuple[Any, Any]:
    """(transcriber, speaker embedder) that `options` ask for, each None when its check is off."""
    from ..engine.loading import pick_device

    device, _ = pick_device(device)
    transcriber = None
    if options.check_asr:
        from .asr import load_transcriber

        transcriber = load_transcriber(options.asr_model, device, options.asr_backend, options.batch_size)
    embedder = None
    if options.check_speaker and speaker:
        from .speaker import load_embedder

        embedder = load_embedder(options.speaker_backend, options.speaker_model, device, options.batch_size)
    return transcriber, embedder
