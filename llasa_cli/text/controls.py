"""Terminal control characters out of manuscript text.

A manuscript, or an EPUB's or front matter's metadata, can hold raw escape sequences
(`ESC [ 31 m` colours, `ESC ] 0 ; ... BEL` window titles) and other C0/C1 control
characters. They are not words, and printed in a chapter title they would recolour
or retitle the user's terminal. So they go, sequences whole (so `[31m` is not left
behind to be read out), when the text is read. Line-breaking controls (form feed,
vertical tab, the separators, NEL) become line ends and the unit separator a space;
tab and newline stay.
"""

from __future__ import annotations

import re

# ECMA-48 sequences: CSI (ESC [ or 8-bit CSI, parameters, a final byte), then OSC, DCS, SOS, PM
# and APC strings ended by BEL or ST within their line, then any other escape (ESC, intermediate
# bytes, a final byte). An unended string loses only its introducer: the text after it stays.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)
_LINE_BREAKING = dict.fromkeys(map(ord, "\x0b\x0c\x1c\x1d\x1e\x85"), "\n")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def remove_terminal_controls(text: str) -> tuple[str, int]:
    """`text` without escape sequences and control characters, and how many were removed."""
    text, sequences = _ESCAPE_SEQUENCE.subn("", text)
    text, characters = _CONTROL.subn("", text.translate(_LINE_BREAKING).replace("\x1f", " "))
    return text, sequences + characters


def without_terminal_controls(text: str) -> str:
    """`text` without escape sequences and control characters (see the module doc)."""
    return remove_terminal_controls(text)[0]
