"""The Llasa prompt and the speech part of its vocabulary.

Token ids are always looked up in the tokenizer (`convert_tokens_to_ids`), never derived
from the released tokenizer's offset, so a test tokenizer with other ids works the same.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..constants import CODEBOOK_SIZE
from ..errors import ModelLoadError
from .protocols import VoicePrompt

SPEECH_START_TOKEN = "<|SPEECH_GENERATION_START|>"
SPEECH_END_TOKEN = "<|SPEECH_GENERATION_END|>"
TEXT_START_TOKEN = "<|TEXT_UNDERSTANDING_START|>"
TEXT_END_TOKEN = "<|TEXT_UNDERSTANDING_END|>"
USER_INSTRUCTION = "Convert the text to speech:"

# Llama-3.2's template writes today's date into the system header unless `date_string` is
# passed; a fixed date keeps a segment's prompt, and so its tokens, the same on every day.
# This is the template's own default date. Templates that do not use it ignore it.
PROMPT_DATE = "26 Jul 2024"


def speech_token(code: int) -> str:
    """The tokenizer's spelling of speech code `code`."""
    return f"<|s_{code}|>"


@dataclass(frozen=True)
class SpeechVocab:
    """Speech codes <-> token ids, and the ids of the speech start/end markers.

    `code_to_id[c]` is the token id of code `c`; `id_to_code[i]` is the code of token id `i`
    or -1 where id `i` is not a speech token.
    """

    code_to_id: np.ndarray  # int64 [CODEBOOK_SIZE]
    id_to_code: np.ndarray  # int64 [vocab size]
    start_id: int
    end_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> SpeechVocab:
        """Look every speech token up; ModelLoadError when the tokenizer lacks any of them."""
        start_id = _lookup_one(tokenizer, SPEECH_START_TOKEN)
        end_id = _lookup_one(tokenizer, SPEECH_END_TOKEN)
        for marker in (TEXT_START_TOKEN, TEXT_END_TOKEN):
            _lookup_one(tokenizer, marker)
        ids = tokenizer.convert_tokens_to_ids([speech_token(code) for code in range(CODEBOOK_SIZE)])
        code_to_id = np.asarray([-1 if i is None else i for i in ids], dtype=np.int64)
        missing = np.flatnonzero((code_to_id < 0) | (code_to_id == _unk_id(tokenizer)))
        if missing.size:
            raise ModelLoadError(
                f"the tokenizer lacks {missing.size} of the {CODEBOOK_SIZE} speech tokens "
                f"(first: {speech_token(int(missing[0]))}): it is not a Llasa tokenizer"
            )
        if np.unique(code_to_id).size != CODEBOOK_SIZE:
            raise ModelLoadError("the tokenizer maps two speech tokens to one id: it is not a Llasa tokenizer")
        vocab_size = max(len(tokenizer), int(code_to_id.max()) + 1, end_id + 1)
        id_to_code = np.full(vocab_size, -1, dtype=np.int64)
        id_to_code[code_to_id] = np.arange(CODEBOOK_SIZE, dtype=np.int64)
        return cls(code_to_id=code_to_id, id_to_code=id_to_code, start_id=start_id, end_id=end_id)

    @property
    def allowed_ids(self) -> np.ndarray:
        """The ids the LM may emit, in code order, then the end token: index c is code c."""
        return np.concatenate([self.code_to_id, np.asarray([self.end_id], dtype=np.int64)])

    def codes_to_ids(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
            raise ValueError(f"speech codes must be in 0..{CODEBOOK_SIZE - 1}")
        return self.code_to_id[codes]


def _unk_id(tokenizer: Any) -> int | None:
    return getattr(tokenizer, "unk_token_id", None)


def _lookup_one(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == _unk_id(tokenizer):
        raise ModelLoadError(f"the tokenizer has no {token} token: it is not a Llasa tokenizer")
    return int(token_id)


def prompt_messages(text: str, voice: VoicePrompt | None) -> list[dict[str, str]]:
    """The two chat turns Llasa was trained on: the instruction with the text to speak (after the
    voice clip's transcript), and the speech turn, left open after the voice clip's codes."""
    spoken = " ".join(part for part in (voice.text, text) if part) if voice is not None else text
    user = f"{USER_INSTRUCTION}{TEXT_START_TOKEN}{spoken}{TEXT_END_TOKEN}"
    voice_tokens = "" if voice is None else "".join(speech_token(int(c)) for c in np.asarray(voice.codes).ravel())
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": SPEECH_START_TOKEN + voice_tokens},
    ]


def build_prompt_ids(tokenizer: Any, vocab: SpeechVocab, text: str, voice: VoicePrompt | None) -> list[int]:
    """Token ids of the prompt: the chat template with the last (assistant) turn left open."""
    if voice is not None:
        vocab.codes_to_ids(np.asarray(voice.codes))  # validates the voice's codes
    rendered = tokenizer.apply_chat_template(
        prompt_messages(text, voice),
        tokenize=False,
        continue_final_message=True,
        date_string=PROMPT_DATE,
    )
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]
