"""From written chapter text to what the narrator should say.

Order, for each paragraph (only whitespace is touched when `normalize=False`):
1. Markdown to plain text (Markdown input only, parsed by `markdown_parser.py`,
   which loses no text): emphasis, inline code ticks and link syntax go, link
   text stays; images, raw HTML, fenced/indented code blocks, footnote markers
   (`[^1]`; the note's text is read where it is written) and link definitions
   are dropped and counted; thematic breaks go.
2. Character clean-up: NFC, curly quotes, dashes, the ellipsis character,
   non-breaking and zero-width spaces (for `zh` only spaces: CJK punctuation stays).
3. The user's lexicon (see `lexicon.py`), before any built-in rule, and its
   output is never rewritten.
4. English only: spoken forms (abbreviations, money, percentages, times, dates,
   ordinals, decades, years, cardinals and decimals, via num2words).
A paragraph with no letter or digit left (`* * *`, `...`) is dropped and counted.
Markup (markup.py) stands in the text as sentinel characters: each stretch between them is
normalised on its own, and a paragraph of sentinels alone is kept for the planner.

Year rule: a four-digit number 1100-2099 with no thousands comma is read as a
year ("nineteen eighty-four") unless it is plainly a count: preceded by no
year cue ("in", "since", a month...) and followed by a plural-looking word
("1500 soldiers" -> "one thousand five hundred soldiers"). Write `1,984` to
force a count.

Date rule (capitalised month names): "3 May", "3rd May" -> "the third of May";
"May 3, 2024" -> "May third, twenty twenty-four". Not dates: a day after a heading
word ("Chapter 3 May be") or, with no suffix or year, after a month used as a period
("in May 3 people came").

"St." rule: "Street" after an ordinal or a capitalised word not starting its sentence
("221 Baker St.", "on Main St. Then"); else "Saint" before a capital ("St. Paul"); else
"Street". "Baker St. Paul": a street mid-sentence, a saint at a sentence start.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from num2words import num2words
from num2words.lang_EN import Num2Word_EN

from ..options import TextOptions
from .lexicon import Lexicon, apply_lexicon
from .markdown_parser import FOOTNOTE_REF, markdown_parser
from .markup import SENTINELS, has_marks, map_text_pieces, without_sentinels

if TYPE_CHECKING:
    from markdown_it.token import Token

# What Markdown clean-up and paragraph filtering may drop, as (singular, plural).
CODE_BLOCK = ("code block", "code blocks")
IMAGE = ("image", "images")
HTML_BLOCK = ("HTML block", "HTML blocks")
HTML_TAG = ("HTML tag", "HTML tags")
FOOTNOTE_MARKER = ("footnote marker", "footnote markers")
LINK_DEFINITION = ("link definition", "link definitions")
NO_WORDS = ("paragraph with no words", "paragraphs with no words")
_DROP_KINDS = (CODE_BLOCK, IMAGE, HTML_BLOCK, HTML_TAG, FOOTNOTE_MARKER, LINK_DEFINITION, NO_WORDS)

HAS_WORD = re.compile(r"[^\W_]")  # a letter or digit: something a narrator can say
# Longer digit runs are read digit by digit (serial numbers, not quantities).
MAX_CARDINAL_DIGITS = 15
YEAR_MIN, YEAR_MAX = 1100, 2099


@dataclass(frozen=True)
class NormalizedText:
    """Normalised paragraphs of one chapter body, and what clean-up left out."""

    paragraphs: tuple[str, ...]
    dropped: Mapping[str, int] = field(default_factory=dict)  # keyed by singular kind
    warnings: tuple[str, ...] = ()


def normalize_body(body: str, options: TextOptions, is_markdown: bool) -> NormalizedText:
    """Split a chapter body into paragraphs (blank lines) and normalise each."""
    if not options.normalize:
        return NormalizedText(tuple(split_paragraphs(body)))
    dropped: Counter[str] = Counter()
    blocks = markdown_paragraphs(body, dropped) if is_markdown else split_paragraphs(body)
    paragraphs = []
    for block in blocks:
        text = map_text_pieces(block, lambda piece: normalize_text(piece, options))
        if HAS_WORD.search(text):
            paragraphs.append(text)
            continue
        if has_marks(text):  # its tags still pause or change the voice; its text says nothing
            paragraphs.append("".join(SENTINELS.findall(text)))
        if without_sentinels(text).strip():
            dropped[NO_WORDS[0]] += 1
    warnings = (describe_dropped(dropped),) if dropped else ()
    return NormalizedText(tuple(paragraphs), dict(dropped), warnings)


def normalize_title(title: str, options: TextOptions) -> str:
    """The spoken form of a chapter title ("Chapter XII: The Storm" -> "Chapter Twelve: The Storm").

    Returns "" when nothing sayable is left.
    """
    if not options.normalize:
        return collapse_whitespace(title)
    text = map_text_pieces(title, lambda piece: normalize_text(piece, options, title_rules=True))
    return text if HAS_WORD.search(text) or has_marks(text) else ""


def normalize_text(text: str, options: TextOptions, title_rules: bool = False) -> str:
    """Character clean-up, lexicon and (English) spoken forms for one run of plain text."""
    text = clean_characters(collapse_whitespace(text), options.lang)
    lexicon = _clean_lexicon(options.lexicon, options.lang)
    out = []
    for index, (piece, replaced) in enumerate(apply_lexicon(text, lexicon)):
        if not replaced:
            if title_rules and index == 0:
                piece = title_numbers(piece)
            if options.lang == "en":
                piece = spoken_forms(piece)
        out.append(piece)
    return collapse_whitespace("".join(out))


def describe_dropped(counts: Mapping[str, int]) -> str:
    """E.g. "dropped 2 code blocks, 1 image (not spoken)"."""
    parts = [f"{counts[one]} {one if counts[one] == 1 else many}" for one, many in _DROP_KINDS if counts.get(one)]
    return f"dropped {', '.join(parts)} (not spoken)"


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; line breaks inside one become spaces."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(collapse_whitespace(" ".join(current)))
            current = []
    if current:
        paragraphs.append(collapse_whitespace(" ".join(current)))
    return paragraphs


# --- Markdown ---------------------------------------------------------------


def markdown_paragraphs(text: str, dropped: Counter[str]) -> list[str]:
    """The text of each Markdown block (paragraph, heading, list item, table row) in order."""
    blocks: list[str] = []
    row: list[str] | None = None
    item_number = ""
    env: dict = {}
    for token in markdown_parser().parse(text, env):
        if token.type in ("fence", "code_block"):
            dropped[CODE_BLOCK[0]] += 1
        elif token.type == "html_block":
            dropped[HTML_BLOCK[0]] += 1
        elif token.type == "list_item_open" and token.info:
            item_number = f"{token.info}{token.markup} "  # an ordered list's "3." is part of the text
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(", ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            content = collapse_whitespace(inline_text(token.children or [], dropped))
            if row is not None:
                row.append(content)
            else:
                blocks.append(item_number + content)
                item_number = ""
    if env.get("references"):
        dropped[LINK_DEFINITION[0]] += len(env["references"])
    return [block for block in blocks if block.strip()]


def inline_text(children: Iterable[Token], dropped: Counter[str] | None = None) -> str:
    """Plain text of Markdown inline tokens: link text kept, images and HTML tags dropped."""
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image" and dropped is not None:
            dropped[IMAGE[0]] += 1
        elif child.type == "html_inline" and dropped is not None:
            dropped[HTML_TAG[0]] += 1
        elif child.type == FOOTNOTE_REF and dropped is not None:
            dropped[FOOTNOTE_MARKER[0]] += 1
    return "".join(parts)


# --- characters -------------------------------------------------------------

_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"), " "
)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_PUNCTUATION = {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"), '"'),
    ord("\u2026"): "...",
    ord("\u2212"): "-",  # minus sign
    **dict.fromkeys(map(ord, "\u2014\u2015"), " - "),  # em dash, horizontal bar: a spoken pause
}
_CLEAN_ZH = {**_SPACES, **_INVISIBLE}
_CLEAN_EN = {**_CLEAN_ZH, **_PUNCTUATION}
_EN_DASH_RANGE = re.compile(r"(?<=\d)\s*\u2013\s*(?=\d)")  # "1914–1918": a range
_DOUBLE_HYPHEN = re.compile(r"(?<!-)--(?!-)")  # typewriter em dash


def clean_characters(text: str, lang: str = "en") -> str:
    text = unicodedata.normalize("NFC", text)
    if lang != "en":
        return text.translate(_CLEAN_ZH)
    text = _EN_DASH_RANGE.sub(" to ", text)
    text = text.replace("\u2013", " - ")
    text = _DOUBLE_HYPHEN.sub(" - ", text)
    return text.translate(_CLEAN_EN)


@functools.lru_cache(maxsize=8)
def _clean_lexicon(lexicon: Lexicon, lang: str) -> Lexicon:
    # Written forms get the same clean-up as the text, so an entry typed with curly quotes still matches.
    return tuple((collapse_whitespace(clean_characters(written, lang)), spoken) for written, spoken in lexicon)


# --- numbers ----------------------------------------------------------------

NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"  # 1,234,567 or 1234567
_NEXT_SENTENCE = re.compile(r"\s*(?:$|[\"')\]]*\s+[\"'(]*[A-Z])")


def words(number: int) -> str:
    """num2words without its commas ("one thousand five hundred"): commas would add pauses."""
    return num2words(number).replace(",", "")


def say_digits(digits: str) -> str:
    return " ".join(words(int(digit)) for digit in digits)


def say_number(written: str) -> str:
    """'1,234' -> 'one thousand two hundred and thirty-four'; '3.14' -> 'three point one four'."""
    integer, _, fraction = written.replace(",", "").partition(".")
    if len(integer) > MAX_CARDINAL_DIGITS or (len(integer) > 1 and integer.startswith("0")):
        spoken = say_digits(integer)
    else:
        spoken = words(int(integer))
    return f"{spoken} point {say_digits(fraction)}" if fraction else spoken


def say_ordinal(written: str) -> str:
    digits = written.replace(",", "")
    if len(digits) > MAX_CARDINAL_DIGITS:
        return say_digits(digits) + "th"
    return num2words(int(digits), to="ordinal").replace(",", "")


def say_year(year: int) -> str:
    return num2words(year, to="year").replace(",", "")


def _plural(spoken: str) -> str:
    return spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"


def _ends_sentence(text: str, end: int) -> bool:
    """Whether an abbreviation's period at text[end-1] also ends the sentence."""
    return _NEXT_SENTENCE.match(text, end) is not None


_CURRENCY_CODES = {"$": "USD", "£": "GBP", "€": "EUR", "₹": "INR"}
# num2words says "pounds sterling" and "twenty euro"; a narrator says "pounds" and "euros".
_EVERYDAY_UNITS = {"GBP": (("pound", "pounds"), ("penny", "pence")), "EUR": (("euro", "euros"), ("cent", "cents"))}
_MAGNITUDES = "hundred|thousand|million|billion|trillion"


def _money(match: re.Match[str]) -> str:
    symbol, whole, fraction, magnitude = match.group("symbol", "whole", "fraction", "magnitude")
    code = _CURRENCY_CODES[symbol]
    (unit, units), (subunit, subunits) = _EVERYDAY_UNITS.get(code) or Num2Word_EN.CURRENCY_FORMS[code]
    if magnitude:  # "$2.5 million" -> "two point five million dollars"
        amount = whole + (f".{fraction}" if fraction else "")
        return f"{say_number(amount)} {magnitude} {units}"
    if fraction and len(fraction) != 2:  # "$3.5" is not dollars and cents
        return f"{say_number(f'{whole}.{fraction}')} {units}"
    digits = whole.replace(",", "")
    count = int(digits) if len(digits) <= MAX_CARDINAL_DIGITS else None
    cents = int(fraction) if fraction else 0
    head = f"{say_number(whole)} {unit if count == 1 else units}"
    if not cents:
        return head
    tail = f"{words(cents)} {subunit if cents == 1 else subunits}"
    return tail if count == 0 else f"{head} and {tail}"


def _pence(match: re.Match[str]) -> str:
    count = int(match.group(1))
    return f"{words(count)} {'penny' if count == 1 else 'pence'}"


def _time(match: re.Match[str]) -> str:
    hour, minute, meridiem = int(match["hour"]), match["minute"], match["meridiem"]
    spoken = words(hour)
    if minute and minute != "00":
        spoken += f" oh {words(int(minute))}" if minute.startswith("0") else f" {words(int(minute))}"
    elif minute and not meridiem:
        spoken += " o'clock"
    if meridiem:
        spoken += f" {meridiem.upper()}M"
        if match.group().endswith(".") and _ends_sentence(match.string, match.end()):
            spoken += "."
    return spoken


_YEAR_CUES = frozenset({
    "in", "since", "by", "from", "until", "till", "to", "during", "circa", "before", "after", "around", "of",
    "between", "year", "years", "spring", "summer", "autumn", "fall", "winter", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "ad",
})  # fmt: skip
_ERA = re.compile(r"\s*(?:AD|BC|BCE|CE|A\.D\.|B\.C\.)(?!\w)")
_PLURAL_NEXT = re.compile(r"\s+([a-z]{2,}[^s\W]s)\b")  # "soldiers", "votes"; not "glass"
_NOT_PLURAL = frozenset({"this", "does", "goes", "plus", "thus"})  # four letters or more, ending in one "s"
_PREVIOUS_WORD = re.compile(r"(\w+)\W*$")


def _previous_word(match: re.Match[str]) -> str:
    previous = _PREVIOUS_WORD.search(match.string, max(0, match.start() - 20), match.start())
    return previous.group(1).lower() if previous else ""


def _year_or_number(match: re.Match[str]) -> str:
    text, written = match.string, match.group()
    if not YEAR_MIN <= int(written) <= YEAR_MAX:
        return say_number(written)
    if _previous_word(match) in _YEAR_CUES or _ERA.match(text, match.end()):
        return say_year(int(written))
    following = _PLURAL_NEXT.match(text, match.end())
    if following and following.group(1) not in _NOT_PLURAL:
        return say_number(written)
    return say_year(int(written))


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAY = r"(?P<day>3[01]|[12]\d|0?[1-9])(?!\d)(?P<suffix>(?i:st|nd|rd|th))?"  # "3", "03", "3rd"
_DAY_MONTH = re.compile(rf"(?<![\w.,:$£€₹-]){_DAY}\s+(?P<month>{_MONTHS})(?!\w)")
_YEAR_AFTER = r"(?:(?P<comma>,?)\s+(?P<year>(?:1[1-9]|20)\d\d)(?![\w%]|[.,]\d))?"  # ", 2024": 1100-2099
_MONTH_DAY = re.compile(rf"(?<!\w)(?P<month>{_MONTHS})\s+{_DAY}(?![\w%]|[.,:]\d){_YEAR_AFTER}")
_NOT_A_DAY_AFTER = frozenset({"chapter", "part", "book", "volume", "act", "section", "page", "number", "no"})
_MONTH_AS_PERIOD_AFTER = frozenset({"in", "during", "last", "next", "this", "early", "late"})  # "in May 3 people"


def _day_month(match: re.Match[str]) -> str:
    """Day first: "3 May" or "3rd May" -> "the third of May"."""
    previous = _previous_word(match)
    if previous in _NOT_A_DAY_AFTER:
        return match.group()  # "Chapter 3 May be": the cardinal rule reads it
    return f"{'' if previous == 'the' else 'the '}{say_ordinal(match['day'])} of {match['month']}"


def _month_day(match: re.Match[str]) -> str:
    """Month first: "May 3" -> "May third"; "May 3, 2024" -> "May third, twenty twenty-four"."""
    month, day, suffix, year = match.group("month", "day", "suffix", "year")
    if not (suffix or year) and _previous_word(match) in _MONTH_AS_PERIOD_AFTER:
        return match.group()  # a count after a month: the cardinal rule reads it
    spoken = f"{month} {say_ordinal(day)}"
    return f"{spoken}{match['comma']} {say_year(int(year))}" if year else spoken


_WORD_BEFORE = re.compile(r"(?<![\w'-])(?:(?P<ordinal>\d+(?i:st|nd|rd|th))|(?P<word>[A-Z][\w'-]*))\s+$")
_SENTENCE_START = re.compile(r"(?:^|[.!?][\"')\]]*\s)[\"'(\[]*$")
_CAPITALISED_NEXT = re.compile(r"\s+[\"'(]*[A-Z]")
_SAINT_PLACES = frozenset({"Mount", "Fort", "Port", "Lake", "Cape"})  # "Mount St. Helens", "Port St. Lucie"


def _after_street_name(text: str, start: int) -> bool:
    """Whether text[start:] ("St.") follows an ordinal or a capitalised word not beginning its sentence."""
    before = _WORD_BEFORE.search(text, max(0, start - 40), start)
    if not before or before["word"] in _SAINT_PLACES:
        return False
    return bool(before["ordinal"]) or not _SENTENCE_START.search(text, 0, before.start())


def _saint_or_street(match: re.Match[str]) -> str:
    if not _after_street_name(match.string, match.start()) and _CAPITALISED_NEXT.match(match.string, match.end()):
        return "Saint"
    return _abbreviation("Street", True)(match)


def _cardinal(match: re.Match[str]) -> str:
    text = match.string
    # "MP3" -> "MP three", "10km" -> "ten km": keep number words apart from letters.
    before = " " if match.start() > 0 and text[match.start() - 1].isalpha() else ""
    after = " " if match.end() < len(text) and text[match.end()].isalpha() else ""
    return f"{before}{say_number(match.group())}{after}"


def _abbreviation(spoken: str, may_end_sentence: bool) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        text = spoken[:1].upper() + spoken[1:] if match.group()[:1].isupper() else spoken
        if may_end_sentence and match.group().endswith(".") and _ends_sentence(match.string, match.end()):
            text += "."
        return text

    return replace


# Titles before a name never end a sentence; the rest may, and keep their period when they do.
_NAME_TITLES = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor", "Rev": "Reverend",
    "Capt": "Captain", "Gen": "General", "Lt": "Lieutenant", "Sgt": "Sergeant", "Col": "Colonel",
    "Gov": "Governor", "Sen": "Senator", "Mt": "Mount", "Ft": "Fort",
}  # fmt: skip
_OTHER_ABBREVIATIONS = {
    r"e\.\s?g\.": "for example", r"i\.\s?e\.": "that is", r"etc\.": "et cetera", r"vs\.?": "versus",
    r"approx\.": "approximately", r"cf\.": "compare", r"Jr\.": "Junior", r"Sr\.": "Senior",
    r"Inc\.": "Incorporated", r"Ltd\.": "Limited", r"Ave\.": "Avenue",
}  # fmt: skip
_CASE_INSENSITIVE_ABBREVIATIONS = frozenset({r"e\.\s?g\.", r"i\.\s?e\.", r"etc\.", r"vs\.?", r"approx\.", r"cf\."})


def _rules() -> list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]]:
    rules: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
        (re.compile(r"(?<!\w)St\.(?!\w)"), _saint_or_street),
    ]
    for written, spoken in _NAME_TITLES.items():
        rules.append((re.compile(rf"(?<!\w){written}\.(?=\s)"), spoken))
    for written, spoken in _OTHER_ABBREVIATIONS.items():
        flags = re.IGNORECASE if written in _CASE_INSENSITIVE_ABBREVIATIONS else 0
        rules.append((re.compile(rf"(?<!\w){written}(?!\w)", flags), _abbreviation(spoken, True)))
    rules += [
        (re.compile(r"(?<!\w)[Nn]o\.\s?(?=\d)|#(?=\d)"), "number "),
        (re.compile(r"(?<=\s)&(?=\s)"), "and"),
        (re.compile(r"(?<![\w.-])-(?=[$£€₹]?\d)"), "minus "),
        (re.compile(rf"(?P<symbol>[$£€₹])\s?(?P<whole>{NUMBER})(?:\.(?P<fraction>\d+))?"
                    rf"(?:\s+(?P<magnitude>{_MAGNITUDES})\b)?"), _money),
        (re.compile(r"(?<![\w.,])(\d+)p(?!\w)"), _pence),
        (re.compile(rf"(?<![\d.])({NUMBER}(?:\.\d+)?)\s?%"), lambda m: f"{say_number(m.group(1))} percent"),
        (re.compile(r"(?<![\d:.])(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?![\d:])"
                    r"(?:\s?(?P<meridiem>[AaPp])(?:\.\s?)?[Mm](?!\w)\.?)?"), _time),
        (re.compile(r"(?<![\d:.])(?P<hour>1[0-2]|0?[1-9])(?P<minute>)\s?(?P<meridiem>[AaPp])(?:\.\s?)?[Mm](?!\w)\.?"),
         _time),
        (_DAY_MONTH, _day_month),
        (_MONTH_DAY, _month_day),
        (re.compile(rf"(?<![\d.])({NUMBER})(?:st|nd|rd|th)(?!\w)", re.IGNORECASE), lambda m: say_ordinal(m.group(1))),
        (re.compile(r"(?<![\d.,])(1[1-9]\d0|20\d0)'?s(?!\w)"), lambda m: _plural(say_year(int(m.group(1))))),
        (re.compile(r"(?<![\w'])'(\d0)s(?!\w)"), lambda m: _plural(words(int(m.group(1))))),
        (re.compile(rf"(?<![\w.,])\d{{3,4}}(?={_ERA.pattern})"), lambda m: say_year(int(m.group()))),
        (re.compile(r"(?<=\bAD )\d{3,4}(?![\w%]|[.,]\d)"), lambda m: say_year(int(m.group()))),
        (re.compile(r"(?<![\w.,$£€₹])\d{4}(?![\w%]|[.,]\d)"), _year_or_number),
        (re.compile(rf"(?<!\d){NUMBER}(?:\.\d+)?"), _cardinal),
    ]  # fmt: skip
    return rules


_RULES = _rules()


def spoken_forms(text: str) -> str:
    """English spoken forms of abbreviations, money, times, numbers and years."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


# --- chapter titles ---------------------------------------------------------

ROMAN = r"(?=[MDCLXVI])M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
TITLE_KEYWORDS = r"chapter|part|book|volume|act|section"
_KEYWORD_NUMBER = re.compile(rf"^(?P<keyword>(?i:{TITLE_KEYWORDS}))\s+(?P<number>\d+|(?i:{ROMAN}))(?=$|[\s.:,-])")
_BARE_ROMAN = re.compile(rf"^(?P<keyword>)(?P<number>{ROMAN})(?=$|[.:]\s|\.$|\s+-\s)")


def roman_to_int(numeral: str) -> int:
    values = [_ROMAN_VALUES[char] for char in numeral.upper()]
    # Subtractive notation: a smaller value before a larger one counts negative ("IX" = 10 - 1).
    return sum(-v if i + 1 < len(values) and values[i + 1] > v else v for i, v in enumerate(values))


def _plausible_roman(numeral: str) -> bool:
    # "Part D" or "Chapter Mix" are names, not numbers: one case throughout, and no lone D/C/L/M.
    one_case = numeral.isupper() or numeral.islower()
    return one_case and (len(numeral) > 1 or numeral.upper() in "IVX")


def title_numbers(title: str) -> str:
    """Spoken title numbers: "Chapter XII" or "Chapter 12" -> "Chapter Twelve"; "IV." -> "Four."."""
    match = _KEYWORD_NUMBER.match(title) or _BARE_ROMAN.match(title)
    if not match:
        return title
    number = match["number"]
    if len(number) > MAX_CARDINAL_DIGITS or not (number.isdigit() or _plausible_roman(number)):
        return title
    value = int(number) if number.isdigit() else roman_to_int(number)
    spoken = words(value).title().replace(" And ", " and ")
    keyword = f"{match['keyword']} " if match["keyword"] else ""
    return f"{keyword}{spoken}{title[match.end() :]}"
