"""The exceptions gate-tracker raises; the CLI catches ``GateTrackerError``."""

from __future__ import annotations


class GateTrackerError(Exception):
    """Base of every error gate-tracker raises on purpose.

    Messages say what failed, on what, and what to do next; the CLI prints
    them without a traceback.
    """


class ConfigurationError(GateTrackerError):
    """A setting, option or ``[tool.gate-tracker]`` entry is missing or wrong."""


class StorageError(GateTrackerError):
    """The database could not be opened, read or written."""


def database_failure(action: str, shown_url: str, cause: object) -> StorageError:
    """The error for a database that could not be read or written: ``action``
    says which ("read", "write to"), ``cause`` is what the driver raised."""
    return StorageError(
        f"could not {action} the database {shown_url}: {first_line(cause)}. Check "
        "that it is reachable and writable, then try again."
    )


def first_line(error: object) -> str:
    """The first line of ``error``'s message, or its type's name when empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SchemaTooNewError(StorageError):
    """The database was written by a newer gate-tracker; it is never written."""


class SchemaOutdatedError(StorageError):
    """A shared database needs ``gate-tracker db upgrade`` before use."""


class InputError(GateTrackerError):
    """A record, report or other input file is unreadable or malformed.

    The message names the file and, where known, the line or field.
    """


class CollectionError(GateTrackerError):
    """Collecting history from a CI provider failed."""


class GateTrackerWarning(UserWarning):
    """A recoverable problem; the message starts with a short id (``GT1xx``)."""
