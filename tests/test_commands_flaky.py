"""``gate-tracker flaky`` as a user runs it: tables, JSON, window and scope."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gate_tracker.cli import main
from gate_tracker.flakiness import FLAKY_FORMAT, FLAKY_VERSION
from gate_tracker.storage import Store
from tests.histories import record_history

A, B, C = (f"tests/test_shop.py::test_{name}" for name in "abc")


def hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)


@pytest.fixture
def recent(sqlite_url: str) -> str:
    """Five runs that ended an hour ago: A flaky, B broken at run 3, C clean."""
    with Store(sqlite_url) as store:
        record_history(store, {A: "PFPFP", B: "PPPFF", C: "PPPPP"}, start=hours_ago(6))
    return sqlite_url


def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """Run ``gate-tracker`` in ``tmp_path``, away from the repository's settings."""
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def flaky_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, *args: str
) -> dict[str, Any]:
    result = run_cli(tmp_path, monkeypatch, "--db", url, "flaky", "--json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_json_lists_the_flaky_and_the_broken_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent: str
) -> None:
    document = flaky_json(tmp_path, monkeypatch, recent)

    assert (document["format"], document["version"]) == (FLAKY_FORMAT, FLAKY_VERSION)
    assert document["gate"] == "e2e-gate"
    assert document["window"]["days"] == 30
    assert (document["window"]["runs"], document["window"]["unclean_trials"]) == (5, 3)
    assert [(f["test_id"], f["state"]) for f in document["flaky"]] == [(A, "new")]
    assert document["flaky"][0]["evidence"] == {
        "rerun": 0,
        "same_commit": 0,
        "flips": 4,
    }
    broken = document["broken"]
    assert [(f["test_id"], f["state"]) for f in broken] == [(B, "broken")]
    assert broken[0]["broken_at"]["commit"] == f"{3:07x}" + "0" * 33


def test_text_shows_the_ranked_tables_and_the_commit_a_test_broke_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent: str
) -> None:
    result = run_cli(tmp_path, monkeypatch, "--db", recent, "flaky")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "gate e2e-gate: 1 flaky, 1 broken over 30 days (5 runs, 5 trials, 3 not clean)"
    )
    flaky_row = next(line for line in lines if A in line)
    assert "new" in flaky_row
    assert "flips 4" in flaky_row
    assert "2 (1 alone)" in flaky_row
    assert "1.5" in flaky_row
    broken_row = next(line for line in lines if B in line)
    assert "0000003000" in broken_row
    assert "top failure signatures:" in lines
    assert C not in result.stdout


def test_the_window_option_leaves_older_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    with Store(sqlite_url) as store:
        record_history(store, {A: "PFPFP"}, start=hours_ago(24 * 5))

    recent_only = run_cli(
        tmp_path, monkeypatch, "--db", sqlite_url, "flaky", "--window", "2d"
    )
    document = flaky_json(tmp_path, monkeypatch, sqlite_url, "--window", "1w")

    assert recent_only.exit_code == 0
    assert "no runs in the window" in recent_only.stdout
    assert document["window"]["days"] == 7
    assert [f["test_id"] for f in document["flaky"]] == [A]


def test_the_window_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    with Store(sqlite_url) as store:
        record_history(store, {A: "PFPFP"}, start=hours_ago(24 * 5))
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gate-tracker]\nflaky_window_days = 3\n", encoding="utf-8"
    )

    document = flaky_json(tmp_path, monkeypatch, sqlite_url)

    assert (document["window"]["days"], document["window"]["runs"]) == (3, 0)


@pytest.mark.parametrize("window", ["30x", "0d", "soon"])
def test_a_bad_window_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent: str, window: str
) -> None:
    result = run_cli(tmp_path, monkeypatch, "--db", recent, "flaky", "--window", window)

    assert result.exit_code == 2
    assert f"{window!r} is not a duration" in result.stderr


def test_a_bad_setting_is_an_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gate-tracker]\nflip_rate_threshold = 2\n", encoding="utf-8"
    )

    result = run_cli(tmp_path, monkeypatch, "--db", recent, "flaky")

    assert result.exit_code == 2
    assert "[tool.gate-tracker] flip_rate_threshold must be above 0" in result.stderr


def test_the_scope_options_choose_branch_and_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    with Store(sqlite_url) as store:
        record_history(store, {A: "PFPFP"}, start=hours_ago(6), branch="feature")
        record_history(
            store, {B: "PFPFP"}, start=hours_ago(6), event="local", first_run=2000
        )

    on_main = flaky_json(tmp_path, monkeypatch, sqlite_url)
    any_branch = flaky_json(tmp_path, monkeypatch, sqlite_url, "--branch", "*")
    local = flaky_json(
        tmp_path, monkeypatch, sqlite_url, "--branch", "*", "--event", "local"
    )

    assert on_main["flaky"] == []
    assert [f["test_id"] for f in any_branch["flaky"]] == [A]
    assert [f["test_id"] for f in local["flaky"]] == [B]
    assert local["scope"] == {"branch": None, "events": ["local"]}


def test_an_empty_database_says_how_to_record_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    Store(sqlite_url).close()

    result = run_cli(tmp_path, monkeypatch, "--db", sqlite_url, "flaky")

    assert result.exit_code == 2
    assert "no gate runs are stored" in result.stderr
