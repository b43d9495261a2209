"""Where a model comes from: a short name, a Hugging Face id or a local folder, and the one
`from_pretrained` wrapper that turns loading failures into domain errors.

A missing path or an id that cannot be fetched (offline) is ModelNotFoundError, with how to
download ahead of time; files that are not a model of the expected kind are ModelLoadError.

Before a run loads anything, `require_available` takes every model it needs (`ModelNeed`: in
the local cache or not, and the command that fetches it) and, when some are missing and the hub
cannot be reached (one request, a short timeout, no retries), names them all in one error.
transformers and huggingface_hub are imported inside the functions. Never remote code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ModelLoadError, ModelNotFoundError, first_line

MODEL_ALIASES = {
    "1b": "HKUSTAudio/Llasa-1B",
    "3b": "HKUSTAudio/Llasa-3B",
    "8b": "HKUSTAudio/Llasa-8B",
}
# A hub that answers nothing within this long counts as unreachable (one request, no retries);
# HF_HUB_ETAG_TIMEOUT, huggingface_hub's own setting for such requests, overrides it.
HUB_PROBE_TIMEOUT_S = 3.0
HUB_TIMEOUT_ENV = "HF_HUB_ETAG_TIMEOUT"
HUB_CONFIG_FILE = "config.json"
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


def hub_download_command(repo_id: str) -> str:
    """The command that fetches a hub model ahead of time (huggingface_hub's `hf` CLI)."""
    return f"hf download {repo_id}"


def download_hint(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is not in the local Hugging Face cache and cannot be fetched now (offline?): "
        f"download it ahead of time with `{hub_download_command(repo_id)}`, or pass a local path"
    )


def _in_hub_cache(repo_id: str, filename: str = HUB_CONFIG_FILE) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return isinstance(found, str)


@dataclass(frozen=True)
class ModelNeed:
    """A model a run needs that may have to be downloaded: whether it is on this machine already
    and the command that fetches it. `hub_id` is its Hugging Face repository (None: fetched from
    elsewhere, like openai-whisper's checkpoints)."""

    what: str  # "language model", "codec", ...
    name: str  # as the user knows it
    present: bool
    fetch: str
    hub_id: str | None = None

    def describe(self) -> str:
        return f"{self.what} {self.name!r}"


def hub_need(
    spec: str, what: str, aliases: dict[str, str] | None = None, marker: str = HUB_CONFIG_FILE
) -> ModelNeed | None:
    """The need for a hub model (in the cache when its `marker` file is); None for a local folder,
    which is on this machine by definition. ModelNotFoundError for a path that does not exist."""
    source = resolve_spec(spec, aliases)
    if source.is_local:
        return None
    repo = source.location
    return ModelNeed(what, repo, _in_hub_cache(repo, marker), hub_download_command(repo), hub_id=repo)


def require_available(needs: Sequence[ModelNeed], probe_id: str = MODEL_ALIASES["1b"]) -> None:
    """Return when every need is on this machine, or the hub answers (what is missing downloads as
    it loads); otherwise raise one ModelNotFoundError naming every missing model and how to fetch it.

    With HF_HUB_OFFLINE set the hub is not asked. `probe_id` is a hub repository to ask about when
    no missing need has one of its own (say a Whisper checkpoint is all that is missing)."""
    missing = [need for need in needs if not need.present]
    if not missing:
        return
    probe = next((need.hub_id for need in missing if need.hub_id), probe_id)
    if not _hub_offline() and hub_reachable(probe):
        return
    raise ModelNotFoundError(missing_models_message(missing))


def missing_models_message(missing: Sequence[ModelNeed]) -> str:
    """One line: every missing model, then the commands that fetch them."""
    names = ", ".join(need.describe() for need in missing)
    commands = "; ".join(f"`{need.fetch}`" for need in missing)
    return (
        f"models needed here are not on this machine and cannot be downloaded now (offline?): {names}; "
        f"fetch them ahead of time with {commands}, or pass local folders instead"
    )


def _probe_timeout() -> float:
    try:
        return float(os.environ.get(HUB_TIMEOUT_ENV) or HUB_PROBE_TIMEOUT_S)
    except ValueError:
        return HUB_PROBE_TIMEOUT_S


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_reachable(repo_id: str) -> bool:
    """Whether the hub answers a request about `repo_id` (any answer: a 404 is an answer) within
    the probe timeout: one HEAD request without huggingface_hub's retries, which take most of a minute."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, HUB_CONFIG_FILE), timeout=_probe_timeout(), retry_on_errors=False)
    except HfHubHTTPError:
        return True
    except Exception:  # noqa: BLE001 - no route, refused, timed out, DNS: all mean "cannot fetch now"
        return False
    return True


def load_pretrained(
    loader: Callable[..., _T], source: ModelSource, what: str, *, needs_config: bool = True, **kwargs: Any
) -> _T:
    """Call a `from_pretrained` and turn its failures into ModelNotFoundError / ModelLoadError.

    A hub model already in the local cache loads from the cache without asking the hub: no
    update check (a book resumed later speaks with the same weights), and no network. Only when
    that fails (a download cut short left files out) and the hub answers is it loaded online.
    One that is not cached is downloaded only if the hub answers one short request."""
    if source.is_local:
        folder = Path(source.location)
        if not folder.is_dir():
            raise ModelLoadError(f"{what} path {source.spec!r} is a file, not a model folder")
        if needs_config and not (folder / "config.json").is_file():
            raise ModelLoadError(f"{source.spec!r} is not a {what} folder: it has no config.json")
    _quiet_loading()
    cached = not source.is_local and _in_hub_cache(source.location)
    if not source.is_local and not cached and (_hub_offline() or not hub_reachable(source.location)):
        # Said now: the loader would ask the silent hub five times per file, with back-off.
        raise ModelNotFoundError(download_hint(source.location))
    try:
        return loader(source.location, local_files_only=source.is_local or cached, **kwargs)
    except Exception as exc:
        if not source.is_local and not cached:
            raise ModelNotFoundError(download_hint(source.location)) from exc
        if not cached or _hub_offline() or not hub_reachable(source.location):
            fetch = f"; `{hub_download_command(source.location)}` fetches what the cache lacks" if cached else ""
            raise ModelLoadError(f"cannot load {what} from {source.spec!r}: {first_line(exc)}{fetch}") from exc
    try:
        return loader(source.location, local_files_only=False, **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {what} from {source.spec!r}: {first_line(exc)}") from exc


def _quiet_loading() -> None:
    """transformers' per-file progress bars would interleave with our own progress on stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
