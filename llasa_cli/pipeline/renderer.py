"""Speaking one batch of segments: generate (or search), decode, verify, and sample failing rows again.

A `Renderer` holds what one run speaks with: the models, the sampling and engine options, and,
once the narrator is known, the run's verifier and the search's scorers. `render_verified` gives
each segment's kept attempt (`Outcome`): passing attempts first, then the best score. Rows are
seeded from (run seed, text, attempt), so an attempt's codes do not depend on its batch.

A batch may mix voices: every row carries its own voice prompt, and the rows are sampled in one
call (one forward pass). Each voice has its own `Judges`: its rows are verified (and, with
`--beam`/`--best-of`, searched) by the verifier built on that voice's reference, so the speaker
check compares every segment with the voice it should have.

A segment that gets no codes at all was not spoken, whether or not the run verifies: its kept
attempt fails with the reason (`_unspoken_verdict`), so the run flags it and exits 4 instead of
writing a silent gap. The usual cause is a text (one 20,000-letter "word") whose prompt fills the
model's whole context, leaving no room for a single code.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..constants import CODES_PER_SECOND, CONTEXT_TOKENS
from ..engine.protocols import (
    CandidateGenerator,
    GenerationRequest,
    GenerationResult,
    SpeechCodec,
    SpeechGenerator,
    VoicePrompt,
)
from ..engine.sampling import segment_seed
from ..options import EngineOptions, SamplingOptions, SearchOptions
from ..search.scorers import Scorers
from ..search.segment_search import search_segments
from ..text.plan import Segment
from ..verify.signal_checks import EMPTY
from ..verify.verdict import SegmentVerifier, Verdict, VerifyItem, best_attempt

# Every segment may emit at least this many codes (about a second), whatever its estimate,
# so a very short text ("I.") is never cut off by the cap.
MIN_TOKEN_CAP = CODES_PER_SECOND
# Why a segment got no codes: its prompt (text, voice transcript and voice codes) left no room in
# the model's context; otherwise the model ended it at once (EMPTY, as the signal checks name it).
PROMPT_TOO_LONG = "prompt_too_long"
PROMPT_TOKENS_METRIC = "prompt_tokens"


def token_cap(est_seconds: float, prompt_tokens: int, headroom: float) -> int:
    """Most codes a segment may generate: its estimate with headroom, within the context."""
    wanted = max(MIN_TOKEN_CAP, math.ceil(est_seconds * CODES_PER_SECOND * headroom))
    room = CONTEXT_TOKENS - prompt_tokens
    return max(0, min(wanted, room))


@dataclass
class Rendered:
    """One attempt at a segment: its audio and codes, and what it cost."""

    audio: np.ndarray
    result: GenerationResult
    seconds: float = 0.0
    verify_seconds: float = 0.0
    search: dict[str, Any] | None = None  # the search's compute: tokens, LM calls, scorer calls and times
    verdict: Verdict | None = None  # the run's verifier's verdict, when the search already asked it


@dataclass(frozen=True)
class Generated:
    """A batch's codes straight from the language model (or the search), before decoding."""

    results: list[GenerationResult]
    stats: list[dict[str, Any] | None]  # the search's compute per row (None: plain sampling)
    seconds: float
    # Per row, the audio and (None: not the run's verifier's) verdict the search's final scorer
    # already produced for the chosen candidate; None where it did not judge it.
    heard: list[tuple[np.ndarray, Verdict | None] | None] | None = None


@dataclass(frozen=True)
class Outcome:
    """The attempt kept for a segment, its verdict (None: not verified), and what all attempts cost."""

    item: Rendered
    verdict: Verdict | None
    attempts: int
    seconds: float
    verify_seconds: float


@dataclass(frozen=True)
class SearchRun:
    """A run's verifier-guided search: its options, the LM as a branching generator, and its judges."""

    options: SearchOptions
    candidates: CandidateGenerator
    scorers: Scorers


@dataclass(frozen=True)
class Judges:
    """How one voice's segments are judged: the run's verifier for that voice (its speaker check
    compares with that voice's reference) and the search that ranks by it."""

    verifier: SegmentVerifier | None = None
    search: SearchRun | None = None


class Renderer:
    """Speaks batches of segments for one run (see the module docstring)."""

    def __init__(
        self,
        generator: SpeechGenerator,
        codec: SpeechCodec,
        sampling: SamplingOptions,
        engine: EngineOptions,
        judges: Mapping[str | None, Judges] | None = None,
        retries: int = 0,
    ) -> None:
        self.generator = generator
        self.codec = codec
        self.sampling = sampling
        self.engine = engine
        self.judges = dict(judges or {})  # by Segment.voice (None: the narrator); empty: no checks
        self.retries = retries

    @property
    def verifies(self) -> bool:
        return any(judges.verifier is not None for judges in self.judges.values())

    @property
    def searches(self) -> bool:
        return any(judges.search is not None for judges in self.judges.values())

    def render_verified(
        self,
        segments: Sequence[Segment],
        voices: Sequence[VoicePrompt | None],
        bases: Sequence[int],
        generated: Generated | None = None,
    ) -> list[Outcome]:
        """Render (or decode what was `generated`), verify, and sample the failing rows again (new
        seeds, batched), keeping each row's best. `voices` are the rows' prompts."""
        items = self.decode(generated or self.generate(segments, voices, bases))
        if not self.verifies:
            unspoken = [self._unspoken_verdict(*row) for row in zip(segments, voices, items, strict=True)]
            return [Outcome(item, verdict, 1, item.seconds, 0.0) for item, verdict in zip(items, unspoken, strict=True)]
        history = [
            [(item, verdict)] for item, verdict in zip(items, self._verify(segments, voices, items), strict=True)
        ]
        for retry in range(1, self.retries + 1):
            # Another seed cannot make room in the context: those rows are not sampled again.
            failing = [
                n
                for n, tries in enumerate(history)
                if not tries[-1][1].passed and PROMPT_TOO_LONG not in tries[-1][1].failures
            ]
            if not failing:
                break
            again_segments, again_voices = [segments[n] for n in failing], [voices[n] for n in failing]
            again = self.render(again_segments, again_voices, [bases[n] + retry for n in failing])
            verdicts = self._verify(again_segments, again_voices, again)
            for n, item, verdict in zip(failing, again, verdicts, strict=True):
                history[n].append((item, verdict))
        return [_best(tries) for tries in history]

    def render(
        self, segments: Sequence[Segment], voices: Sequence[VoicePrompt | None], attempts: Sequence[int]
    ) -> list[Rendered]:
        """Each segment spoken once (no verification), seeded by its attempt number."""
        return self.decode(self.generate(segments, voices, attempts))

    def generate(
        self, segments: Sequence[Segment], voices: Sequence[VoicePrompt | None], attempts: Sequence[int]
    ) -> Generated:
        """The batch's codes, every row with its own voice prompt: sampled in one call, or, when the
        run searches, each voice's rows searched with that voice's judges (a row needs a voice to be
        judged by)."""
        started = time.monotonic()
        requests = [self._request(*row) for row in zip(segments, voices, attempts, strict=True)]
        judged = [n for n, voice in enumerate(voices) if voice is not None and self._judges(segments[n]).search]
        if not judged:
            sampled = list(self.generator.generate(requests))
            return Generated(sampled, [None] * len(sampled), time.monotonic() - started)
        results: dict[int, GenerationResult] = {}
        stats: dict[int, dict[str, Any] | None] = {}
        heard: dict[int, tuple[np.ndarray, Verdict | None] | None] = {}
        plain = [n for n in range(len(requests)) if n not in set(judged)]
        if plain:
            results.update(zip(plain, self.generator.generate([requests[n] for n in plain]), strict=True))
        for voice, group in _by_voice(segments, judged).items():
            found, searched, known = self._search([requests[n] for n in group], self.judges[voice])
            results.update(zip(group, found, strict=True))
            stats.update(zip(group, searched, strict=True))
            heard.update(zip(group, known, strict=True))
        order = range(len(requests))
        seconds = time.monotonic() - started
        return Generated(
            [results[n] for n in order], [stats.get(n) for n in order], seconds, [heard.get(n) for n in order]
        )

    def decode(self, generated: Generated) -> list[Rendered]:
        """Audio for every row: decoded in one call, except what the search's final scorer already heard."""
        started = time.monotonic()
        heard = generated.heard or [None] * len(generated.results)
        todo = [n for n, known in enumerate(heard) if known is None]
        fresh = self.codec.decode([generated.results[n].codes for n in todo]) if todo else []
        decoded = dict(zip(todo, fresh, strict=True))
        per_row = (generated.seconds + time.monotonic() - started) / max(1, len(generated.results))
        rendered = []
        for n, (result, stat, known) in enumerate(zip(generated.results, generated.stats, heard, strict=True)):
            audio, verdict = known if known is not None else (decoded[n], None)
            # A search's time judging candidates is verification time, not generation time.
            judging = 0.0 if stat is None else stat["partial_scorer_seconds"] + stat["final_scorer_seconds"]
            item = Rendered(audio, result, max(0.0, per_row - judging), judging, search=stat, verdict=verdict)
            rendered.append(item)
        return rendered

    def _judges(self, segment: Segment) -> Judges:
        return self.judges.get(segment.voice) or Judges()

    def _unspoken_verdict(self, segment: Segment, voice: VoicePrompt | None, item: Rendered) -> Verdict | None:
        """A failing verdict for an attempt with no codes (nothing of the text was spoken), naming
        why; None when it has codes."""
        if item.result.codes.size:
            return None
        prompt = self.generator.prompt_tokens(segment.text, voice)
        reason = PROMPT_TOO_LONG if prompt >= CONTEXT_TOKENS else EMPTY
        return Verdict(passed=False, score=0.0, metrics={PROMPT_TOKENS_METRIC: float(prompt)}, failures=(reason,))

    def _verify(
        self, segments: Sequence[Segment], voices: Sequence[VoicePrompt | None], items: Sequence[Rendered]
    ) -> list[Verdict]:
        """Each item's verdict: asked of its voice's verifier, one call per voice, except those the
        search already has and those with no codes (`_unspoken_verdict`)."""
        verdicts: list[Verdict | None] = [
            self._unspoken_verdict(*row) or row[2].verdict for row in zip(segments, voices, items, strict=True)
        ]
        for voice, rows in _by_voice(segments, [n for n, verdict in enumerate(verdicts) if verdict is None]).items():
            verifier = self.judges[voice].verifier if voice in self.judges else None
            if verifier is None:
                raise ValueError(f"no verifier for the voice of segment {segments[rows[0]].segment_id}")
            started = time.monotonic()
            asked = verifier.verify(
                [VerifyItem(segments[n].text, items[n].audio, items[n].result.hit_cap) for n in rows]
            )
            per_row = (time.monotonic() - started) / len(rows)
            for n, verdict in zip(rows, asked, strict=True):
                verdicts[n] = verdict
                items[n].verify_seconds += per_row
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]  # every None was just filled

    def _search(
        self, requests: list[GenerationRequest], judges: Judges
    ) -> tuple[list[GenerationResult], list[dict[str, Any] | None], list[tuple[np.ndarray, Verdict | None] | None]]:
        assert judges.search is not None
        scorers = judges.search.scorers
        found = search_segments(
            requests, judges.search.candidates, scorers.partial, scorers.final, judges.search.options
        )
        heard: list[tuple[np.ndarray, Verdict | None] | None] = []
        for request, result in zip(requests, found, strict=True):
            known = scorers.final.recall(request.text, result.codes)
            # With a verifier the final scorer judged with it; without one, by the signal checks
            # alone, which is no verdict to keep.
            verdict = None if known is None or judges.verifier is None else known.verdict
            heard.append(None if known is None else (known.audio, verdict))
        return [r.as_generation_result() for r in found], [dataclasses.asdict(r.stats) for r in found], heard

    def _request(self, segment: Segment, voice: VoicePrompt | None, attempt: int) -> GenerationRequest:
        prompt = self.generator.prompt_tokens(segment.text, voice)
        cap = token_cap(segment.est_seconds, prompt, self.engine.length_headroom)
        seed = segment_seed(self.sampling.seed, segment.text, attempt)
        return GenerationRequest(text=segment.text, seed=seed, max_new_tokens=cap, voice=voice)


def _by_voice(segments: Sequence[Segment], rows: Sequence[int]) -> dict[str | None, list[int]]:
    """`rows` (indexes into `segments`) grouped by who speaks them, in order."""
    groups: dict[str | None, list[int]] = {}
    for n in rows:
        groups.setdefault(segments[n].voice, []).append(n)
    return groups


def _best(tries: list[tuple[Rendered, Verdict]]) -> Outcome:
    item, verdict = tries[best_attempt([v for _, v in tries])]
    return Outcome(
        item,
        verdict,
        attempts=len(tries),
        seconds=sum(i.seconds for i, _ in tries),
        verify_seconds=sum(i.verify_seconds for i, _ in tries),
    )
