"""The verifier a run uses: signal checks, ASR (WER/CER) and speaker similarity, combined.

A `CompositeVerifier` is a `SegmentVerifier` (verdict.py). `load_verifier_models` loads the models
the options ask for (a run does so before any synthesis, then builds its verifier once the
narrator's audio is known); `load_verifier` does both at once for a clip that exists already.

A verdict's score (higher is better, 0..1) is the default `ScoreWeights` mean of the parts that
ran: 1 - min(WER or CER, 1), max(similarity, 0) and the share of signal checks passed.

This module imports no torch: the models load inside `load_verifier_models`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..options import ScoreWeights, VerifyOptions
from . import signal_checks as sc
from .asr import Transcriber
from .signal_checks import SignalReport, check_signal
from .speaker import SpeakerEmbedder, cosine_similarity
from .verdict import CER, SIMILARITY, SPEAKER, Verdict, VerifyItem

if TYPE_CHECKING:
    from ..engine.hub import ModelNeed

# How a verdict's score weighs its parts; the search's ranking takes its weights from --score-weights.
VERDICT_WEIGHTS = ScoreWeights()


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

    @classmethod
    def signal_only(cls, lang: str = "en") -> CompositeVerifier:
        """The model-free checks alone, at their default thresholds (what search ranks by with --no-verify)."""
        return cls(VerifyOptions(check_asr=False, check_speaker=False), None, None, None, lang)

    def for_partial_speech(self) -> CompositeVerifier:
        """The same checks less ASR, sharing this verifier's models and reference embedding: for
        search's partial candidates, where half a sentence would always mismatch its text."""
        partial = copy.copy(self)
        partial.options = dataclasses.replace(self.options, check_asr=False)
        partial.transcriber = None
        return partial

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
        signal_passed = sum(c.passed for c in signal.checks) / max(len(signal.checks), 1)
        score = VERDICT_WEIGHTS.combine(signal_passed, error, similarity)
        return Verdict(not failures, score, metrics, tuple(failures), transcript)


def load_verifier(
    options: VerifyOptions, device: str, reference_audio: np.ndarray | None, lang: str = "en"
) -> CompositeVerifier:
    """The verifier `options` describe, its models on `device` (`auto` allowed).

    The speaker model is loaded only when there is a reference clip to compare with."""
    transcriber, embedder = load_verifier_models(options, device, speaker=reference_audio is not None)
    return CompositeVerifier(options, transcriber, embedder, reference_audio, lang)


def load_verifier_models(
    options: VerifyOptions, device: str, speaker: bool = True
) -> tuple[Transcriber | None, SpeakerEmbedder | None]:
    """(transcriber, speaker embedder) that `options` ask for, each None when its check is off."""
    from ..engine.devices import pick_device

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


def verifier_model_needs(options: VerifyOptions, device: str) -> list[ModelNeed]:
    """The models `load_verifier_models` would load on `device` (resolved: "cuda", "cpu"...) that come
    from a download (see `engine.hub.require_available`); local folders are left out."""
    from .asr import asr_need
    from .speaker import speaker_need

    needs = [
        asr_need(options.asr_model, device, options.asr_backend) if options.check_asr else None,
        speaker_need(options.speaker_backend, options.speaker_model) if options.check_speaker else None,
    ]
    return [need for need in needs if need is not None]
