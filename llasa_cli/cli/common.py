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


# --- flags of the commands that speak (`synth`, `scaling`) ----------------------------------

ModelOpt = Annotated[
    str, typer.Option("--model", help="1b, 3b, 8b, a Hugging Face id or a local folder.", rich_help_panel=PANEL_MODELS)
]
CodecOpt = Annotated[
    str, typer.Option("--codec", help="X-Codec2 Hugging Face id or local folder.", rich_help_panel=PANEL_MODELS)
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.", rich_help_panel=PANEL_MODELS)]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype", help="auto, bfloat16, float16 or float32 (auto: bf16 on CUDA).", rich_help_panel=PANEL_MODELS
    ),
]
BatchSizeOpt = Annotated[
    str,
    typer.Option(
        "--batch-size",
        metavar="<int|auto>",
        help="Segments per batch, or 'auto': from free GPU memory.",
        rich_help_panel=PANEL_MODELS,
    ),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--voice", help="Narrator: a clip (wav, flac, mp3...) or a stored voice name.", rich_help_panel=PANEL_MODELS
    ),
]
VoiceTextOpt = Annotated[
    str | None,
    typer.Option(
        "--voice-text", help="What the voice clip says (else Whisper transcribes it).", rich_help_panel=PANEL_MODELS
    ),
]
TemperatureOpt = Annotated[
    float, typer.Option("--temperature", help="Sampling temperature (0: greedy).", rich_help_panel=PANEL_SAMPLING)
]
TopPOpt = Annotated[
    float,
    typer.Option(
        "--top-p", help="Nucleus sampling: keep the smallest set of this mass.", rich_help_panel=PANEL_SAMPLING
    ),
]
TopKOpt = Annotated[
    int,
    typer.Option("--top-k", help="Keep the k likeliest codes; 0 turns top-k off.", rich_help_panel=PANEL_SAMPLING),
]
RepetitionPenaltyOpt = Annotated[
    float,
    typer.Option(
        "--repetition-penalty", help="Penalty on codes already spoken (1.0: off).", rich_help_panel=PANEL_SAMPLING
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed", help="Run seed; each segment derives its own from it and its text.", rich_help_panel=PANEL_SAMPLING
    ),
]
BeamCandidatesOpt = Annotated[
    int,
    typer.Option("--beam-candidates", help="Continuations sampled per beam and step.", rich_help_panel=PANEL_SEARCH),
]
BeamStepSecondsOpt = Annotated[
    float,
    typer.Option(
        "--beam-step-seconds", help="Speech added per beam step before pruning.", rich_help_panel=PANEL_SEARCH
    ),
]
ScoreWeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--score-weights", help="Ranking weights, e.g. asr=0.5,speaker=0.3,signal=0.2.", rich_help_panel=PANEL_SEARCH
    ),
]
