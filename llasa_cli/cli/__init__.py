"""The `llasa` command: a thin layer of flags and output over `llasa_cli.pipeline`."""

from .app import entry_point, main

__all__ = ["entry_point", "main"]
