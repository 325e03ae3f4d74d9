"""``gate-tracker import junit`` against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from gate_tracker.cli import main
from gate_tracker.schema import gate_runs, gate_sessions, test_results
from gate_tracker.storage import Store
from tests.conftest import DATA, build_session

JUNIT_DATA = DATA / "junit"
FLAKY = JUNIT_DATA / "surefire-flaky.xml"
PYTEST = JUNIT_DATA / "pytest-xunit2.xml"
TRUNCATED = JUNIT_DATA / "pytest-truncated.xml"

PASSING = """<?xml version="1.0"?>
<testsuite name="pytest" timestamp="2026-11-30T08:00:00Z" time="12.5">
  <testcase classname="e2e.test_shop" name="test_checkout" time="7"/>
  <testcase classname="e2e.test_shop" name="test_search" time="5.5"/>
</testsuite>
"""


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No pyproject.toml here: settings come only from options and environment.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for name in ("GATE_TRACKER_DB", "GATE_TRACKER_GATE", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    return workdir


def _import(url: str, *args: str | Path) -> Result:
    return CliRunner().invoke(
        main, ["--db", url, "import", "junit", *map(str, args)], catch_exceptions=False
    )


def _rows(url: str, query: sa.Select[tuple[object, ...]]) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def _runs(url: str) -> list[tuple[object, ...]]:
    return _rows(
        url,
        sa.select(
            gate_runs.c.gate,
            gate_runs.c.run_key,
            gate_runs.c.sources,
            gate_runs.c.verdict,
            gate_runs.c.passed,
            gate_runs.c.failed,
            gate_runs.c.error,
            gate_runs.c.rerun,
        ).order_by(gate_runs.c.id),
    )


def test_a_report_is_stored_as_one_gate_run_with_its_tests(any_db_url: str) -> None:
    result = _import(any_db_url, FLAKY, "--gate", "e2e", "--commit", "abc1234")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{FLAKY}: e2e fail, 4 tests (2 passed, 1 failed, 1 error, 4 rerun), "
        "stored as run 1\n"
    )
    [run] = _runs(any_db_url)
    assert run[0] == "e2e" and str(run[1]).startswith("junit:")
    assert run[2:] == ("junit", "fail", 2, 1, 1, 4)
    tests = _rows(
        any_db_url,
        sa.select(test_results.c.test_id, test_results.c.attempts).order_by(
            test_results.c.id
        ),
    )
    assert tests == [
        ("example.ExampleTests::throwsAlways", "error,error,error,error"),
        ("example.ExampleTests::failsAssertionAlways", "failed,failed,failed,failed"),
        ("example.ExampleTests::failsAssertionOnlyFirstAttempt", "failed,passed"),
        ("example.ExampleTests::throwsOnlyFirstAttempt", "error,passed"),
    ]
    [commit] = _rows(any_db_url, sa.select(gate_runs.c.commit_sha))
    assert commit == ("abc1234",)


def test_importing_a_report_again_says_already_stored(sqlite_url: str) -> None:
    _import(sqlite_url, PYTEST, "--gate", "e2e")

    again = _import(sqlite_url, PYTEST, "--gate", "e2e")

    assert again.exit_code == 0, again.output
    assert again.stdout == f"{PYTEST}: already stored in run 1\n"
    assert len(_runs(sqlite_url)) == 1
    assert len(_rows(sqlite_url, sa.select(test_results.c.id))) == 10


def test_a_broken_file_is_reported_and_the_others_still_import(
    sqlite_url: str,
) -> None:
    result = _import(sqlite_url, TRUNCATED, PYTEST, "--gate", "e2e")

    assert result.exit_code == 2
    assert (
        f"gate-tracker: error: {TRUNCATED} line 11: not well-formed XML"
        in result.stderr
    )
    assert "Traceback" not in result.output
    assert result.stdout.startswith(f"{PYTEST}: e2e fail, 10 tests (6 passed,")
    assert [run[3] for run in _runs(sqlite_url)] == ["fail"]


def test_strict_stores_nothing_when_any_file_is_broken(sqlite_url: str) -> None:
    result = _import(sqlite_url, PYTEST, TRUNCATED, "--gate", "e2e", "--strict")

    assert result.exit_code == 2
    assert "nothing stored: 1 of 2 paths could not be read (--strict)" in result.stderr
    assert result.stdout == ""
    with Store(sqlite_url) as store:
        assert store.runs("e2e") == []


def test_a_directory_is_one_gate_run(sqlite_url: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(PYTEST, reports / "shard-1.xml")
    (reports / "shard-2.xml").write_text(PASSING)

    result = _import(sqlite_url, reports, "--gate", "e2e")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{reports}: e2e fail, 12 tests (8 passed, 2 failed, 1 skipped, "
        "1 xfailed), stored as run 1\n"
    )
    assert len(_runs(sqlite_url)) == 1


def test_each_path_is_a_gate_run_of_its_own(sqlite_url: str, tmp_path: Path) -> None:
    passing = tmp_path / "passing.xml"
    passing.write_text(PASSING)

    result = _import(sqlite_url, passing, FLAKY, "--gate", "e2e")

    assert result.exit_code == 0, result.output
    assert [run[3] for run in _runs(sqlite_url)] == ["pass", "fail"]


def test_a_ci_run_gets_one_shard_per_path(sqlite_url: str, tmp_path: Path) -> None:
    """With --run-id the files are the shards of that GitHub Actions run."""
    passing = tmp_path / "passing.xml"
    passing.write_text(PASSING)
    options = ["--gate", "e2e", "--run-id", "4242", "--repo", "acme/shop"]

    result = _import(sqlite_url, passing, FLAKY, *options, "--run-attempt", "2")

    assert result.exit_code == 0, result.output
    [run] = _runs(sqlite_url)
    assert run[1:] == (
        "ci:github-actions:acme/shop:4242:2",
        "junit",
        "fail",
        4,
        1,
        1,
        4,
    )
    shards = _rows(
        sqlite_url, sa.select(gate_sessions.c.shard).order_by(gate_sessions.c.shard)
    )
    assert shards == [("passing.xml",), ("surefire-flaky.xml",)]
    [(event, attempt, url)] = _rows(
        sqlite_url, sa.select(gate_runs.c.event, gate_runs.c.attempt, gate_runs.c.url)
    )
    assert (event, attempt) == ("push", 2)
    assert url == "https://github.com/acme/shop/actions/runs/4242/attempts/2"


def test_in_a_ci_run_folders_name_the_shards_and_clashing_names_are_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    for shard in ("shard-1", "shard-2"):
        (tmp_path / shard).mkdir()
        (tmp_path / shard / "junit.xml").write_text(PASSING.replace("pytest", shard))
    options = ["--gate", "e2e", "--run-id", "8", "--repo", "acme/shop"]

    clash = _import(sqlite_url, *sorted(tmp_path.glob("*/junit.xml")), *options)
    folders = _import(sqlite_url, tmp_path / "shard-1", tmp_path / "shard-2", *options)

    assert clash.exit_code == 2
    assert "junit.xml names more than one path" in clash.stderr
    assert folders.exit_code == 0, folders.output
    shards = _rows(sqlite_url, sa.select(gate_sessions.c.shard))
    assert sorted(shards) == [("shard-1",), ("shard-2",)]
    [run] = _runs(sqlite_url)
    assert run[3:5] == ("pass", 4)


def test_a_ci_run_the_plugin_recorded_keeps_only_the_plugin_tests(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Storing JUnit beside the plugin's records would count every test twice."""
    with Store(sqlite_url) as store:
        store.record_session(build_session(run_id="4242", repository="acme/shop"))
    passing = tmp_path / "passing.xml"
    passing.write_text(PASSING)

    result = _import(
        sqlite_url,
        passing,
        "--gate",
        "e2e-gate",
        "--run-id",
        "4242",
        "--repo",
        "acme/shop",
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{passing}: not stored: the plugin's records of this run are stored\n"
    )
    [run] = _runs(sqlite_url)
    assert run[2] == "plugin"


def test_the_same_report_under_another_shard_name_is_stored_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.xml"
    shutil.copy(FLAKY, copy)
    options = ["--gate", "e2e", "--run-id", "7", "--repo", "acme/shop"]

    result = _import(sqlite_url, FLAKY, copy, *options)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        f"{copy}: already stored, as another shard of this run"
    )
    assert len(_rows(sqlite_url, sa.select(gate_sessions.c.id))) == 1


def test_started_at_dates_the_run(sqlite_url: str) -> None:
    result = _import(sqlite_url, FLAKY, "--gate", "e2e", "--started-at", "1764583200")

    assert result.exit_code == 0, result.output
    with Store(sqlite_url) as store:
        [run] = store.runs("e2e")
    assert run.started_at.isoformat() == "2025-12-01T10:00:00+00:00"
    assert run.duration_s == pytest.approx(0.002)


def test_without_started_at_the_suite_timestamp_dates_the_run(
    sqlite_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)

    _import(sqlite_url, report, "--gate", "e2e", "--event", "schedule")

    with Store(sqlite_url) as store:
        [run] = store.runs("e2e")
    assert run.started_at.isoformat() == "2026-11-30T08:00:00+00:00"
    assert run.duration_s == 12.5
    assert run.event == "schedule"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--started-at", "tomorrow"], "Invalid value for --started-at: 'tomorrow'"),
        (["--run-id", "5"], "--run-id needs the repository"),
        (["--repo", "acme/shop"], "--repo only applies with --run-id"),
    ],
)
def test_bad_options_are_usage_errors(
    sqlite_url: str, args: list[str], says: str
) -> None:
    result = _import(sqlite_url, FLAKY, "--gate", "e2e", *args)

    assert result.exit_code == 2
    assert says in result.stderr


def test_the_gate_comes_from_the_environment_or_is_required(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = _import(sqlite_url, FLAKY)
    monkeypatch.setenv("GATE_TRACKER_GATE", "nightly")
    given = _import(sqlite_url, FLAKY)

    assert missing.exit_code == 2
    assert "no gate given: pass --gate NAME" in missing.stderr
    assert given.exit_code == 0, given.output
    assert [run[0] for run in _runs(sqlite_url)] == ["nightly"]


def test_warnings_go_to_stderr_and_quiet_hides_them(sqlite_url: str) -> None:
    loud = _import(sqlite_url, FLAKY, "--gate", "e2e")
    quiet = CliRunner().invoke(
        main, ["--db", sqlite_url, "-q", "import", "junit", str(FLAKY), "--gate", "x"]
    )

    assert (
        f"gate-tracker: warning: GT306 {FLAKY} line 2: suite's test count differs"
    ) in loud.stderr
    assert "GT302" in loud.stderr
    assert quiet.exit_code == 0
    assert quiet.stderr == ""
