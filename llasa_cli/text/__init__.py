"""From a manuscript to a plan of segments: pure, deterministic text processing (no torch).

`read_manuscript` (manuscript.py) decodes a .txt, .md or .epub file (epub.py, epub_xhtml.py) with
its YAML front matter (metadata.py); `build_plan` (planner.py) finds chapters (chapters.py),
normalises the text for speech (normalize.py; Markdown is read by markdown_parser.py, and the user's
lexicon.py applies) and packs sentences into segments. The `Plan` of `Chapter`s and `Segment`s
(plan.py) is what the rest of the pipeline reads.
"""

from .chapters import chapter_slug
from .manuscript import STDIN_SOURCE, Manuscript, manuscript_from_text, read_manuscript
from .metadata import BookMetadata, merge_metadata
from .plan import Chapter, Pause, Plan, Segment
from .planner import build_plan, estimate_seconds, sentence_spans

__all__ = [
    "STDIN_SOURCE",
    "BookMetadata",
    "Chapter",
    "Manuscript",
    "Pause",
    "Plan",
    "Segment",
    "build_plan",
    "chapter_slug",
    "estimate_seconds",
    "manuscript_from_text",
    "merge_metadata",
    "read_manuscript",
    "sentence_spans",
]
