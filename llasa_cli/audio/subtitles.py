"""Subtitles and read-along timings from where each segment actually sits in its chapter audio.

No speech recognition: a segment's span is exactly where the stitcher placed its audio
(`ChapterAudio.starts/ends`, in samples). A segment longer than `max_cue_chars` is
shown as several cues: its sentences (pysbd, the same splitter as `text/planner.py`),
and a sentence still too long is cut between words into even parts. The segment's
span is shared among those parts in proportion to their character counts (spaces
between parts count for neither): an estimate, exact at the segment's ends. Parts are
contiguous slices of the text, so joining a segment's cues gives its text back.

Outputs: SRT (`HH:MM:SS,mmm`), WebVTT (`HH:MM:SS.mmm`, `&`, `<`, `>` escaped; a character's
cue opens with WebVTT's voice tag, `<v anna>`), and a JSON manifest for read-along apps listing
every segment with its chapter file, start and end (seconds, chapter-relative), text and voice
(the character who speaks it, null for the narrator). A literal `-->` in text (it would end a
cue's timing line in some parsers) is written as `->`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..text.planner import sentence_spans
from .export import atomic_write_bytes
from .stitch import ChapterAudio

MAX_CUE_CHARS = 84  # two lines of 42: the usual subtitle limit
MAX_LINE_CHARS = 42
MS_PER_SECOND = 1000
SECONDS_PER_HOUR = 3600
SECONDS_PER_MINUTE = 60
MANIFEST_VERSION = 1
ARROW = "-->"
SAFE_ARROW = "->"
# A stem is a chapter slug (`chapter_slug`), so the files can never leave their folder.
SAFE_STEM = re.compile(r"[a-z0-9][a-z0-9-]*")
_VTT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class TimedSegment:
    """A segment's text and where its audio sits in the chapter file (seconds)."""

    text: str
    start: float
    end: float
    segment_id: str | None = None
    voice: str | None = None  # the character who speaks it; None: the narrator


@dataclass(frozen=True)
class Cue:
    """One subtitle: a piece of a segment's text and its time span (seconds)."""

    start: float
    end: float
    text: str
    segment_id: str | None = None
    segment: int = 0  # index of its segment in the list the cues were made from
    part: int | None = None  # 0-based part of a segment split into several cues, else None
    voice: str | None = None  # the character who speaks it; None: the narrator

    @property
    def cue_id(self) -> str | None:
        """`segment_id`, with `.part` added for a part of a split segment."""
        if self.segment_id is None or self.part is None:
            return self.segment_id
        return f"{self.segment_id}.{self.part}"


def timed_segments(
    texts: Sequence[str],
    chapter: ChapterAudio,
    ids: Sequence[str] | None = None,
    voices: Sequence[str | None] | None = None,
) -> list[TimedSegment]:
    """Pair each piece of a stitched chapter with its text (and id, e.g. `Segment.segment_id`, and voice)."""
    timed = timed_segments_from_samples(texts, chapter.starts, chapter.ends, chapter.sample_rate, ids)
    if voices is None:
        return timed
    return [dataclasses.replace(segment, voice=voice) for segment, voice in zip(timed, voices, strict=True)]


def timed_segments_from_samples(
    texts: Sequence[str],
    starts: Sequence[int],
    ends: Sequence[int],
    sample_rate: int,
    ids: Sequence[str] | None = None,
) -> list[TimedSegment]:
    """TimedSegments from sample offsets; every sequence must have one entry per segment."""
    if not len(texts) == len(starts) == len(ends) or (ids is not None and len(ids) != len(texts)):
        raise ValueError(f"{len(texts)} texts but {len(starts)} starts, {len(ends)} ends")
    labels = list(ids) if ids is not None else [None] * len(texts)
    return [
        TimedSegment(" ".join(text.split()), start / sample_rate, end / sample_rate, label)
        for text, start, end, label in zip(texts, starts, ends, labels, strict=True)
    ]


def segment_cues(segments: Sequence[TimedSegment], max_cue_chars: int = MAX_CUE_CHARS, lang: str = "en") -> list[Cue]:
    """Cues for `segments`: one per segment, or per part of a long one (see the module doc)."""
    cues: list[Cue] = []
    for number, segment in enumerate(segments):
        if segment.text:
            cues.extend(_spread(segment, number, _parts(segment.text, max_cue_chars, lang)))
    return cues


def _parts(text: str, max_chars: int, lang: str) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    parts: list[str] = []
    for start, end in sentence_spans(text, lang):
        sentence = text[start:end].strip()
        if sentence:
            parts.extend(_even_word_chunks(sentence, max_chars))
    return parts or [text]


def _even_word_chunks(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence between words into as few parts as fit `max_chars`, as even as possible.

    A single word longer than `max_chars` stays whole.
    """
    fewest = len(_wrap(sentence, max_chars))
    for width in range(-(-len(sentence) // fewest), max_chars):
        chunks = _wrap(sentence, width)
        if len(chunks) <= fewest:
            return chunks
    return _wrap(sentence, max_chars)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=max(1, width), break_long_words=False, break_on_hyphens=False) or [text]


def _spread(segment: TimedSegment, number: int, parts: Sequence[str]) -> list[Cue]:
    """Share the segment's span among `parts` in proportion to their lengths."""
    total = sum(len(part) for part in parts)
    span = segment.end - segment.start
    cues = []
    done = 0
    for index, part in enumerate(parts):
        start = segment.start + span * done / total
        done += len(part)
        end = segment.end if index == len(parts) - 1 else segment.start + span * done / total
        part_number = index if len(parts) > 1 else None
        cues.append(Cue(start, end, part, segment.segment_id, number, part_number, segment.voice))
    return cues


def format_timestamp(seconds: float, decimal: str) -> str:
    """`HH:MM:SS<decimal>mmm` (hours keep growing past 99)."""
    total_ms = max(0, round(seconds * MS_PER_SECOND))
    whole, ms = divmod(total_ms, MS_PER_SECOND)
    hours, rest = divmod(whole, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _cue_lines(text: str) -> list[str]:
    return _wrap(text.replace(ARROW, SAFE_ARROW), MAX_LINE_CHARS)


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line after each."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        timing = f"{format_timestamp(cue.start, ',')} {ARROW} {format_timestamp(cue.end, ',')}"
        blocks.append("\n".join([str(number), timing, *_cue_lines(cue.text)]))
    return "".join(block + "\n\n" for block in blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text: `WEBVTT` header, cues with their segment id as identifier when known."""
    blocks = ["WEBVTT"]
    for cue in cues:
        timing = f"{format_timestamp(cue.start, '.')} {ARROW} {format_timestamp(cue.end, '.')}"
        lines = ["".join(_VTT_ESCAPES.get(char, char) for char in line) for line in _cue_lines(cue.text)]
        if cue.voice is not None:
            lines[0] = f"<v {_vtt_voice(cue.voice)}>{lines[0]}"
        header = [cue.cue_id] if cue.cue_id else []
        blocks.append("\n".join([*header, timing, *lines]))
    return "\n\n".join(blocks) + "\n"


def manifest(segments: Sequence[TimedSegment], chapter_file: str, cues: Sequence[Cue] | None = None) -> dict[str, Any]:
    """The read-along manifest of one chapter: every segment with its file, start, end and text.

    With `cues` (made from the same `segments`), a segment split into several cues also
    lists them as `parts`.
    """
    parts: dict[int, list[dict[str, Any]]] = {}
    for cue in cues or ():
        if cue.part is not None:
            parts.setdefault(cue.segment, []).append(_times(cue.start, cue.end, cue.text))
    entries = []
    for number, segment in enumerate(segments):
        entry: dict[str, Any] = {"id": segment.segment_id, "file": chapter_file}
        entry.update(_times(segment.start, segment.end, segment.text))
        entry["voice"] = segment.voice
        if number in parts:
            entry["parts"] = parts[number]
        entries.append(entry)
    return {"version": MANIFEST_VERSION, "file": chapter_file, "segments": entries}


def _vtt_voice(voice: str) -> str:
    """A character's name as a WebVTT voice annotation, which ends at `>` and takes no markup."""
    return "".join(_VTT_ESCAPES.get(char, char) for char in voice)


def _times(start: float, end: float, text: str) -> dict[str, Any]:
    return {"start": round(start, 3), "end": round(end, 3), "text": text}


def read_manifest(path: Path) -> list[TimedSegment]:
    """The timed segments of a manifest `write_timings` wrote (a chapter's, to time a whole book)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return [
            TimedSegment(entry["text"], float(entry["start"]), float(entry["end"]), entry.get("id"), entry.get("voice"))
            for entry in document["segments"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"cannot read the subtitle timings {path}: {exc}") from exc


def shifted(segments: Sequence[TimedSegment], seconds: float) -> list[TimedSegment]:
    """`segments` moved `seconds` later (a chapter's timings placed in the whole book)."""
    return [dataclasses.replace(s, start=s.start + seconds, end=s.end + seconds) for s in segments]


def write_timings(
    folder: Path,
    stem: str,
    segments: Sequence[TimedSegment],
    chapter_file: str,
    max_cue_chars: int = MAX_CUE_CHARS,
    lang: str = "en",
) -> tuple[Path, Path, Path]:
    """Write `stem.srt`, `stem.vtt` and `stem.json` into `folder`, each atomically.

    `stem` must be a chapter slug (lowercase ASCII letters, digits, '-'); anything else
    raises OutputError, so no name can leave `folder`.
    """
    srt, vtt, manifest_path = timing_paths(folder, stem)
    cues = segment_cues(segments, max_cue_chars, lang)
    document = json.dumps(manifest(segments, chapter_file, cues), ensure_ascii=False, indent=2) + "\n"
    atomic_write_bytes(srt, to_srt(cues).encode("utf-8"))
    atomic_write_bytes(vtt, to_vtt(cues).encode("utf-8"))
    atomic_write_bytes(manifest_path, document.encode("utf-8"))
    return srt, vtt, manifest_path


def timing_paths(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    """Where `write_timings` puts `stem`'s SRT, WebVTT and manifest; OutputError for a `stem` that
    is not a chapter slug (lowercase ASCII letters, digits, '-'), so no name can leave `folder`."""
    if not SAFE_STEM.fullmatch(stem):
        raise OutputError(f"unsafe subtitle file name {stem!r}: expected a chapter slug")
    folder = Path(folder)
    return folder / f"{stem}.srt", folder / f"{stem}.vtt", folder / f"{stem}.json"
