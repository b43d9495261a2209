"""`llasa split FILE`: how a manuscript splits into chapters and segments (no model is loaded)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..constants import DEFAULT_MAX_SEGMENT_SECONDS
from .common import (
    ChapterPatternOpt,
    DialogueVoiceOpt,
    EncodingOpt,
    JsonOpt,
    KeepFrontMatterOpt,
    LangOpt,
    LexiconOpt,
    MaxSegOpt,
    NoChaptersOpt,
    NoNormalizeOpt,
    NoSpeakTitlesOpt,
    build_text_options,
    warn,
)


def split(
    file: Annotated[str, typer.Argument(help="Manuscript (.txt, .md or .epub), or - for standard input.")],
    keep_front_matter: KeepFrontMatterOpt = False,
    encoding: EncodingOpt = None,
    lang: LangOpt = "en",
    no_normalize: NoNormalizeOpt = False,
    no_chapters: NoChaptersOpt = False,
    chapter_pattern: ChapterPatternOpt = None,
    no_speak_titles: NoSpeakTitlesOpt = False,
    lexicon: LexiconOpt = None,
    max_segment_seconds: MaxSegOpt = DEFAULT_MAX_SEGMENT_SECONDS,
    dialogue_voice: DialogueVoiceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show how a manuscript splits into chapters and segments (no model needed)."""
    from ..pipeline import STDOUT, RunRequest, load_plan, read_input
    from .plan_view import plan_json_lines, print_plan

    options = build_text_options(
        lang, no_normalize, no_chapters, chapter_pattern, no_speak_titles, lexicon, max_segment_seconds, dialogue_voice
    )
    request = RunRequest(
        source=file, output=STDOUT, encoding=encoding, keep_front_matter=keep_front_matter, text=options
    )
    manuscript = read_input(request)
    plan = load_plan(request, manuscript)
    for message in (*manuscript.warnings, *plan.warnings):
        warn(message)
    if as_json:
        for line in plan_json_lines(plan):
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:
        print_plan(plan)


def register(app: typer.Typer) -> None:
    app.command()(split)
