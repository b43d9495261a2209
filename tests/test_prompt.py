"""The prompt is the one Llasa was trained on, token for token, and speech codes map to token ids both ways."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.constants import CODEBOOK_SIZE
from llasa_cli.engine.prompt import SpeechVocab, build_prompt_ids, speech_token
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.errors import ModelLoadError


@pytest.fixture(scope="module")
def tokenizer(tiny_generator):
    return tiny_generator.tokenizer


@pytest.fixture(scope="module")
def vocab(tiny_generator) -> SpeechVocab:
    return tiny_generator.vocab


def expected_ids(tokenizer, spoken: str, voice_codes: list[int]) -> list[int]:
    """The Llama-3-style chat prompt assembled by hand, piece by piece."""

    def text(piece: str) -> list[int]:
        return tokenizer(piece, add_special_tokens=False)["input_ids"]

    def tok(token: str) -> list[int]:
        return [tokenizer.convert_tokens_to_ids(token)]

    header = tok("<|start_header_id|>")
    end_header = tok("<|end_header_id|>")
    return [
        *tok("<|begin_of_text|>"),
        *header, *text("system"), *end_header,
        *text("\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"), *tok("<|eot_id|>"),
        *header, *text("user"), *end_header,
        *text("\n\nConvert the text to speech:"), *tok("<|TEXT_UNDERSTANDING_START|>"),
        *text(spoken), *tok("<|TEXT_UNDERSTANDING_END|>"), *tok("<|eot_id|>"),
        *header, *text("assistant"), *end_header, *text("\n\n"),
        *tok("<|SPEECH_GENERATION_START|>"),
        *[tokenizer.convert_tokens_to_ids(speech_token(c)) for c in voice_codes],
    ]  # fmt: skip


def test_prompt_without_voice_matches_design(tokenizer, vocab) -> None:
    ids = build_prompt_ids(tokenizer, vocab, "Hello, world.", None)
    assert ids == expected_ids(tokenizer, "Hello, world.", [])
    assert ids[-1] == vocab.start_id  # the assistant turn is left open, no <|eot_id|>


def test_prompt_with_voice_matches_design(tokenizer, vocab) -> None:
    voice = VoicePrompt(codes=np.array([5, 0, CODEBOOK_SIZE - 1, 5], dtype=np.int64), text="This is my voice.")
    ids = build_prompt_ids(tokenizer, vocab, "Hello, world.", voice)
    assert ids == expected_ids(tokenizer, "This is my voice. Hello, world.", [5, 0, CODEBOOK_SIZE - 1, 5])
    assert np.array_equal(vocab.id_to_code[np.array(ids[-4:])], voice.codes)


def test_prompt_does_not_depend_on_todays_date(tokenizer, vocab) -> None:
    rendered = tokenizer.decode(build_prompt_ids(tokenizer, vocab, "Hi.", None))
    assert "Today Date: 26 Jul 2024" in rendered


def test_voice_with_invalid_codes_is_rejected(tokenizer, vocab) -> None:
    with pytest.raises(ValueError):
        build_prompt_ids(tokenizer, vocab, "Hi.", VoicePrompt(codes=np.array([CODEBOOK_SIZE]), text="x"))


def test_codes_and_ids_round_trip(tokenizer, vocab) -> None:
    codes = np.array([0, 1, 2, 999, CODEBOOK_SIZE - 1, 1], dtype=np.int64)
    ids = vocab.codes_to_ids(codes)
    assert ids.tolist() == tokenizer.convert_tokens_to_ids([speech_token(int(c)) for c in codes])
    assert np.array_equal(vocab.id_to_code[ids], codes)
    assert vocab.id_to_code[vocab.code_to_id].tolist() == list(range(CODEBOOK_SIZE))


def test_non_speech_ids_are_not_codes(vocab) -> None:
    assert vocab.id_to_code[[vocab.start_id, vocab.end_id]].tolist() == [-1, -1]
    with pytest.raises(ValueError):
        vocab.codes_to_ids(np.array([-1]))


def test_allowed_ids_are_codes_then_end(vocab) -> None:
    allowed = vocab.allowed_ids
    assert allowed.shape == (CODEBOOK_SIZE + 1,)
    assert np.array_equal(allowed[:CODEBOOK_SIZE], vocab.code_to_id)
    assert allowed[-1] == vocab.end_id


class _PlainTokenizer:
    """A tokenizer without the Llasa tokens: every lookup is unknown."""

    unk_token_id = 0

    def __len__(self) -> int:
        return 100

    def convert_tokens_to_ids(self, tokens):
        return 0 if isinstance(tokens, str) else [0] * len(tokens)


def test_vocab_of_a_plain_tokenizer_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match="not a Llasa tokenizer"):
        SpeechVocab.from_tokenizer(_PlainTokenizer())
