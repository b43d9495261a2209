"""Write a finished chapter from its stored codes: decode what this run has not, stitch, export.

The chapter's digest (over its segments' codes and the sink's settings) is stored with each file
written (outputs.py), so a chapter whose file already holds exactly those codes and settings is
not written again; so is where each
segment sits in the file (its span), for `llasa review` to play it.
"""

from __future__ import annotations

import numpy as np

from ..audio.sinks import ChapterSink
from ..engine.protocols import SpeechCodec
from ..job.keys import chapter_digest
from ..job.review_state import SegmentSpan
from ..text.plan import Chapter, Plan
from .events import ChapterHeld, ChapterWritten
from .outputs import output_name, record_files
from .run_context import RunContext


def write_chapter(
    plan: Plan,
    chapter: Chapter,
    sink: ChapterSink,
    context: RunContext,
    codec: SpeechCodec,
    force: bool = False,
    strict: bool = False,
    decoded: dict[str, np.ndarray] | None = None,
) -> ChapterWritten | ChapterHeld:
    """Stitch a finished chapter from its stored codes, unless its file is already what they make.

    `decoded` holds audio this run already decoded from exactly those codes (by key); only the
    rest is decoded here. With `strict`, a chapter holding a segment that failed verification is
    not written at all.
    """
    segments = plan.segments_of(chapter.number)
    keys = [context.keys[s.segment_id] for s in segments]
    if strict:
        flagged_keys = context.store.flagged_keys(keys)
        flagged = [s.segment_id for s, key in zip(segments, keys, strict=True) if key in flagged_keys]
        if flagged:
            context.log(f"chapter {chapter.number} held back: flagged segments {' '.join(flagged)}")
            return ChapterHeld(chapter, tuple(flagged))
    codes = [context.store.codes(key) for key in keys]
    missing = [s.segment_id for s, c in zip(segments, codes, strict=True) if c is None]
    if missing:
        raise ValueError(f"chapter {chapter.number} is not finished: segments {', '.join(missing)} have no codes")
    digest = chapter_digest(chapter, segments, codes, sink.fingerprint())
    destination = sink.destination(chapter)
    recorded = context.store.output_digest(output_name(context.store, destination))
    if not force and recorded == digest and sink.exists(chapter):
        return ChapterWritten(chapter, destination, audio_seconds=0.0, unchanged=True)
    audios = _decode_missing(codec, keys, codes, decoded or {})
    written = sink.write(chapter, list(zip(audios, segments, strict=True)))
    record_files(context.store, written.files, written.kind, chapter.number, digest)
    if written.spans:  # a stream keeps no file to play a segment from
        pieces = zip(segments, keys, written.spans, strict=True)
        context.store.record_spans(chapter.number, [SegmentSpan(s.chapter, s.index, k, *span) for s, k, span in pieces])
    context.log(f"chapter {chapter.number} -> {written.destination}")
    return ChapterWritten(chapter, written.destination, written.audio_seconds, book=written.book)


def _decode_missing(
    codec: SpeechCodec, keys: list[str], codes: list[np.ndarray], decoded: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Audio for every position: already decoded where known, the rest decoded in one call."""
    todo = sorted({k for k in keys if k not in decoded})
    if todo:
        by_key = dict(zip(keys, codes, strict=True))
        decoded = {**decoded, **dict(zip(todo, codec.decode([by_key[k] for k in todo]), strict=True))}
    return [decoded[k] for k in keys]
