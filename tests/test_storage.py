"""The store on SQLite and PostgreSQL: idempotent writes, shards, scope, reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from gate_tracker.exceptions import StorageError
from gate_tracker.records import TestRecord
from gate_tracker.schema import gate_runs, gate_sessions, test_results
from gate_tracker.storage import Store
from tests.conftest import T0, SessionFactory, build_session

# db_url: SQLite, or the module's shared PostgreSQL database emptied.
pytest_plugins = ["tests.databases"]


def _passed(name: str) -> TestRecord:
    return TestRecord(f"tests/test_e2e.py::{name}", "passed", ["passed"], 1.0)


def _failed(name: str) -> TestRecord:
    return TestRecord(
        f"tests/test_e2e.py::{name}",
        "failed",
        ["failed"],
        2.0,
        message="AssertionError: 500 != 200",
    )


def _flaky(name: str) -> TestRecord:
    return TestRecord(f"tests/test_e2e.py::{name}", "passed", ["failed", "passed"])


def _row_counts(store: Store) -> tuple[int, int, int]:
    with store.reading() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (gate_runs, gate_sessions, test_results)
        )


@pytest.fixture
def db(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


# -- writing -------------------------------------------------------------------


def test_recording_the_same_session_twice_stores_it_once(
    db: Store, make_session: SessionFactory
) -> None:
    session = make_session(1, tests=[_passed("a"), _failed("b")], verdict="fail")

    first = db.record_session(session)
    second = db.record_session(session)

    assert first.stored and not second.stored
    assert second.run_id == first.run_id
    assert _row_counts(db) == (1, 1, 2)


def test_a_new_session_for_the_same_shard_replaces_the_old_one(
    db: Store, make_session: SessionFactory
) -> None:
    """Recording a shard again (a retried upload) keeps only the newer one."""
    old = make_session(1, verdict="fail", tests=[_failed("a"), _passed("b")])
    new = make_session(1, verdict="pass", tests=[_passed("a")])

    db.record_session(old)
    outcome = db.record_session(new)

    [run] = db.runs("e2e-gate")
    assert outcome.stored and run.id == outcome.run_id
    assert run.verdict == "pass"
    assert (run.sessions, run.counts["passed"], run.counts["failed"]) == (1, 1, 0)
    assert _row_counts(db) == (1, 1, 1)


def test_shards_of_one_ci_run_make_one_gate_run(
    db: Store, make_session: SessionFactory
) -> None:
    """Two shards merge: counts add up, the worst verdict wins, times span both."""
    first = make_session(1, shard="1", tests=[_passed("a"), _flaky("b")])
    first.verdict, first.reason = "flaky-pass", "1 test passed on rerun: b"
    second = make_session(
        1,
        shard="2",
        verdict="fail",
        tests=[_failed("c")],
        started_at=T0 + timedelta(hours=1, minutes=5),
    )
    second.reason = "1 test failed: c"

    db.record_session(first)
    db.record_session(second)

    [run] = db.runs("e2e-gate")
    assert run.sessions == 2
    assert run.verdict == "fail"
    assert run.counts == {
        "passed": 2,
        "failed": 1,
        "error": 0,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "rerun": 1,
    }
    assert run.started_at == T0 + timedelta(hours=1)
    assert run.finished_at == T0 + timedelta(hours=1, minutes=6)
    assert run.duration_s == 360.0
    assert run.reason == "1: 1 test passed on rerun: b; 2: 1 test failed: c"
    assert run.exit_status == 1
    assert run.sources == "plugin"


def test_each_attempt_of_a_ci_run_is_its_own_gate_run(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, verdict="fail", tests=[_failed("a")]))
    db.record_session(make_session(1, attempt=2, started_at=T0 + timedelta(hours=3)))

    runs = db.runs("e2e-gate")

    assert [(r.ci_run_id, r.attempt, r.verdict) for r in runs] == [
        ("1001", 2, "pass"),
        ("1001", 1, "fail"),
    ]
    assert runs[0].trial_key == runs[1].trial_key == "acme/shop:1001"


def test_local_sessions_are_runs_of_their_own(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, event="local"))
    db.record_session(make_session(1, event="local"))

    runs = db.runs("e2e-gate")

    assert len(runs) == 2
    assert {r.repository for r in runs} == {""}
    assert {r.event for r in runs} == {"local"}


def test_a_failed_write_leaves_nothing_half_written(
    db: Store, make_session: SessionFactory
) -> None:
    """The run and session rows go too when a test row cannot be stored."""
    broken = TestRecord(None, "passed", ["passed"])  # type: ignore[arg-type]
    session = make_session(1, tests=[_passed("a"), broken])

    with pytest.raises(StorageError, match="could not write to the database"):
        db.record_session(session)

    assert _row_counts(db) == (0, 0, 0)


def test_a_failed_shard_replacement_keeps_the_old_shard(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, tests=[_passed("a"), _passed("b")]))
    broken = TestRecord(None, "passed", ["passed"])  # type: ignore[arg-type]

    with pytest.raises(StorageError):
        db.record_session(make_session(1, verdict="fail", tests=[broken]))

    [run] = db.runs("e2e-gate")
    assert (run.verdict, run.counts["passed"]) == ("pass", 2)
    assert _row_counts(db) == (1, 1, 2)


def test_an_error_inside_a_write_transaction_rolls_it_back(
    db: Store, make_session: SessionFactory
) -> None:
    with pytest.raises(RuntimeError), db.writing() as conn:
        db.store_session(conn, make_session(1))
        db.store_session(conn, make_session(2))
        raise RuntimeError("the caller gave up half way")

    assert _row_counts(db) == (0, 0, 0)


def test_test_results_keep_every_field(db: Store, make_session: SessionFactory) -> None:
    test = TestRecord(
        "tests/test_e2e.py::test_checkout[visa]",
        "passed",
        ["crashed", "failed", "passed"],
        3.25,
        worker="gw1",
        message="ConnectionError: port 5432",
        signature="ConnectionError: port <n>",
        longrepr="Traceback ...",
        file="tests/test_e2e.py",
        line=42,
    )
    outcome = db.record_session(make_session(1, tests=[test]))

    with db.reading() as conn:
        row = conn.execute(sa.select(test_results)).one()

    assert row.run_id == outcome.run_id
    assert (row.test_id, row.outcome, row.attempts, row.reruns) == (
        "tests/test_e2e.py::test_checkout[visa]",
        "passed",
        "crashed,failed,passed",
        2,
    )
    assert (row.duration_s, row.worker, row.file, row.line) == (
        3.25,
        "gw1",
        "tests/test_e2e.py",
        42,
    )
    assert (row.message, row.signature, row.longrepr) == (
        "ConnectionError: port 5432",
        "ConnectionError: port <n>",
        "Traceback ...",
    )


# -- scope ---------------------------------------------------------------------


def test_the_same_ci_run_in_two_repositories_is_two_runs(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, repository="acme/shop"))
    db.record_session(make_session(1, repository="acme/billing", verdict="fail"))

    shop = db.runs("e2e-gate", repository="acme/shop")
    billing = db.runs("e2e-gate", repository="acme/billing")

    assert [(r.repository, r.verdict) for r in shop] == [("acme/shop", "pass")]
    assert [(r.repository, r.verdict) for r in billing] == [("acme/billing", "fail")]
    assert len(db.runs("e2e-gate")) == 2


def test_the_same_ci_run_for_two_gates_is_two_runs(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, gate="e2e-gate"))
    db.record_session(make_session(1, gate="smoke", verdict="fail"))

    assert [r.verdict for r in db.runs("e2e-gate")] == ["pass"]
    assert [r.verdict for r in db.runs("smoke")] == ["fail"]
    assert db.runs("nightly") == []


def test_gates_lists_each_gate_and_repository_once(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, gate="smoke", repository="acme/shop"))
    db.record_session(make_session(2, gate="e2e-gate", repository="acme/shop"))
    db.record_session(make_session(3, gate="e2e-gate", repository="acme/shop"))
    db.record_session(make_session(4, gate="e2e-gate", repository="acme/billing"))
    db.record_session(make_session(5, gate="e2e-gate", event="local"))

    assert db.gates() == [
        ("e2e-gate", ""),
        ("e2e-gate", "acme/billing"),
        ("e2e-gate", "acme/shop"),
        ("smoke", "acme/shop"),
    ]


def test_tests_of_note_stay_inside_their_run(
    db: Store, make_session: SessionFactory
) -> None:
    one = db.record_session(
        make_session(1, verdict="fail", tests=[_failed("b"), _failed("a"), _flaky("c")])
    )
    two = db.record_session(make_session(1, repository="acme/billing"))
    three = db.record_session(make_session(2, tests=[_flaky("d"), _passed("e")]))

    notes = db.tests_of_note([one.run_id, two.run_id, three.run_id])

    assert notes == {
        one.run_id: (
            ["tests/test_e2e.py::a", "tests/test_e2e.py::b"],
            ["tests/test_e2e.py::c"],
        ),
        two.run_id: ([], []),
        three.run_id: ([], ["tests/test_e2e.py::d"]),
    }
    assert db.tests_of_note([]) == {}


# -- reading -------------------------------------------------------------------


def test_runs_are_newest_first_and_ties_go_to_the_later_record(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(2))
    db.record_session(make_session(0))
    db.record_session(make_session(5, started_at=T0 + timedelta(hours=2)))
    db.record_session(make_session(1))

    runs = db.runs("e2e-gate")

    assert [r.ci_run_id for r in runs] == ["1005", "1002", "1001", "1000"]
    assert runs[0].started_at == T0 + timedelta(hours=2)
    assert {r.started_at.utcoffset() for r in runs} == {timedelta(0)}


def test_runs_filter_by_branch_event_and_commit_prefix(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(1, branch="main", event="push"))
    db.record_session(make_session(2, branch="main", event="schedule"))
    db.record_session(make_session(3, branch="feature", event="push"))
    db.record_session(make_session(4, branch="main", event="pull_request"))
    db.record_session(make_session(5, commit="abc1234" + "f" * 33))

    on_main = db.runs("e2e-gate", branch="main", events=["push", "schedule"])
    by_commit = db.runs("e2e-gate", commit="abc1234")

    assert [r.ci_run_id for r in on_main] == ["1005", "1002", "1001"]
    assert [r.ci_run_id for r in by_commit] == ["1005"]
    assert by_commit[0].commit == "abc1234" + "f" * 33
    assert len(db.runs("e2e-gate", events=[])) == 5


def test_runs_page_with_limit_and_offset(
    db: Store, make_session: SessionFactory
) -> None:
    for index in range(7):
        db.record_session(make_session(index))

    pages = [db.runs("e2e-gate", limit=3, offset=start) for start in (0, 3, 6)]

    assert [[r.ci_run_id for r in page] for page in pages] == [
        ["1006", "1005", "1004"],
        ["1003", "1002", "1001"],
        ["1000"],
    ]


def test_a_stored_run_carries_its_ci_context(
    db: Store, make_session: SessionFactory
) -> None:
    db.record_session(make_session(3, attempt=2))

    [run] = db.runs("e2e-gate")

    assert (run.gate, run.repository, run.event, run.branch) == (
        "e2e-gate",
        "acme/shop",
        "push",
        "main",
    )
    assert (run.workflow, run.job, run.attempt) == ("e2e", "e2e-gate", 2)
    assert run.url == "https://github.com/acme/shop/actions/runs/1003"
    assert run.run_key == "ci:github-actions:acme/shop:1003:2"
    assert run.has_test_data


def test_times_with_any_utc_offset_are_stored_as_the_same_instant(
    db: Store, make_session: SessionFactory
) -> None:
    """11:00+02:00 is 09:00 UTC on every database (JUnit times carry offsets)."""
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 11, 2, 11, 0, tzinfo=plus_two)

    db.record_session(make_session(1, started_at=start, duration_s=90))

    [run] = db.runs("e2e-gate")
    assert run.started_at == datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    assert run.finished_at == datetime(2026, 11, 2, 9, 1, 30, tzinfo=timezone.utc)
    assert run.started_at.utcoffset() == timedelta(0)


# -- SQLite's locking -------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(store: Store) -> None:
    with store.reading() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()

    assert (journal, timeout, foreign_keys) == ("wal", 30_000, 1)


def test_a_sqlite_write_transaction_takes_the_write_lock_at_once(
    store: Store, sqlite_url: str
) -> None:
    """BEGIN IMMEDIATE: a second writer is refused before the first writes."""
    import sqlite3

    path = sa.engine.make_url(sqlite_url).database
    other = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    try:
        refused = pytest.raises(sqlite3.OperationalError, match="locked")
        with store.writing(), refused:
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.postgresql
def test_times_come_back_in_utc_whatever_the_server_time_zone(pg_url: str) -> None:
    """A server set to New York time must not shift reports' days."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql(
            f"ALTER DATABASE \"{name}\" SET timezone = 'America/New_York'"
        )
    admin.dispose()
    start = datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc)

    with Store(pg_url) as store:
        store.record_session(build_session(1, started_at=start))
        [run] = store.runs("e2e-gate")

    assert run.started_at == start
    assert run.started_at.utcoffset() == timedelta(0)
    assert run.started_at.date() == start.date()
