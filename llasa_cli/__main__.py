"""`python -m llasa_cli` runs the `llasa` command."""

from .cli import entry_point

entry_point()
