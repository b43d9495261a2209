"""Reading YAML that must be plain data (front matter, a cast file): `yaml.safe_load` only, and
refused before it is built when it uses anchors or aliases or nests deeper than MAX_YAML_DEPTH.

Aliases can expand a few lines into gigabytes or into a loop, and PyYAML builds nested data by
recursion, so both are checked on the parser's event stream, which costs neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Book metadata and casts are flat mappings with an occasional list; deeper data is not ours.
MAX_YAML_DEPTH = 8


def load_plain_yaml(raw: str) -> Any:
    """The YAML data of `raw`; ValueError (its message completes a sentence such as "front matter
    ...") when it is not YAML, or not plain data."""
    import yaml

    try:
        _check_plain(yaml.parse(raw, Loader=yaml.SafeLoader))
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not valid YAML: {' '.join(str(exc).split())}") from exc


def _check_plain(events: Iterable[Any]) -> None:
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ValueError("uses YAML anchors or aliases (&name, *name), which are not allowed")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ValueError(f"nests lists or mappings deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
