"""Domain exceptions. Library code raises these; only the CLI turns them into exit codes.

Each class carries the exit code the CLI uses for it, so the mapping lives in one
place and the README table can be checked against it by a test.
"""

from __future__ import annotations


class LlasaError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


class InvalidOptionError(LlasaError, ValueError):
    """An option value, or a combination of options, that cannot work."""

    exit_code = 2


# --- manuscript input -------------------------------------------------------


class InputNotFoundError(LlasaError):
    exit_code = 10


class InputIsDirectoryError(LlasaError):
    exit_code = 11


class InputDecodeError(LlasaError):
    exit_code = 12


class InputBinaryError(LlasaError):
    exit_code = 13


class InputEmptyError(LlasaError):
    exit_code = 14


class LexiconError(LlasaError):
    exit_code = 15


# --- models and devices -----------------------------------------------------


class ModelNotFoundError(LlasaError):
    """A model path that does not exist, or an id that cannot be fetched (offline)."""

    exit_code = 20


class ModelLoadError(LlasaError):
    """The files exist but are not a usable model of the expected kind."""

    exit_code = 21


class DeviceUnavailableError(LlasaError):
    exit_code = 22


class VoiceError(LlasaError):
    """A voice clip or stored voice that cannot be used."""

    exit_code = 23


# --- output and jobs --------------------------------------------------------


class OutputError(LlasaError):
    """The output cannot be written: disk full, read-only folder, bad path."""

    exit_code = 30


class ExportError(LlasaError):
    """Encoding the audio into the requested format failed (e.g. no ffmpeg)."""

    exit_code = 31


class JobStoreError(LlasaError):
    """The job database is corrupt, foreign, or from an incompatible newer version."""

    exit_code = 32


class JobBusyError(LlasaError):
    """Another run holds this job; nothing was changed."""

    exit_code = 33


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
