"""Settings: ``[tool.gate-tracker]`` in ``pyproject.toml`` and the environment.

Precedence, highest first: a command-line option, an environment variable,
``[tool.gate-tracker]`` in the working directory's ``pyproject.toml``, the
built-in default. The keys are documented in the README's settings table.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate_tracker.exceptions import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_DB = "GATE_TRACKER_DB"
ENV_GATE = "GATE_TRACKER_GATE"
ENV_SHARD = "GATE_TRACKER_SHARD"

DEFAULT_REQUIRED = 20
DEFAULT_BRANCH = "main"
DEFAULT_EVENTS = ("push", "schedule", "workflow_dispatch")
SECTION = "gate-tracker"
SQLITE_BUSY_TIMEOUT_S = 30
"""How long a SQLite writer waits for another's write lock before failing."""

# What SQLAlchemy reads as the user and password of a URL: scheme://user:password@
_URL_CREDENTIALS = re.compile(r"^(?P<head>[\w+]+://[^:/]*:)[^@]*@")

KNOWN_KEYS = frozenset(
    {
        # every command
        "db", "gate", "repo", "branch", "events", "required", "count_rerun_passes",
        # collect github
        "job", "workflow", "artifacts", "base_url", "timeout_minutes",
        "revisit_days", "max_wait", "request_interval",
        # flaky, forecast, report and metrics
        "flaky_window_days", "flip_rate_threshold", "fixed_after_runs",
        "fixed_significance", "new_within_days", "broken_after_runs",
        "broken_significance", "cofailure_threshold", "cofailure_min_runs",
        "forecast_window_runs", "forecast_horizon_runs",
    }
)  # fmt: skip
"""The ``[tool.gate-tracker]`` keys, documented in the README's settings table."""

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """The ``[tool.gate-tracker]`` table, read once; unknown keys are kept."""

    source: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def string(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong_type(key, "a string")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong_type(key, "a whole number")
        if minimum is not None and value < minimum:
            raise self._wrong_type(key, f"a whole number of at least {minimum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._wrong_type(key, "true or false (unquoted)")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong_type(key, "a list of strings")
        if not value:
            raise self._wrong_type(key, "a non-empty list of strings")
        return tuple(value)

    def _wrong_type(self, key: str, expected: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.source}: [tool.{SECTION}] {key} must be {expected}, "
            f"not {self.values[key]!r}"
        )


def load_settings(directory: Path | None = None) -> Settings:
    """Read ``[tool.gate-tracker]`` from ``pyproject.toml`` in ``directory``."""
    path = (directory or Path.cwd()) / "pyproject.toml"
    if not path.is_file():
        return Settings()

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"cannot read {path}: {err}") from err

    table = document.get("tool", {}).get(SECTION, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.{SECTION}] must be a table")
    for key in sorted(set(table) - KNOWN_KEYS):
        log.warning(
            "%s: [tool.%s] has an unknown key %r; it is ignored", path, SECTION, key
        )
    return Settings(source=path, values=table)


def database_url(
    option: str | None,
    settings: Settings,
    *,
    base: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> str:
    """The database URL: option, then ``GATE_TRACKER_DB``, then settings.

    The default is the SQLite file ``.gate-tracker/gate.db`` under ``base``
    (the working directory when not given). A plain file path is taken as
    a SQLite file.
    """
    directory = (base or Path.cwd()).resolve()
    chosen = option or environ.get(ENV_DB) or settings.string("db")
    if chosen:
        return as_database_url(chosen, directory)
    return default_sqlite_url(directory)


def default_sqlite_url(directory: Path) -> str:
    """The default database: the SQLite file ``.gate-tracker/gate.db`` there."""
    return f"sqlite:///{directory / '.gate-tracker' / 'gate.db'}"


def as_database_url(value: str, base: Path) -> str:
    """``value`` as an SQLAlchemy URL: a path becomes a SQLite file URL."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return f"sqlite:///{path if path.is_absolute() else base / path}"


def display_url(url: str) -> str:
    """``url`` with any password hidden, fit for messages and logs."""
    if not re.match(r"[\w+]+://", url):
        return "<unparseable database URL>"
    return _URL_CREDENTIALS.sub(r"\g<head>***@", url, count=1)


def sqlite_pragmas(busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> tuple[str, ...]:
    """The settings of every SQLite connection gate-tracker opens.

    WAL lets readers work beside a writer; writers wait for each other's lock
    for ``busy_timeout_s`` instead of failing at once.
    """
    return (
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}",
        "PRAGMA journal_mode=WAL",
    )
