"""WER / CER after Whisper's normalisers, with concrete numbers."""

from __future__ import annotations

import pytest

from llasa_cli.verify.textcompare import edit_distance, error_rate, metric_for, normalize_text, tokens


def test_edit_distance_counts_substitutions_deletions_and_insertions():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0


def test_normaliser_makes_numbers_case_punctuation_and_spelling_agree():
    written = normalize_text("She counted twelve ships, Mr. Smith's colour!")
    heard = normalize_text("she counted 12 ships mister Smith's color")
    assert written == heard == "she counted 12 ships mister smith is color"


@pytest.mark.parametrize(
    ("reference", "hypothesis", "rate", "errors"),
    [
        ("The cat sat on the mat.", "the cat sat on the mat", 0.0, 0),
        ("The cat sat on the mat.", "The cat sat on a mat.", 1 / 6, 1),  # one substitution
        ("The cat sat on the mat.", "The cat sat.", 3 / 6, 3),  # three deletions (a dropped clause)
        ("The cat sat.", "The cat sat on the mat.", 3 / 3, 3),  # three insertions
        ("The cat sat.", "A dog ran away quickly now.", 6 / 3, 6),  # babble: WER above 1
        # the spoken text (as the text normaliser writes it) against Whisper's digits
        ("It cost three dollars, fifty cents in nineteen ninety-nine.", "It cost $3.50 in 1999.", 0.0, 0),
    ],
)
def test_word_error_rate_numbers(reference, hypothesis, rate, errors):
    result = error_rate(reference, hypothesis, "en")
    assert result.metric == "wer"
    assert result.rate == pytest.approx(rate)
    assert result.errors == errors


def test_parenthesised_words_count_so_a_skipped_aside_is_caught():
    result = error_rate("The cat (a tabby) sat.", "The cat sat.")
    assert result.reference_tokens == 5
    assert result.rate == pytest.approx(2 / 5)


def test_empty_reference_and_punctuation_only_text():
    assert error_rate("...", "").rate == 0.0
    assert error_rate("", "hello").rate == 1.0
    assert tokens("... !") == []


def test_chinese_uses_character_error_rate():
    assert metric_for("zh") == "cer"
    assert metric_for("en") == "wer"
    exact = error_rate("今天天气很好。", "今天天气很好", "zh")
    assert (exact.metric, exact.rate) == ("cer", 0.0)
    wrong = error_rate("今天天气很好。", "今天天汽很好吗", "zh")  # one substitution, one insertion
    assert wrong.errors == 2
    assert wrong.rate == pytest.approx(2 / 6)
    assert tokens("你好，世界！", "zh") == ["你", "好", "世", "界"]


def test_chinese_counts_latin_letters_one_by_one():
    mixed = error_rate("我用GPU", "我用GBU", "zh")  # CER tokens: 我 用 g p u
    assert (mixed.metric, mixed.errors, mixed.reference_tokens) == ("cer", 1, 5)
