"""Options and helpers shared by several `llasa` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..options import TextOptions

# Run outcomes; errors have their codes on their classes in errors.py.
EXIT_OK = 0
EXIT_PARTIAL = 3
EXIT_FLAGGED = 4  # finished, but some segments failed verification (or, with --strict, chapters were held)

# --- options shared by `split` and `synth` -----------------------------------

EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="Text encoding of the manuscript (default: UTF-8).")
]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of the text: en or zh.")]
NoNormalizeOpt = Annotated[
    bool, typer.Option("--no-normalize", help="Speak the text exactly as written (whitespace aside).")
]
NoChaptersOpt = Annotated[bool, typer.Option("--no-chapters", help="Treat the whole manuscript as one chapter.")]
ChapterPatternOpt = Annotated[
    str | None, typer.Option("--chapter-pattern", help="Regex matching a whole line that starts a chapter.")
]
NoSpeakTitlesOpt = Annotated[
    bool, typer.Option("--no-speak-titles", help="Do not speak chapter titles at the start of chapters.")
]
LexiconOpt = Annotated[
    Path | None, typer.Option("--lexicon", help="TSV file of written<TAB>spoken replacements.")
]
MaxSegOpt = Annotated[
    float, typer.Option("--max-segment-seconds", help="Budget of estimated speech per segment.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON Lines instead of a table.")]


def build_text_options(
    lang: str,
    no_normalize: bool,
    no_chapters: bool,
    chapter_pattern: str | None,
    no_speak_titles: bool,
    lexicon: Path | None,
    max_segment_seconds: float,
) -> TextOptions:
    from ..text.lexicon import load_lexicon

    return TextOptions(
        lang=lang,
        normalize=not no_normalize,
        detect_chapters=not no_chapters,
        chapter_pattern=chapter_pattern,
        speak_titles=not no_speak_titles,
        lexicon=load_lexicon(lexicon) if lexicon else (),
        max_segment_seconds=max_segment_seconds,
    )


def warn(message: str) -> None:
    typer.echo(f"llasa: warning: {message}", err=True)
