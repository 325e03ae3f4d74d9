"""Fixtures of the end-to-end suite: the installed product, driven as a user would.

Every test copies a sample project from ``e2e/projects`` into a temporary
directory and runs the installed ``gate-tracker`` command and pytest (with
the plugin loaded from its entry point) in subprocesses there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECTS = Path(__file__).parent / "projects"
collect_ignore = ["projects"]


@dataclass
class Workspace:
    """A sample project copied into a temporary directory, with its database."""

    path: Path
    env: dict[str, str]

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.path / '.gate-tracker' / 'gate.db'}"

    def pytest(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run pytest in the project, as a user's gate command would."""
        return self.run(
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, env=env
        )

    def gate_tracker(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed ``gate-tracker`` command in the project."""
        return self.run(_gate_tracker_command(), *args, env=env)

    def status_json(self, *args: str) -> dict[str, Any]:
        result = self.gate_tracker("status", "--json", *args)
        assert result.returncode in (0, 1), result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def run(
        self, *command: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.path,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _gate_tracker_command() -> str:
    beside_python = Path(sys.executable).parent / "gate-tracker"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("gate-tracker")
    if found is None:
        pytest.fail(
            "the gate-tracker command is not installed: "
            "run `make gate` or `pip install .`"
        )
    return found


def _user_environment() -> dict[str, str]:
    # A user's shell outside CI: no GitHub or gate-tracker variables leak in
    # from the session running this suite.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GITHUB_", "GATE_TRACKER_", "PYTEST_", "CI"))
    }
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Workspace]:
    """``workspace("shop")`` copies that sample project and returns it."""

    def make(project: str) -> Workspace:
        target = tmp_path / project
        shutil.copytree(PROJECTS / project, target)
        return Workspace(path=target, env=_user_environment())

    return make
