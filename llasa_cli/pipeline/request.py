"""What a user asks `synth` for: the input, the output, and every option, in one frozen request.

The request is stored with the job (`to_json` / `from_json`), so `redo` and `stitch` repeat the
run exactly as it was asked for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionError, JobStoreError
from ..options import (
    EngineOptions,
    SamplingOptions,
    ScoreWeights,
    SearchOptions,
    StitchOptions,
    TextOptions,
    VerifyOptions,
)
from ..text.cast import Cast, read_cast
from ..text.chapters import chapter_slug
from ..text.manuscript import STDIN_SOURCE, Manuscript
from ..text.metadata import BookMetadata, merge_metadata

STDOUT = "-"
INLINE_SOURCE = "<text>"  # `source` of a request that speaks --text instead of a file
REQUEST_FORMAT = 1


@dataclass(frozen=True)
class RunRequest:
    source: str  # a path, "-" for standard input, or INLINE_SOURCE with inline_text
    output: str  # a folder, or "-" for one WAV stream on standard output
    inline_text: str | None = None
    encoding: str | None = None
    voice: str | None = None  # a clip path or a stored voice name
    voice_text: str | None = None
    cast: str | None = None  # a cast file (text/cast.py): characters' voices, over the front matter's
    dry_run: bool = False
    work_dir: str | None = None  # default: OUTPUT/.llasa; a temporary folder for "-" (no resume)
    keep_front_matter: bool = False  # EPUB: keep copyright pages, table of contents...
    metadata: dict[str, Any] = field(default_factory=dict)  # book title, author... from flags (win over the file)
    text: TextOptions = field(default_factory=TextOptions)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    stitch: StitchOptions = field(default_factory=StitchOptions)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    search: SearchOptions = field(default_factory=SearchOptions)

    def to_json(self) -> dict[str, Any]:
        return {"format": REQUEST_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRequest:
        """The request `to_json` recorded; JobStoreError for one this version cannot read."""
        if not isinstance(data, dict) or data.get("format") != REQUEST_FORMAT:
            raise JobStoreError("the job was recorded by another llasa-cli version; run synth again")
        try:
            return cls._from_fields(data)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise JobStoreError(f"the job's recorded request cannot be read ({exc}); run synth again") from exc

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> RunRequest:
        nested = {"text", "sampling", "engine", "stitch", "verify", "search", "format"}
        text = dict(data["text"])
        text["lexicon"] = tuple(tuple(pair) for pair in text.get("lexicon", ()))
        return cls(
            **{k: v for k, v in data.items() if k not in nested},
            text=TextOptions(**text),
            sampling=SamplingOptions(**data["sampling"]),
            engine=EngineOptions(**data["engine"]),
            stitch=StitchOptions(**data["stitch"]),
            verify=VerifyOptions(**data["verify"]),
            search=SearchOptions(
                **{**data["search"], "score_weights": ScoreWeights(**data["search"]["score_weights"])}
            ),
        )


def check_request(request: RunRequest, json_events: bool) -> None:
    """Combinations no single option class can see."""
    if request.output == STDOUT and json_events:
        raise InvalidOptionError("-o - writes audio to standard output, so --json cannot share it")
    if request.output == STDOUT and request.stitch.format != "wav":
        raise InvalidOptionError(f"-o - streams WAV; --format {request.stitch.format} needs an output folder")


def cast_of(request: RunRequest, manuscript: Manuscript | None) -> Cast:
    """The book's cast: the manuscript's front matter's, with the `--cast` file's members over it."""
    front = manuscript.cast if manuscript is not None and manuscript.cast is not None else Cast()
    return front if request.cast is None else front.overlaid(read_cast(request.cast))


def book_metadata(request: RunRequest, manuscript: Manuscript | None) -> BookMetadata:
    """The audiobook's tags: the manuscript's front matter, the file name as a title, then the flags."""
    front = dict(manuscript.front_matter) if manuscript else {}
    if manuscript and not front.get("title") and request.inline_text is None and request.source != STDIN_SOURCE:
        front["title"] = Path(request.source).stem.replace("_", " ").title()
    return merge_metadata(front, request.metadata)


def book_stem(metadata: BookMetadata) -> str:
    """The audiobook's file name: the title as a slug (never leaving the folder)."""
    return chapter_slug(1, metadata.title or "audiobook", 1).split("-", 1)[1]
