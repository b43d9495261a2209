"""Named limits of the model, the codec and the text pipeline."""

from __future__ import annotations

# X-Codec2: 16 kHz mono, one code per 320 samples, so 50 codes per second.
SAMPLE_RATE = 16_000
SAMPLES_PER_CODE = 320
CODES_PER_SECOND = SAMPLE_RATE // SAMPLES_PER_CODE
CODEBOOK_SIZE = 65_536

# Llasa was trained on 2,048 tokens in all: prompt text + reference codes + generated codes.
CONTEXT_TOKENS = 2_048

# Text pipeline defaults.
DEFAULT_MAX_SEGMENT_SECONDS = 12.0
# A narrator reads roughly 15 characters a second (about 160 words a minute); used
# only to plan segment sizes and token caps, never to judge audio.
CHARS_PER_SECOND = 15.0
# Chinese is read at about 4-5 characters (syllables) a second; CJK characters count at this rate.
CJK_CHARS_PER_SECOND = 4.5

# Reference voice clips longer than this are cut at a pause so the prompt leaves room.
MAX_VOICE_SECONDS = 15.0

# A segment's text edited on the review page: room to reword a segment (about 180 characters at
# the default length), not to paste in a paragraph the context could not hold.
MAX_EDITED_TEXT_CHARS = 500
