"""``gate-tracker status`` and ``runs`` as a release manager runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SessionFactory

from gate_tracker.records import TestRecord
from gate_tracker.storage import Store


def gate_tracker(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate_tracker", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


@pytest.fixture
def history(tmp_path: Path, sqlite_url: str, make_session: SessionFactory) -> str:
    """25 clean passes, a failure with a flaky helper, then 14 runs with one rerun."""
    failing = [
        TestRecord(
            "e2e/test_cart.py::test_checkout",
            "failed",
            ["failed", "failed"],
            3.0,
            message="boom",
        ),
        TestRecord("e2e/test_cart.py::test_add", "passed", ["failed", "passed"], 1.0),
    ]
    with Store(sqlite_url) as store:
        for index in range(25):
            store.record_session(make_session(index))
        store.record_session(make_session(25, verdict="fail", tests=failing))
        for index in range(26, 40):
            store.record_session(make_session(index))
    return sqlite_url


def test_status_not_met_names_the_run_and_tests_that_broke_the_streak(
    tmp_path: Path, history: str
) -> None:
    result = gate_tracker(tmp_path, "--db", history, "status")

    assert result.returncode == 1
    assert "14/20 consecutive clean passes - NOT MET" in result.stdout
    assert "streak ended by: run 1025#1" in result.stdout
    assert "failed: e2e/test_cart.py::test_checkout" in result.stdout
    assert "rerun:  e2e/test_cart.py::test_add" in result.stdout


def test_status_json_has_the_documented_keys(tmp_path: Path, history: str) -> None:
    result = gate_tracker(tmp_path, "--db", history, "status", "--json")

    document = json.loads(result.stdout)
    assert result.returncode == 1
    assert {"gate", "required", "streak", "met", "policy", "runs", "broken_by"} <= set(
        document
    )
    assert (
        document["gate"],
        document["required"],
        document["streak"],
        document["met"],
    ) == ("e2e-gate", 20, 14, False)
    assert len(document["runs"]) == 20
    newest = document["runs"][0]
    assert {
        "verdict",
        "commit",
        "branch",
        "event",
        "attempt",
        "started_at",
        "duration_s",
        "source",
        "url",
        "failed_tests",
        "rerun_tests",
    } <= set(newest)
    assert (
        newest["verdict"],
        newest["event"],
        newest["branch"],
        newest["duration_s"],
    ) == ("pass", "push", "main", 60.0)
    broken = document["broken_by"]
    assert (broken["run_id"], broken["failed_tests"], broken["rerun_tests"]) == (
        "1025",
        ["e2e/test_cart.py::test_checkout"],
        ["e2e/test_cart.py::test_add"],
    )


def test_status_met_exits_zero(tmp_path: Path, history: str) -> None:
    result = gate_tracker(tmp_path, "--db", history, "status", "--required", "14")

    assert result.returncode == 0
    assert "14/14 consecutive clean passes - MET" in result.stdout


def test_status_with_no_runs_in_scope_exits_one_and_says_what_to_do(
    tmp_path: Path, history: str
) -> None:
    result = gate_tracker(tmp_path, "--db", history, "status", "--branch", "release")

    assert result.returncode == 1
    assert "0/20 consecutive clean passes - NOT MET" in result.stdout
    assert "no runs in scope" in result.stdout


def test_runs_with_none_in_scope_says_how_to_widen_it(
    tmp_path: Path, history: str
) -> None:
    result = gate_tracker(tmp_path, "--db", history, "runs", "--event", "schedule")

    assert result.returncode == 0
    shown = " ".join(result.stdout.split())  # rich wraps long lines
    assert "no runs of gate e2e-gate in scope: record one with" in shown
    assert "widen the scope (--branch '*', --event local)" in shown


def test_status_on_an_empty_database_is_a_clear_error(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path / 'new.db'}").close()

    result = gate_tracker(
        tmp_path, "--db", f"sqlite:///{tmp_path / 'new.db'}", "status"
    )

    assert result.returncode == 2
    assert "no gate runs are stored" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_reads_the_database_from_pyproject(tmp_path: Path, history: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.gate-tracker]\ndb = "{history}"\nrequired = 10\n'
    )

    result = gate_tracker(tmp_path, "status", "--json")

    assert (result.returncode, json.loads(result.stdout)["required"]) == (0, 10)


def test_status_with_an_unreadable_database_url_exits_two(tmp_path: Path) -> None:
    result = gate_tracker(
        tmp_path, "--db", "postgresql+psycopg://u:s3cret@127.0.0.1:1/none", "status"
    )

    assert result.returncode == 2
    assert (
        "could not open the database postgresql+psycopg://u:***@127.0.0.1:1/none"
        in result.stderr
    )
    assert "s3cret" not in result.stderr


def test_status_needs_a_gate_when_several_are_stored(
    tmp_path: Path, sqlite_url: str, make_session: SessionFactory
) -> None:
    with Store(sqlite_url) as store:
        store.record_session(make_session(0, gate="smoke"))
        store.record_session(make_session(1, gate="e2e"))

    result = gate_tracker(tmp_path, "--db", sqlite_url, "status")
    chosen = gate_tracker(
        tmp_path, "--db", sqlite_url, "status", "--gate", "smoke", "--required", "1"
    )

    assert result.returncode == 2
    assert "several gates are stored (e2e, smoke)" in result.stderr
    assert chosen.returncode == 0


def test_local_runs_come_in_with_event_local(
    tmp_path: Path, sqlite_url: str, make_session: SessionFactory
) -> None:
    with Store(sqlite_url) as store:
        for index in range(3):
            store.record_session(make_session(index, event="local", branch="dev"))

    default = gate_tracker(tmp_path, "--db", sqlite_url, "status", "--json")
    local = gate_tracker(
        tmp_path,
        "--db",
        sqlite_url,
        "status",
        "--json",
        "--event",
        "local",
        "--branch",
        "*",
        "--required",
        "3",
    )

    assert json.loads(default.stdout)["streak"] == 0
    assert (local.returncode, json.loads(local.stdout)["streak"]) == (0, 3)


def test_runs_lists_newest_first(tmp_path: Path, history: str) -> None:
    result = gate_tracker(tmp_path, "--db", history, "runs", "--limit", "3", "--json")

    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert [run["run_id"] for run in document["runs"]] == ["1039", "1038", "1037"]


def test_status_reads_pages_until_the_streak_ends(
    sqlite_url: str, make_session: SessionFactory
) -> None:
    """A 130-run streak is counted whole, across pages of runs."""
    from gate_tracker.cli import Context
    from gate_tracker.commands_status import load_objective, resolve_scope
    from gate_tracker.config import Settings

    with Store(sqlite_url) as store:
        store.record_session(make_session(0, verdict="fail"))
        for index in range(1, 131):
            store.record_session(make_session(index))
        scope = resolve_scope(
            Context(Settings(), sqlite_url),
            store,
            gate=None,
            repository=None,
            branch=None,
            events=(),
        )
        objective = load_objective(store, scope)

    assert (objective.streak, objective.ci_streak, objective.met) == (130, 130, True)
    assert objective.broken_by is not None and objective.broken_by.ci_run_id == "1000"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'count_rerun_passes = "false"',
            "count_rerun_passes must be true or false (unquoted)",
        ),
        ("events = []", "events must be a non-empty list of strings"),
        ("required = 0", "required must be a whole number of at least 1"),
    ],
)
def test_wrong_settings_are_refused_naming_the_file(
    tmp_path: Path, history: str, setting: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.gate-tracker]\n{setting}\n")

    result = gate_tracker(tmp_path, "--db", history, "status")

    assert result.returncode == 2
    assert (
        f"{tmp_path / 'pyproject.toml'}: [tool.gate-tracker] {message}" in result.stderr
    )


def test_unknown_settings_are_named_in_a_warning(tmp_path: Path, history: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.gate-tracker]\nrequried = 3\n")

    result = gate_tracker(tmp_path, "--db", history, "status")

    assert "[tool.gate-tracker] has an unknown key 'requried'" in result.stderr
    assert result.returncode == 1


def test_a_plain_path_names_a_sqlite_file(tmp_path: Path, history: str) -> None:
    path = history.removeprefix("sqlite:///")

    result = gate_tracker(tmp_path, "--db", path, "status", "--required", "14")

    assert result.returncode == 0


def test_reading_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "gate.db"

    result = gate_tracker(tmp_path, "--db", f"sqlite:///{missing}", "status")

    assert result.returncode == 2
    assert f"there is no database at {missing}" in result.stderr
    assert not missing.parent.exists()
