"""What several `llasa` commands share: exit codes of outcomes, help panels, flags and helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS
from ..options import TextOptions, load_lexicon

# Outcomes of a command that ran; errors have their codes on their classes in errors.py.
EXIT_OK = 0
EXIT_PARTIAL = 3  # stopped early (Ctrl-C, SIGTERM, --max-minutes, unfinished chapters): run again to continue
EXIT_FLAGGED = 4  # finished, but some segments failed verification (or, with --strict, chapters were held)
EXIT_CHECK_FAILED = 5  # `llasa check`: a file fails an ACX rule or cannot be read
EXIT_INTERRUPTED = 130  # stopped at once (a second Ctrl-C)

# Help panels: `llasa synth --help` groups its many options under these.
PANEL_INPUT = "Input and text"
PANEL_MODELS = "Models and device"
PANEL_SAMPLING = "Sampling"
PANEL_SEARCH = "Search"
PANEL_VERIFY = "Verification"
PANEL_AUDIO = "Audio output"
PANEL_JOB = "Job control"

# --- flags shared by `split` and `synth` -----------------------------------

EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", help="Text encoding of the manuscript (default: UTF-8).", rich_help_panel=PANEL_INPUT),
]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of the text: en or zh.", rich_help_panel=PANEL_INPUT)]
NoNormalizeOpt = Annotated[
    bool,
    typer.Option(
        "--no-normalize", help="Speak the text exactly as written (whitespace aside).", rich_help_panel=PANEL_INPUT
    ),
]
NoChaptersOpt = Annotated[
    bool,
    typer.Option("--no-chapters", help="Treat the whole manuscript as one chapter.", rich_help_panel=PANEL_INPUT),
]
ChapterPatternOpt = Annotated[
    str | None,
    typer.Option(
        "--chapter-pattern", help="Regex matching a whole line that starts a chapter.", rich_help_panel=PANEL_INPUT
    ),
]
NoSpeakTitlesOpt = Annotated[
    bool,
    typer.Option(
        "--no-speak-titles", help="Do not speak chapter titles at the start of chapters.", rich_help_panel=PANEL_INPUT
    ),
]
KeepFrontMatterOpt = Annotated[
    bool,
    typer.Option(
        "--keep-front-matter",
        help="EPUB: keep the cover, title and copyright pages, contents and the like.",
        rich_help_panel=PANEL_INPUT,
    ),
]
LexiconOpt = Annotated[
    Path | None,
    typer.Option("--lexicon", help="TSV file of written<TAB>spoken replacements.", rich_help_panel=PANEL_INPUT),
]
MaxSegOpt = Annotated[
    float,
    typer.Option("--max-segment-seconds", help="Budget of estimated speech per segment.", rich_help_panel=PANEL_INPUT),
]
DialogueVoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--dialogue-voice",
        metavar="NAME",
        help="Speak quoted speech with the character NAME (a cast member or stored voice), the rest with the narrator.",
        rich_help_panel=PANEL_INPUT,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON Lines instead of a table.")]

# --- flags of the commands that work on a job folder ------------------------

OutdirArg = Annotated[Path, typer.Argument(help="The output folder of a synth run.")]
WorkDirOpt = Annotated[Path | None, typer.Option("--work-dir", help="Job folder, if synth used --work-dir.")]


def build_text_options(
    lang: str = "en",
    no_normalize: bool = False,
    no_chapters: bool = False,
    chapter_pattern: str | None = None,
    no_speak_titles: bool = False,
    lexicon: Path | None = None,
    max_segment_seconds: float = DEFAULT_MAX_SEGMENT_SECONDS,
    dialogue_voice: str | None = None,
) -> TextOptions:
    return TextOptions(
        lang=lang,
        normalize=not no_normalize,
        detect_chapters=not no_chapters,
        chapter_pattern=chapter_pattern,
        speak_titles=not no_speak_titles,
        lexicon=load_lexicon(lexicon) if lexicon else (),
        max_segment_seconds=max_segment_seconds,
        dialogue_voice=dialogue_voice,
    )


def warn(message: str) -> None:
    typer.echo(f"llasa: warning: {message}", err=True)
