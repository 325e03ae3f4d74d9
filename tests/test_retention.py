"""Pruning old runs: batches, exact counts, dry runs, scope, streak untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from gate_tracker.cli import main
from gate_tracker.records import TestRecord
from gate_tracker.retention import Pruned, cutoff_for, prune_runs
from gate_tracker.schema import gate_runs, gate_sessions, test_results
from gate_tracker.storage import Store
from tests.conftest import build_session

# db_url: SQLite, or the module's shared PostgreSQL database emptied.
pytest_plugins = ["tests.databases"]

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _tests(count: int, *, failing: int = 0) -> list[TestRecord]:
    return [
        TestRecord(
            f"tests/test_e2e.py::test_{n}",
            "failed" if n < failing else "passed",
            ["failed" if n < failing else "passed"],
            0.2,
        )
        for n in range(count)
    ]


def _record(
    store: Store,
    index: int,
    days_ago: float,
    *,
    tests: int = 3,
    shards: int = 1,
    verdict: str = "pass",
    **options: str,
) -> None:
    for shard in range(shards):
        session = build_session(
            index,
            started_at=NOW - timedelta(days=days_ago),
            tests=_tests(tests, failing=1 if verdict == "fail" else 0),
            verdict=verdict,
            shard=str(shard) if shards > 1 else "",
            **options,  # type: ignore[arg-type]
        )
        store.record_session(session)


def _snapshot(store: Store) -> dict[str, list[dict[str, object]]]:
    with store.reading() as conn:
        return {
            table.name: [
                dict(row._mapping)
                for row in conn.execute(sa.select(table).order_by("id"))
            ]
            for table in (gate_runs, gate_sessions, test_results)
        }


@pytest.fixture
def db(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


def test_prune_deletes_old_runs_with_their_sessions_and_tests(db: Store) -> None:
    for index in range(4):
        _record(db, index, days_ago=100 + index, tests=5, shards=2)
    for index in range(4, 7):
        _record(db, index, days_ago=10 + index, tests=4)
    before = _snapshot(db)

    pruned = prune_runs(db, cutoff_for(30, now=NOW))

    assert (pruned.runs, pruned.sessions, pruned.tests) == (4, 8, 40)
    after = _snapshot(db)
    kept = [run for run in before["gate_runs"] if run["ci_run_id"] >= "1004"]
    kept_ids = {run["id"] for run in kept}
    assert after["gate_runs"] == kept
    assert after["gate_sessions"] == [
        s for s in before["gate_sessions"] if s["run_id"] in kept_ids
    ]
    assert after["test_results"] == [
        t for t in before["test_results"] if t["run_id"] in kept_ids
    ]
    assert (len(kept), len(after["test_results"])) == (3, 12)


def test_a_run_started_exactly_at_the_cutoff_is_kept(db: Store) -> None:
    _record(db, 1, days_ago=30)
    _record(db, 2, days_ago=30.0001)

    pruned = prune_runs(db, cutoff_for(30, now=NOW))

    assert pruned.runs == 1
    assert [run.ci_run_id for run in db.runs("e2e-gate")] == ["1001"]


def test_prune_works_in_batches_and_reports_progress(db: Store) -> None:
    for index in range(10):
        _record(db, index, days_ago=50 + index)
    seen: list[tuple[int, int]] = []

    def progress(totals: Pruned) -> None:
        seen.append((totals.batches, totals.runs))

    pruned = prune_runs(db, cutoff_for(30, now=NOW), batch_runs=3, progress=progress)

    assert seen == [(1, 3), (2, 6), (3, 9), (4, 10)]
    assert (pruned.runs, pruned.batches) == (10, 4)
    assert db.runs("e2e-gate") == []


def test_big_runs_make_small_batches_but_always_progress(db: Store) -> None:
    """A batch stops before too many test results, yet holds at least one run."""
    for index in range(3):
        _record(db, index, days_ago=40 + index, tests=30)

    pruned = prune_runs(db, cutoff_for(30, now=NOW), batch_tests=20)

    assert (pruned.runs, pruned.tests, pruned.batches) == (3, 90, 3)


def test_a_dry_run_counts_what_a_prune_then_deletes(db: Store) -> None:
    for index in range(5):
        _record(db, index, days_ago=35 + 20 * index, tests=2 + index, shards=2)
    before = _snapshot(db)

    planned = prune_runs(db, cutoff_for(60, now=NOW), dry_run=True)

    assert _snapshot(db) == before
    done = prune_runs(db, cutoff_for(60, now=NOW))
    assert (planned.runs, planned.sessions, planned.tests) == (3, 6, 30)
    assert (done.runs, done.sessions, done.tests) == (3, 6, 30)
    assert planned.dry_run and not done.dry_run


def test_prune_keeps_to_the_gate_and_repository_asked_for(db: Store) -> None:
    _record(db, 1, days_ago=90, gate="e2e-gate", repository="acme/shop")
    _record(db, 1, days_ago=90, gate="smoke", repository="acme/shop")
    _record(db, 1, days_ago=90, gate="e2e-gate", repository="acme/billing")

    by_gate = prune_runs(db, cutoff_for(30, now=NOW), gate="smoke")
    by_repository = prune_runs(
        db, cutoff_for(30, now=NOW), gate="e2e-gate", repository="acme/billing"
    )

    assert (by_gate.runs, by_repository.runs) == (1, 1)
    assert db.gates() == [("e2e-gate", "acme/shop")]


def test_nothing_to_prune_is_zero_batches(db: Store) -> None:
    _record(db, 1, days_ago=1)

    pruned = prune_runs(db, cutoff_for(30, now=NOW))

    assert (pruned.runs, pruned.sessions, pruned.tests, pruned.batches) == (0, 0, 0, 0)
    assert len(db.runs("e2e-gate")) == 1


# -- the command ---------------------------------------------------------------


def _cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "workdir"
    directory.mkdir()
    monkeypatch.chdir(directory)
    monkeypatch.delenv("GATE_TRACKER_DB", raising=False)
    return directory


def test_prune_command_prints_what_it_removed(db_url: str, workdir: Path) -> None:
    with Store(db_url) as store:
        _record(store, 1, days_ago=200, tests=3, shards=2)
        _record(store, 2, days_ago=5)

    result = _cli(db_url, "prune", "--older-than", "90")

    cutoff = cutoff_for(90).strftime("%Y-%m-%d")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"deleted 1 run started before {cutoff} ")
    assert result.output.rstrip().endswith("(90 days ago): 2 sessions, 6 test results")


def test_prune_command_dry_run_deletes_nothing(db_url: str, workdir: Path) -> None:
    with Store(db_url) as store:
        for index in range(3):
            _record(store, index, days_ago=100, tests=1)

    result = _cli(db_url, "prune", "--older-than", "30", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("would delete 3 runs started before ")
    assert result.output.rstrip().endswith(": 3 sessions, 3 test results")
    with Store(db_url) as store:
        assert len(store.runs("e2e-gate")) == 3


def test_prune_command_refuses_zero_days(sqlite_url: str, workdir: Path) -> None:
    result = _cli(sqlite_url, "prune", "--older-than", "0")

    assert result.exit_code == 2
    assert "--older-than" in result.output


def test_prune_command_on_an_empty_database_is_an_error(
    sqlite_url: str, workdir: Path
) -> None:
    result = _cli(sqlite_url, "prune", "--older-than", "30")

    assert result.exit_code == 2
    assert "there is no database at" in result.output


def _report_files(store: Store, directory: Path) -> dict[str, bytes]:
    from gate_tracker.config import load_settings
    from gate_tracker.objective import Policy
    from gate_tracker.reporting import ReportScope, build_report, write_report

    scope = ReportScope("e2e-gate", None, Policy())
    report = build_report(store, scope, load_settings(directory.parent), now=NOW)
    written = write_report(report, directory)
    return {
        path.relative_to(directory).as_posix(): path.read_bytes() for path in written
    }


def test_pruning_outside_the_windows_leaves_status_and_report_unchanged(
    db_url: str, workdir: Path
) -> None:
    """Old history goes; the streak, forecast, breaker and weekly report stay.

    The windows: the forecast reads 4 x 5 trials here, the report's trend
    charts 90 days; the pruned runs are older than both.
    """
    (workdir / "pyproject.toml").write_text(
        '[tool.gate-tracker]\ngate = "e2e-gate"\nforecast_window_runs = 5\n'
    )
    with Store(db_url) as store:
        for index in range(30):
            _record(store, index, days_ago=200 - index, verdict="fail")
        _record(store, 30, days_ago=40, verdict="fail")
        for index in range(31, 56):
            _record(store, index, days_ago=(56 - index) * 0.5)
        report_before = _report_files(store, workdir / "before")
    status = ["status", "--json"]
    before = _cli(db_url, *status)

    pruned = _cli(db_url, "prune", "--older-than", "120")

    after = _cli(db_url, *status)
    with Store(db_url) as store:
        report_after = _report_files(store, workdir / "after")
    assert pruned.output.startswith("deleted 30 runs "), pruned.output
    assert before.exit_code == after.exit_code == 0, before.output
    assert json.loads(after.output) == json.loads(before.output)
    assert json.loads(after.output)["streak"] == 25
    assert sorted(report_after) == sorted(report_before)
    for name, content in report_before.items():
        assert report_after[name] == content, name
