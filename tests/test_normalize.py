"""Normalisation: character clean-up, Markdown, spoken forms, titles, and the lexicon."""

from __future__ import annotations

from pathlib import Path

import pytest

from llasa_cli.errors import LexiconError
from llasa_cli.options import TextOptions, load_lexicon
from llasa_cli.text.lexicon import apply_lexicon
from llasa_cli.text.normalize import (
    clean_characters,
    describe_dropped,
    normalize_body,
    normalize_text,
    normalize_title,
    roman_to_int,
    spoken_forms,
)

EN = TextOptions()
ZH = TextOptions(lang="zh")


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("I have 42 cats.", "I have forty-two cats."),
        ("They sold 1,234 copies.", "They sold one thousand two hundred and thirty-four copies."),
        ("She came 21st and he came 2nd.", "She came twenty-first and he came second."),
        ("Pi is 3.14.", "Pi is three point one four."),
        ("It cost $3.50.", "It cost three dollars and fifty cents."),
        ("It cost $1 or $0.99.", "It cost one dollar or ninety-nine cents."),
        ("A £5 note and €20.", "A five pounds note and twenty euros."),
        ("Worth $2.5 million.", "Worth two point five million dollars."),
        ("Up 50% or 3.5%.", "Up fifty percent or three point five percent."),
        ("It was -5 degrees.", "It was minus five degrees."),
        ("In 1984.", "In nineteen eighty-four."),
        ("1984 was a novel.", "nineteen eighty-four was a novel."),
        ("in 2024 and by 1900", "in twenty twenty-four and by nineteen hundred"),
        ("The 1500 soldiers", "The one thousand five hundred soldiers"),
        ("in 2005", "in two thousand and five"),
        ("In the 1980s and the '90s", "In the nineteen eighties and the nineties"),
        ("In 1066 AD", "In ten sixty-six AD"),
        ("Agent 007", "Agent zero zero seven"),
        ("Meet at 3:30 pm.", "Meet at three thirty PM."),
        ("Meet at 3:30 p.m. tomorrow", "Meet at three thirty PM tomorrow"),
        ("At 5 a.m. He woke.", "At five AM. He woke."),
        ("Lunch at 10:05 or 12:00.", "Lunch at ten oh five or twelve o'clock."),
        ("Dr. Smith and Mr. Jones", "Doctor Smith and Mister Jones"),
        ("Mrs. Brown met Ms. Green.", "Missus Brown met Miz Green."),
        ("St. Paul lived on Baker St.", "Saint Paul lived on Baker Street."),
        ("Fruit, e.g. apples; i.e. food", "Fruit, for example apples; that is food"),
        ("Cats vs. dogs", "Cats versus dogs"),
        ("Apples, pears, etc. Then more.", "Apples, pears, et cetera. Then more."),
        ("apples, etc., and pears", "apples, et cetera, and pears"),
        ("John Smith Jr. arrived", "John Smith Junior arrived"),
        ("No. 5 and #1", "number five and number one"),
        ("Tom & Jerry", "Tom and Jerry"),
        ("An MP3 player", "An MP three player"),
        ("Only 50p", "Only fifty pence"),
        ("A 99999999999999999999 id", "A " + " ".join(["nine"] * 20) + " id"),
    ],
)
def test_spoken_forms(written: str, spoken: str) -> None:
    assert spoken_forms(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("3 May", "the third of May"),
        ("3 May 2024", "the third of May twenty twenty-four"),
        ("On 3rd May 2024.", "On the third of May twenty twenty-four."),
        ("the 3rd May", "the third of May"),
        ("5 June 2005", "the fifth of June two thousand and five"),  # as the year rule reads "in 2005"
        ("on 01 April", "on the first of April"),
        ("May 3", "May third"),
        ("May 3, 2024", "May third, twenty twenty-four"),
        ("On May 3rd we left.", "On May third we left."),
        ("March 4th, 1999", "March fourth, nineteen ninety-nine"),
        ("in May 3rd, 2024", "in May third, twenty twenty-four"),
    ],
)
def test_dates(written: str, spoken: str) -> None:
    assert spoken_forms(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("May I help?", "May I help?"),
        ("3 mayors", "three mayors"),
        ("in May 3 people came", "in May three people came"),  # a count after a month used as a period
        ("In May 2024 we left.", "In May twenty twenty-four we left."),
        ("Chapter 3 May be late", "Chapter three May be late"),  # a heading number, not a day
        ("No. 3 May", "number three May"),
        ("32 May", "thirty-two May"),
        ("March 32", "March thirty-two"),
        ("May 3.5", "May three point five"),
        ("May 3,000", "May three thousand"),
        ("May 3:30", "May three thirty"),
        ("3 MAY", "three MAY"),
        ("on the 5th of May", "on the fifth of May"),
    ],
)
def test_not_dates(written: str, spoken: str) -> None:
    assert spoken_forms(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("221 Baker St.", "two hundred and twenty-one Baker Street."),
        ("221 Baker St. Then we left.", "two hundred and twenty-one Baker Street. Then we left."),
        ("Baker St. is closed.", "Baker Street is closed."),
        ("We walked on Main St. The shop was shut.", "We walked on Main Street. The shop was shut."),
        ("He lives on 5th St. Then he moved.", "He lives on fifth Street. Then he moved."),
        ("St. Paul wrote.", "Saint Paul wrote."),
        ("St. John's Wood", "Saint John's Wood"),
        ("He met St. Paul.", "He met Saint Paul."),
        ("She said. St. Paul came.", "She said. Saint Paul came."),
        ('"St. Paul," he said.', '"Saint Paul," he said.'),
        ("Mount St. Helens erupted.", "Mount Saint Helens erupted."),
        ("near Mt. St. Helens", "near Mount Saint Helens"),
        ("the Fort St. John road", "the Fort Saint John road"),
        ("Visit St. Paul's Cathedral.", "Visit Saint Paul's Cathedral."),  # "Visit" starts its sentence
        # Ambiguous: after a capitalised word mid-sentence it is a street, at a sentence start a saint.
        ("He met Baker St. Paul.", "He met Baker Street. Paul."),
        ("Baker St. Paul", "Baker Saint Paul"),
    ],
)
def test_saint_or_street(written: str, spoken: str) -> None:
    assert spoken_forms(written) == spoken


@pytest.mark.parametrize(
    ("written", "cleaned"),
    [
        ("\u201cHello,\u201d she said. \u2018Hi.\u2019", "\"Hello,\" she said. 'Hi.'"),
        ("Wait\u2026", "Wait..."),
        ("now\u2014then", "now - then"),
        ("now--then", "now - then"),
        ("pages 10\u201320", "pages 10 to 20"),
        ("red \u2013 blue", "red  -  blue"),
        ("non\u00a0breaking\u202fspaces", "non breaking spaces"),
        ("zero\u200bwidth\u00adsoft", "zerowidthsoft"),
        ("cafe\u0301", "caf\u00e9"),
    ],
)
def test_clean_characters(written: str, cleaned: str) -> None:
    assert clean_characters(written) == cleaned


def test_chinese_is_cleaned_but_not_rewritten() -> None:
    body = normalize_body("他说：\u201c我有3本书。\u201d\u00a0好\u200b的。", ZH, False)
    assert body.paragraphs == ("他说：\u201c我有3本书。\u201d 好的。",)


@pytest.mark.parametrize(
    ("title", "spoken"),
    [
        ("Chapter XII", "Chapter Twelve"),
        ("Chapter 12: The Storm", "Chapter Twelve: The Storm"),
        ("CHAPTER XXI. THE RETURN", "CHAPTER Twenty-One. THE RETURN"),
        ("Part IV \u2014 Home", "Part Four - Home"),
        ("IX. The Ninth", "Nine. The Ninth"),
        ("Chapter One: 1984", "Chapter One: nineteen eighty-four"),
        ("Part D", "Part D"),
        ("Chapter Mix", "Chapter Mix"),
        ("I Was There", "I Was There"),
    ],
)
def test_title_normalisation(title: str, spoken: str) -> None:
    assert normalize_title(title, EN) == spoken


def test_title_without_words_is_empty() -> None:
    assert normalize_title("* * *", EN) == ""


def test_roman_to_int() -> None:
    assert [roman_to_int(r) for r in ("I", "IV", "IX", "XII", "XL", "MCMXCIV")] == [1, 4, 9, 12, 40, 1994]


def test_paragraphs_split_on_blank_lines() -> None:
    body = normalize_body("One line\nand the next.\n \t\nSecond   paragraph.\n\n\n", EN, False)
    assert body.paragraphs == ("One line and the next.", "Second paragraph.")


def test_paragraph_without_words_is_dropped_and_counted() -> None:
    body = normalize_body("Before.\n\n* * *\n\n\u2026\n\nAfter.", EN, False)
    assert body.paragraphs == ("Before.", "After.")
    assert body.dropped == {"paragraph with no words": 2}
    assert body.warnings == ("dropped 2 paragraphs with no words (not spoken)",)


MARKDOWN = """Some *emphasis*, __strong__ and `code` with a [link](https://example.com "t").

![a picture](pic.png) Text <span class="x">in a span</span>.

```python
print("dropped")
```

    indented code, dropped too

<div>
raw html block
</div>

* a bullet
* another

3. third
4. fourth

---

| Name | Age |
|------|-----|
| Ann  | 30  |
"""


def test_markdown_clean_up_and_counts() -> None:
    body = normalize_body(MARKDOWN, EN, True)
    assert body.paragraphs == (
        "Some emphasis, strong and code with a link.",
        "Text in a span.",
        "a bullet",
        "another",
        "three. third",
        "four. fourth",
        "Name, Age",
        "Ann, thirty",
    )
    assert body.dropped == {"code block": 2, "image": 1, "HTML block": 1, "HTML tag": 2}
    assert body.warnings == ("dropped 2 code blocks, 1 image, 1 HTML block, 2 HTML tags (not spoken)",)


def test_describe_dropped_is_singular_and_plural() -> None:
    assert describe_dropped({"code block": 2, "image": 1}) == "dropped 2 code blocks, 1 image (not spoken)"


def test_normalize_off_keeps_text_as_written_apart_from_whitespace() -> None:
    options = TextOptions(normalize=False)
    text = "Dr. *Who* paid $3.50\u2026\n[link](x)  \u201cquoted\u201d\n\n```\ncode\n```\n\n* * *"
    body = normalize_body(text, options, True)
    assert body.paragraphs == ("Dr. *Who* paid $3.50\u2026 [link](x) \u201cquoted\u201d", "``` code ```", "* * *")
    assert body.dropped == {}
    assert normalize_title("  Chapter   XII ", options) == "Chapter XII"


# --- lexicon -----------------------------------------------------------------


def lexicon_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "words.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_lexicon(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "# names\n\nSiobhan\tshi-VAWN\n  tomato \t tomahto \nC#\tC sharp\n")
    assert load_lexicon(path) == (("Siobhan", "shi-VAWN"), ("tomato", "tomahto"), ("C#", "C sharp"))


@pytest.mark.parametrize("bad", ["no tab here", "a\tb\tc", "\tspoken only", "written\t"])
def test_bad_lexicon_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = lexicon_file(tmp_path, f"# ok\ngood\tfine\n{bad}\n")
    with pytest.raises(LexiconError, match=r"words\.tsv, line 3: expected 'written<TAB>spoken'"):
        load_lexicon(path)


def test_conflicting_lexicon_entries(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "a\tb\nx\ty\na\tc\n")
    with pytest.raises(LexiconError, match=r"words\.tsv, line 3: 'a' is already defined on line 1"):
        load_lexicon(path)


def test_missing_or_undecodable_lexicon(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="nope.tsv: no such lexicon file"):
        load_lexicon(tmp_path / "nope.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"caf\xe9\tcafe\n")
    with pytest.raises(LexiconError, match="bad.tsv: lexicon is not UTF-8"):
        load_lexicon(bad)


def lexicon_options(*entries: tuple[str, str]) -> TextOptions:
    return TextOptions(lexicon=tuple(entries))


def test_lexicon_is_whole_word_and_case_aware() -> None:
    options = lexicon_options(("tomato", "tomahto"), ("NASA", "nassa"))
    text = "Tomato, tomatoes, TOMATO and tomato. NASA and nasa."
    assert normalize_text(text, options) == "Tomahto, tomatoes, TOMAHTO and tomahto. nassa and nasa."


def test_longest_lexicon_entry_wins() -> None:
    options = lexicon_options(("New York", "Noo York"), ("New York City", "the city"))
    assert normalize_text("New York City is in New York.", options) == "the city is in Noo York."


def test_lexicon_comes_before_and_is_safe_from_other_rules() -> None:
    options = lexicon_options(("R2-D2", "Artoo Detoo"), ("Dr. No", "Doctor No, 1962"), ("1984", "Orwell's 1984"))
    text = "R2-D2 met Dr. No in 1984."
    assert normalize_text(text, options) == "Artoo Detoo met Doctor No, 1962 in Orwell's 1984."


def test_lexicon_entry_with_curly_quote_matches_straight_and_curly_text() -> None:
    options = lexicon_options(("don\u2019t", "do not"))
    assert normalize_text("I don't and I don\u2019t.", options) == "I do not and I do not."


def test_apply_lexicon_pieces() -> None:
    assert apply_lexicon("a cat in a category", (("cat", "dog"),)) == [
        ("a ", False),
        ("dog", True),
        (" in a category", False),
    ]
    assert apply_lexicon("unchanged", ()) == [("unchanged", False)]


def test_lexicon_applies_in_titles_and_chinese() -> None:
    assert normalize_title("Chapter 3: Siobhan", lexicon_options(("Siobhan", "Shivawn"))) == "Chapter Three: Shivawn"
    zh = TextOptions(lang="zh", lexicon=(("GPU", "图形处理器"),))
    assert normalize_body("我的GPU很快。 GPU", zh, False).paragraphs == ("我的图形处理器很快。 图形处理器",)
    assert normalize_text("GPUs", zh) == "GPUs"
