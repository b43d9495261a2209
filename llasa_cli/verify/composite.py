"""The verifier a run uses: signal checks, pace, noise, ASR (WER/CER and the alignment checks) and
speaker similarity, combined.

A `CompositeVerifier` is a `SegmentVerifier` (verdict.py). `load_verifier_models` loads the models
the options ask for (a run does so before any synthesis, then builds its verifier once the
narrator's audio is known); `load_verifier` does both at once for a clip that exists already.

The narrator's pace (pace.py) starts from the reference clip (its text, given or transcribed) and
is refined by every whole segment that passes; a verifier and its partial-speech form share it.

A verdict's score (higher is better, 0..1) is the default `ScoreWeights` mean of the parts that
ran: 1 - min(WER or CER, 1), max(similarity, 0) and the share of rule checks passed (signal,
pace, noise and alignment checks: verdict.RULE_FAILURES).

This module imports no torch: the models load inside `load_verifier_models`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..options import ScoreWeights, VerifyOptions
from . import alignment as al
from . import noise
from . import signal_checks as sc
from .asr import Transcriber
from .pace import PACE_RATIO, NarratorPace, PaceCheck
from .signal_checks import SignalReport, check_signal
from .speaker import MIN_JUDGED_SECONDS, SpeakerEmbedder, cosine_similarity
from .verdict import CER, RULE_FAILURES, SIMILARITY, SPEAKER, Verdict, VerifyItem

if TYPE_CHECKING:
    from ..engine.hub import ModelNeed

# How a verdict's score weighs its parts; the search's ranking takes its weights from --score-weights.
VERDICT_WEIGHTS = ScoreWeights()


class CompositeVerifier:
    """Signal, pace and noise checks for every item, ASR batched over the items (skipping silent
    ones) with the alignment checks on its transcripts, and speaker similarity to the reference
    clip when an embedder and a reference are given. The reference clip's text (`reference_text`,
    or else its transcript when ASR runs: one more clip to transcribe) gives the narrator's pace
    from the start; the segments that pass refine it."""

    def __init__(
        self,
        options: VerifyOptions,
        transcriber: Transcriber | None,
        embedder: SpeakerEmbedder | None,
        reference_audio: np.ndarray | None,
        lang: str = "en",
        reference_text: str | None = None,
    ) -> None:
        self.options = options
        self.lang = lang
        self.partial = False
        self.transcriber = transcriber if options.check_asr else None
        use_speaker = options.check_speaker and embedder is not None and reference_audio is not None
        self.embedder = embedder if use_speaker else None
        self.reference: np.ndarray | None = None
        if self.embedder is not None and reference_audio is not None:
            self.reference = self.embedder.embed([reference_audio])[0]
        self.pace = NarratorPace(options.pace_factor)
        if reference_audio is not None and options.check_pace:
            if reference_text is None and self.transcriber is not None:
                reference_text = self.transcriber.transcribe([reference_audio], lang)[0]
            if reference_text:
                self.pace.add(sc.silence_profile(reference_audio).voiced_s, reference_text)

    @classmethod
    def signal_only(cls, lang: str = "en") -> CompositeVerifier:
        """The model-free checks alone, at their default thresholds (what search ranks by with --no-verify)."""
        return cls(VerifyOptions(check_asr=False, check_speaker=False), None, None, None, lang)

    def for_partial_speech(self) -> CompositeVerifier:
        """The same checks less ASR, sharing this verifier's models, reference embedding and
        narrator's pace: for search's partial candidates, where half a sentence would always
        mismatch its text. Pace is judged on the slow side only (VerifyItem.spoken_seconds), and
        what passes there does not refine the pace."""
        partial = copy.copy(self)
        partial.options = dataclasses.replace(self.options, check_asr=False)
        partial.transcriber = None
        partial.partial = True
        return partial

    def verify(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        items = list(items)
        signals = [check_signal(item.audio, item.text, self.options, item.hit_cap) for item in items]
        transcripts = self._transcribe(items, signals)
        similarities = self._similarities(items)
        verdicts = [
            self._verdict(item, signal, transcript, similarity)
            for item, signal, transcript, similarity in zip(items, signals, transcripts, similarities, strict=True)
        ]
        if self.options.check_pace and not self.partial:
            for item, signal, verdict in zip(items, signals, verdicts, strict=True):
                if verdict.passed:
                    self.pace.add(signal.metrics["voiced_s"], item.text)
        return verdicts

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

        options = self.options
        metrics = dict(signal.metrics)
        failures = list(signal.failures)
        rules = len(signal.checks)
        pace = self._pace_check(item, signal)
        if pace is not None:
            metrics[PACE_RATIO] = pace.ratio
            failures += pace.failures
            rules += 1 if self.partial else 2
        snr = None if sc.EMPTY in signal.failures else noise.wada_snr(item.audio)
        if snr is not None:
            metrics[noise.SNR_DB] = snr
            rules += 1
            if snr < options.min_snr_db:
                failures.append(noise.NOISY)
        error = None
        if transcript is not None:
            result = error_rate(item.text, transcript, self.lang)
            error = result.rate
            metrics[result.metric] = error
            if error > (options.max_cer if result.metric == CER else options.max_wer):
                failures.append(result.metric)
            alignment = al.check_alignment(result.reference_words, result.hypothesis_words, self.lang)
            metrics.update(alignment.metrics())
            rules += 3
            limits = (
                (al.OMISSION, alignment.omitted_words, options.max_omitted_words),
                (al.LOOP, alignment.repeated_words, options.max_repeated_words),
                (al.BABBLE, alignment.words_after_end, options.max_words_after_end),
            )
            failures += [name for name, value, limit in limits if value > limit]
        if similarity is not None:
            metrics[SIMILARITY] = similarity
            judged = signal.metrics["voiced_s"] >= MIN_JUDGED_SECONDS
            if judged and similarity < options.similarity_threshold:
                failures.append(SPEAKER)
        rule_failures = sum(1 for name in failures if name in RULE_FAILURES)
        score = VERDICT_WEIGHTS.combine(1.0 - rule_failures / max(rules, 1), error, similarity)
        return Verdict(not failures, score, metrics, tuple(failures), transcript)

    def _pace_check(self, item: VerifyItem, signal: SignalReport) -> PaceCheck | None:
        if not self.options.check_pace:
            return None
        if self.partial:
            if item.spoken_seconds is None:
                return None
            return self.pace.check_partial(item.spoken_seconds, item.text)
        return self.pace.check(signal.metrics["voiced_s"], item.text)


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
