"""From a manuscript to a Plan: chapters, normalised paragraphs, and segments.

A segment is whole sentences of one paragraph (sentences by pysbd), packed
greedily up to `max_segment_seconds` of estimated speech. A sentence over the
budget is cut at its strongest breaks first (sentence ends pysbd missed, then
`;` `:` and dashes, then commas, then between words); a single word over the
budget stays whole and is reported in Plan.warnings.

Segments never cross a paragraph or chapter, nor a change of voice or a marked pause
(markup.py, dialogue.py, runs.py): each is a contiguous slice of one run of its
paragraph cut only at a space (or, for Chinese, between CJK characters), so the
words of all segments, in order, are exactly the words of the chapters' spoken
titles and paragraphs.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..constants import CHARS_PER_SECOND, CJK_CHARS_PER_SECOND
from ..errors import InputDecodeError, InputEmptyError
from ..options import TextOptions
from .cast import character_key
from .chapters import chapter_slug, split_chapters
from .dialogue import mark_dialogue
from .manuscript import Manuscript
from .markup import (
    Mark,
    MarkedText,
    PauseMark,
    VoiceMark,
    encode_marks,
    expand_say,
    has_marks,
    marked_pieces,
    read_markup,
    without_sentinels,
)
from .normalize import HAS_WORD, collapse_whitespace, describe_dropped, normalize_body, normalize_title
from .plan import Chapter, MarkedPause, Pause, Plan, Segment
from .runs import Run, VoicedParagraph, voice_paragraph

# CJK ideographs, kana, CJK punctuation and full-width forms: each is spoken (or paused) like a syllable.
_CJK = re.compile(
    r"[\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003ffff]"
)
# Cut strengths: the splitter uses the strongest present before trying weaker ones.
STRONG_BREAK, CLAUSE_BREAK, COMMA_BREAK, WORD_BREAK = 4, 3, 2, 1
_SENTENCE_END = frozenset(".!?\u3002\uff01\uff1f")
_CLAUSE_END = frozenset(";:\uff1b\uff1a")
_COMMAS = frozenset(",\uff0c\u3001")
_DASHES = frozenset("-\u2013\u2014")
# Closing quotes and brackets belong to the sentence they close.
_CLOSERS = frozenset("\"')]}\u2019\u201d\u00bb\u300d\u300f\uff09\u300b\u3009\u3011")

# pysbd reads at most this many characters at a time (its time grows with the square of its input).
SENTENCE_WINDOW_CHARS = 2_000

Span = tuple[int, int]


def estimate_seconds(text: str) -> float:
    """Planned speaking time: CJK characters at CJK_CHARS_PER_SECOND, the rest at CHARS_PER_SECOND."""
    return _seconds(len(text), len(_CJK.findall(text)))


def _seconds(length: int, cjk: int) -> float:
    # One formula for whole texts and for spans, so a span that fits is a segment that fits.
    return cjk / CJK_CHARS_PER_SECOND + (length - cjk) / CHARS_PER_SECOND


def build_plan(manuscript: Manuscript, options: TextOptions) -> Plan:
    """Chapters, normalised paragraphs and segments of a manuscript.

    Raises InputEmptyError when nothing sayable is left after clean-up, and InputDecodeError
    for markup that cannot be read (naming its line and column).
    """
    warnings: list[str] = []
    dropped: Counter[str] = Counter()
    marked = direct(manuscript, options)
    kept: list[tuple[str | None, str | None, list[VoicedParagraph]]] = []
    voice: str | None = None  # a [voice] span may run on over paragraphs and chapters
    for position, raw in enumerate(split_chapters(marked.text, manuscript.is_markdown, options), start=1):
        title = _title(raw.title, marked.marks, manuscript.name)
        body = normalize_body(raw.body, options, manuscript.is_markdown)
        dropped.update(body.dropped)
        voiced = []
        for text in body.paragraphs:
            paragraph, voice = voice_paragraph(text, marked.marks, voice)
            voiced.append(paragraph)
        spoken_title = _spoken_title(raw.title, marked.marks, options) if raw.title and options.speak_titles else ""
        if any(paragraph.runs for paragraph in voiced) or spoken_title:
            kept.append((title, spoken_title or None, voiced))
        elif title or HAS_WORD.search(raw.body):
            what = f"chapter {title!r}" if title else f"untitled section {position}"
            warnings.append(f"{manuscript.name}: {what} has no text to speak; left out")
    chapters: list[Chapter] = []
    segments: list[Segment] = []
    for number, (title, spoken_title, voiced) in enumerate(kept, start=1):
        paragraphs = tuple(paragraph.text for paragraph in voiced if paragraph.runs)
        chapter = Chapter(number, title, chapter_slug(number, title, len(kept)), paragraphs, spoken_title)
        chapters.append(chapter)
        own, lost_pause = chapter_segments(chapter, options, voiced)
        segments.extend(own)
        if lost_pause:
            warnings.append(f"{manuscript.name}: a [pause] opens chapter {number} before anything is said; left out")
    if not segments:
        raise InputEmptyError(f"{manuscript.name}: nothing left to speak after clean-up")
    if dropped:
        warnings.insert(0, f"{manuscript.name}: {describe_dropped(dropped)}")
    warnings.extend(_oversize_warnings(manuscript.name, segments, options.max_segment_seconds))
    return Plan(tuple(chapters), tuple(segments), tuple(warnings))


def direct(manuscript: Manuscript, options: TextOptions) -> MarkedText:
    """The manuscript's text with its tags (and, with a dialogue voice, its quotes) as marks."""
    if manuscript.markup:
        tokens = read_markup(
            manuscript.text, manuscript.name, markdown=manuscript.is_markdown, first_line=manuscript.first_line
        )
    else:
        tokens = [without_sentinels(manuscript.text)]
    if options.dialogue_voice is not None:
        tokens = mark_dialogue(tokens, character_key(options.dialogue_voice))
    return encode_marks(tokens)


def _title(title: str | None, marks: Sequence[Mark], name: str) -> str | None:
    """A chapter title as shown: [say] spans as written. Titles are the narrator's, so a [voice]
    or [pause] tag in one is an error (quotes there are simply not split off)."""
    if title is None or not has_marks(title):
        return title
    for piece in marked_pieces(title):
        if isinstance(piece, int):
            mark = marks[piece]
            if isinstance(mark, (VoiceMark, PauseMark)) and mark.where is not None:
                tag = "[voice]" if isinstance(mark, VoiceMark) else "[pause]"
                raise InputDecodeError(f"{name}, {mark.where}: {tag} in a chapter title; titles are the narrator's")
    return collapse_whitespace(without_sentinels(expand_say(title, marks, spoken=False))) or None


def _spoken_title(title: str, marks: Sequence[Mark], options: TextOptions) -> str:
    spoken = normalize_title(title, options)
    spoken = collapse_whitespace(without_sentinels(expand_say(spoken, marks, spoken=True)))
    return spoken if HAS_WORD.search(spoken) else ""


@dataclass
class _Piece:
    paragraph: int
    text: str
    voice: str | None = None
    marked_pause: float | None = None


def chapter_segments(
    chapter: Chapter, options: TextOptions, voiced: Sequence[VoicedParagraph] | None = None
) -> tuple[list[Segment], bool]:
    """The segments of one chapter: spoken title first (paragraph -1), then each paragraph's runs
    (one voice each), and whether a marked pause came before anything it could follow.

    `voiced` are the chapter's paragraphs with their runs and pauses; by default its paragraphs,
    each spoken by the narrator.
    """
    budget = options.max_segment_seconds
    if voiced is None:
        voiced = [VoicedParagraph((Run(None, text),)) for text in chapter.paragraphs]
    title = pack_paragraph(chapter.spoken_title, options.lang, budget) if chapter.spoken_title else []
    pieces = [_Piece(-1, text) for text in title]
    lost_pause = False
    index = 0
    for paragraph in voiced:
        if paragraph.pause_before is not None:
            if pieces:
                pieces[-1].marked_pause = (pieces[-1].marked_pause or 0.0) + paragraph.pause_before
            else:
                lost_pause = True
        if not paragraph.runs:
            continue
        for run in paragraph.runs:
            pieces.extend(_Piece(index, text, run.voice) for text in pack_paragraph(run.text, options.lang, budget))
            if run.pause_after is not None:
                pieces[-1].marked_pause = (pieces[-1].marked_pause or 0.0) + run.pause_after
        index += 1
    segments = []
    for position, piece in enumerate(pieces):
        following = pieces[position + 1].paragraph if position + 1 < len(pieces) else None
        pause: Pause | MarkedPause
        if piece.marked_pause is not None:
            pause = MarkedPause(piece.marked_pause)
        elif following is None:
            pause = Pause.CHAPTER
        elif following == piece.paragraph:
            pause = Pause.SENTENCE
        else:
            pause = Pause.TITLE if piece.paragraph == -1 else Pause.PARAGRAPH
        segments.append(
            Segment(
                chapter=chapter.number,
                chapter_title=chapter.title,
                index=position,
                paragraph=piece.paragraph,
                text=piece.text,
                est_seconds=estimate_seconds(piece.text),
                pause_after=pause,
                is_title=piece.paragraph == -1,
                voice=piece.voice,
            )
        )
    return segments, lost_pause


def pack_paragraph(paragraph: str, lang: str, budget_seconds: float) -> list[str]:
    """Cut one paragraph into segment texts of whole sentences within the budget where possible."""
    text = _Text(collapse_whitespace(paragraph), lang)
    if not text.text:
        return []
    units: list[Span] = []
    for start, end in sentence_spans(text.text, lang):
        units.extend(_fit(text, start, end, budget_seconds))
    return [text.text[start:end].strip() for start, end in _pack(text, units, budget_seconds)]


def sentence_spans(text: str, lang: str) -> list[Span]:
    """Sentence spans of whitespace-collapsed `text`, found by pysbd and mapped back onto `text`.

    pysbd's output is trusted only as far as its characters match `text`, and a
    boundary is kept only where a cut is allowed, so no text can be lost. pysbd
    takes time that grows with the square of its input, so a long paragraph is
    read in windows, each starting at the last sentence end the previous found.
    """
    boundaries = [0]
    start = 0
    while start < len(text):
        stop = min(len(text), start + SENTENCE_WINDOW_CHARS)
        ends = _sentence_ends(text, start, stop, lang)
        if stop < len(text):
            ends = ends[:-1]  # the window's last sentence may go on past it: read it again next time
        boundaries.extend(end for end in ends if boundaries[-1] < end < len(text) and _can_cut(text, end, lang))
        start = ends[-1] if ends and ends[-1] > start else stop
    boundaries.append(len(text))
    return [(a, b) for a, b in zip(boundaries, boundaries[1:], strict=False) if text[a:b].strip()]


def _sentence_ends(text: str, start: int, stop: int, lang: str) -> list[int]:
    """Where pysbd's sentences of text[start:stop] end, as indexes into `text`."""
    ends = []
    cursor = start
    for sentence in _segmenter(lang).segment(text[start:stop]):
        end = _match_through(text, cursor, stop, sentence)
        if end is None:
            break  # pysbd changed the text: keep the rest of the window as one sentence
        while end < stop and text[end] in _CLOSERS:
            end += 1
        ends.append(end)
        cursor = end
    return ends


@functools.lru_cache(maxsize=4)
def _segmenter(lang: str):  # -> pysbd.Segmenter
    import pysbd

    return pysbd.Segmenter(language=lang, clean=False)


def _match_through(text: str, cursor: int, stop: int, sentence: str) -> int | None:
    """The index in `text` just after `sentence`'s characters, matched from `cursor` ignoring whitespace."""
    position = cursor
    for char in sentence:
        if char.isspace():
            continue
        while position < stop and text[position].isspace():
            position += 1
        if position >= stop or text[position] != char:
            return None
        position += 1
    return position


def _can_cut(text: str, index: int, lang: str) -> bool:
    """A cut at `index` (before text[index]) never splits a whitespace-separated word.

    Only Chinese may also cut between two characters when either is CJK.
    """
    if text[index].isspace():
        return True
    if lang != "zh" or text[index - 1].isspace():
        return False
    return bool(_CJK.match(text[index]) or _CJK.match(text[index - 1]))


def _cut_strength(text: str, index: int) -> int:
    # `text` has single spaces only, so the character that ends the left part is at most two back.
    last = text[index - 2] if text[index - 1].isspace() and index >= 2 else text[index - 1]
    if last in _SENTENCE_END:
        return STRONG_BREAK
    if last in _CLAUSE_END or last in _DASHES:
        return CLAUSE_BREAK
    return COMMA_BREAK if last in _COMMAS else WORD_BREAK


class _Text:
    """A whitespace-collapsed paragraph with prefix counts, so any span's estimate costs O(1)."""

    def __init__(self, text: str, lang: str) -> None:
        self.text = text
        self.lang = lang
        self.cjk = [0]
        for char in text:
            self.cjk.append(self.cjk[-1] + (1 if _CJK.match(char) else 0))

    def trim(self, start: int, end: int) -> Span:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def seconds(self, start: int, end: int) -> float:
        """Exactly `estimate_seconds(text[start:end].strip())`, without slicing."""
        start, end = self.trim(start, end)
        return _seconds(end - start, self.cjk[end] - self.cjk[start])


def _fit(text: _Text, start: int, end: int, budget: float) -> list[Span]:
    """Split text[start:end] until each part fits the budget or cannot be cut."""
    if text.seconds(start, end) <= budget:
        return [(start, end)]
    first, last = text.trim(start, end)
    cuts = [(i, _cut_strength(text.text, i)) for i in range(first + 1, last) if _can_cut(text.text, i, text.lang)]
    if not cuts:
        return [(start, end)]
    strongest = max(strength for _, strength in cuts)
    edges = [start, *(i for i, strength in cuts if strength == strongest), end]
    parts = [(a, b) for a, b in zip(edges, edges[1:], strict=False) if a < b]
    spans: list[Span] = []
    for a, b in _balanced_pack(text, parts, budget):
        spans.extend(_fit(text, a, b, budget))
    return spans


def _pack(text: _Text, units: Sequence[Span], budget: float) -> list[Span]:
    """Greedily join consecutive spans while the joined text stays within the budget."""
    packed: list[Span] = []
    for start, end in units:
        if packed and text.seconds(packed[-1][0], end) <= budget:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def _balanced_pack(text: _Text, parts: Sequence[Span], budget: float) -> list[Span]:
    """As few groups as greedy packing makes, but of even length: no one-word stragglers.

    Each group ends at the cut nearest an equal share of what is left; if that
    ever fails to fit, the greedy packing stands.
    """
    greedy = _pack(text, parts, budget)
    groups: list[Span] = []
    first = 0
    while first < len(parts) and len(greedy) > 1:
        share = text.seconds(parts[first][0], parts[-1][1]) / (len(greedy) - len(groups))
        last = first
        while last + 1 < len(parts):
            longer = text.seconds(parts[first][0], parts[last + 1][1])
            if longer > budget or longer - share > share - text.seconds(parts[first][0], parts[last][1]):
                break
            last += 1
        if len(groups) + 1 == len(greedy):
            last = len(parts) - 1  # the last group takes the rest
        groups.append((parts[first][0], parts[last][1]))
        first = last + 1
    fits = all(text.seconds(a, b) <= budget or (a, b) in parts for a, b in groups)
    return groups if groups and fits else greedy


def _oversize_warnings(name: str, segments: Sequence[Segment], budget: float) -> list[str]:
    warnings = []
    for segment in segments:
        if segment.est_seconds > budget:
            preview = segment.text if len(segment.text) <= 40 else segment.text[:37] + "..."
            warnings.append(
                f"{name}: segment {segment.segment_id} is one word of about {segment.est_seconds:.0f} s, "
                f"over the {budget:g} s budget, and cannot be split: {preview!r}"
            )
    return warnings
