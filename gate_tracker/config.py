"""Settings: ``[tool.gate-tracker]`` in ``pyproject.toml`` and the environment.

Precedence, highest first: a command-line option, an environment variable,
``[tool.gate-tracker]`` in the working directory's ``pyproject.toml``, the
built-in default. The keys are documented in the README's settings table.
"""

from __future__ import annotations

import os
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

    def integer(self, key: str, default: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong_type(key, "a whole number")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong_type(key, "a list of strings")
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
    (the working directory when not given).
    """
    from_settings = settings.string("db")
    chosen = option or environ.get(ENV_DB) or from_settings
    if chosen:
        return chosen
    directory = (base or Path.cwd()).resolve()
    return f"sqlite:///{directory / '.gate-tracker' / 'gate.db'}"
