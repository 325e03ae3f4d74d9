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
