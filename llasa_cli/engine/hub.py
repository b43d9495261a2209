"""Where a model comes from: a short name, a Hugging Face id or a local folder, and the one
`from_pretrained` wrapper that turns loading failures into domain errors.

A missing path or an id that cannot be fetched (offline) is ModelNotFoundError, with how to
download ahead of time; files that are not a model of the expected kind are ModelLoadError.
transformers and huggingface_hub are imported inside the functions. Never remote code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ModelLoadError, ModelNotFoundError, first_line

MODEL_ALIASES = {
    "1b": "HKUSTAudio/Llasa-1B",
    "3b": "HKUSTAudio/Llasa-3B",
    "8b": "HKUSTAudio/Llasa-8B",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local folder, or a hub id (fetched or taken from the cache)."""

    spec: str  # as the user wrote it
    location: str  # the folder or the hub id
    is_local: bool


def resolve_spec(spec: str, aliases: dict[str, str] | None = None) -> ModelSource:
    """Short name, hub id or local path; ModelNotFoundError for a path that does not exist."""
    aliases = MODEL_ALIASES if aliases is None else aliases
    cleaned = spec.strip()
    if cleaned.lower() in aliases:
        return ModelSource(spec=spec, location=aliases[cleaned.lower()], is_local=False)
    path = Path(cleaned).expanduser()
    if path.exists():
        return ModelSource(spec=spec, location=str(path.resolve()), is_local=True)
    looks_like_path = path.is_absolute() or cleaned.startswith((".", "~")) or "\\" in cleaned
    if looks_like_path or not _HUB_ID.match(cleaned):
        raise ModelNotFoundError(f"model path {spec!r} does not exist")
    return ModelSource(spec=spec, location=cleaned, is_local=False)


def download_hint(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is not in the local Hugging Face cache and cannot be fetched now (offline?): "
        f"download it ahead of time with `hf download {repo_id}` (or `huggingface-cli download {repo_id}`), "
        "or pass a local path"
    )


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def load_pretrained(
    loader: Callable[..., _T], source: ModelSource, what: str, *, needs_config: bool = True, **kwargs: Any
) -> _T:
    """Call a `from_pretrained` and turn its failures into ModelNotFoundError / ModelLoadError."""
    if source.is_local:
        folder = Path(source.location)
        if not folder.is_dir():
            raise ModelLoadError(f"{what} path {source.spec!r} is a file, not a model folder")
        if needs_config and not (folder / "config.json").is_file():
            raise ModelLoadError(f"{source.spec!r} is not a {what} folder: it has no config.json")
    _quiet_loading()
    try:
        return loader(source.location, local_files_only=source.is_local, **kwargs)
    except Exception as exc:
        if not source.is_local and not _in_hub_cache(source.location):
            raise ModelNotFoundError(download_hint(source.location)) from exc
        raise ModelLoadError(f"cannot load {what} from {source.spec!r}: {first_line(exc)}") from exc


def _quiet_loading() -> None:
    """transformers' per-file progress bars would interleave with our own progress on stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
