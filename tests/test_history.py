"""Loading histories for analysis: scope, window, and only the tests worth it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from gate_tracker.history import (
    HistoryScope,
    Observation,
    load_history,
    load_trials,
)
from gate_tracker.storage import Store
from tests.conftest import T0, build_session
from tests.histories import record_history

A, B, C = (f"tests/test_shop.py::test_{name}" for name in "abc")
WHOLE = {"since": T0 - timedelta(days=1), "until": T0 + timedelta(days=30)}


@pytest.fixture
def db(any_db_url: str) -> Iterator[Store]:
    """A store on SQLite, then on PostgreSQL."""
    with Store(any_db_url) as opened:
        yield opened


def test_only_tests_that_failed_or_reran_are_loaded_with_all_their_results(
    db: Store,
) -> None:
    run_ids = record_history(db, {A: "PFPP", B: "PPRP", C: "PPPP"})

    history = load_history(db, HistoryScope("e2e-gate"), **WHOLE)

    assert [run.id for run in history.runs] == run_ids
    assert sorted(history.tests) == [A, B]
    assert [seen.outcome for seen in history.tests[A]] == [
        "passed",
        "failed",
        "passed",
        "passed",
    ]
    assert history.tests[B][2] == Observation(
        run_id=run_ids[2],
        outcome="passed",
        attempts=("failed", "passed"),
        signature="AssertionError: test_b got <n>",
    )


def test_runs_carry_commit_attempt_verdict_and_trial_key(db: Store) -> None:
    record_history(db, {A: "PFF"}, reruns_of={2: 1})

    runs = load_history(db, HistoryScope("e2e-gate"), **WHOLE).runs

    assert [(run.attempt, run.verdict) for run in runs] == [
        (1, "pass"),
        (1, "fail"),
        (2, "fail"),
    ]
    assert runs[1].commit == runs[2].commit == f"{1:07x}" + "0" * 33
    assert runs[1].trial_key == runs[2].trial_key == "acme/shop:1001"
    assert [run.is_trial for run in runs] == [True, True, False]
    assert runs[0].started_at == T0


def test_the_window_is_half_open(db: Store) -> None:
    record_history(db, {A: "FFFF"})

    history = load_history(
        db,
        HistoryScope("e2e-gate"),
        since=T0 + timedelta(hours=1),
        until=T0 + timedelta(hours=3),
    )

    assert [run.started_at for run in history.runs] == [
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    ]
    assert len(history.tests[A]) == 2


def test_the_scope_picks_gate_repository_branch_and_events(db: Store) -> None:
    record_history(db, {A: "F"})
    record_history(db, {A: "FF"}, gate="other-gate", first_run=2000)
    record_history(db, {A: "FFF"}, repository="acme/admin", first_run=3000)
    record_history(db, {A: "FFFF"}, branch="feature", first_run=4000)
    record_history(db, {A: "FFFFF"}, event="pull_request", first_run=5000)

    def count(scope: HistoryScope) -> int:
        return len(load_history(db, scope, **WHOLE).tests[A])

    assert count(HistoryScope("other-gate")) == 2
    assert count(HistoryScope("e2e-gate", repository="acme/admin")) == 3
    assert count(HistoryScope("e2e-gate", "acme/shop", branch="feature")) == 4
    assert count(HistoryScope("e2e-gate", "acme/shop", branch="main")) == 6
    assert count(HistoryScope("e2e-gate", branch="main", events=("push",))) == 4
    assert count(HistoryScope("e2e-gate", events=("pull_request",))) == 5


def test_a_scope_without_runs_gives_an_empty_history(db: Store) -> None:
    record_history(db, {A: "FF"})

    history = load_history(db, HistoryScope("nothing-here"), **WHOLE)

    assert (history.runs, history.tests) == ([], {})


def test_trials_are_the_newest_first_attempts_oldest_first(db: Store) -> None:
    for index, verdict in enumerate(["pass", "fail", "cancelled", "flaky-pass"]):
        db.record_session(build_session(index, verdict=verdict))
    db.record_session(build_session(4, verdict="pass", run_id="1001", attempt=2))
    db.record_session(build_session(5, verdict="pass"))

    trials = load_trials(db, HistoryScope("e2e-gate"), limit=3)
    lenient = load_trials(
        db, HistoryScope("e2e-gate"), limit=10, count_rerun_passes=True
    )

    assert [trial.started_at for trial in trials] == [
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=3),
        T0 + timedelta(hours=5),
    ]
    assert [trial.clean for trial in trials] == [False, False, True]
    assert [trial.clean for trial in lenient] == [True, False, True, True]


def test_trials_follow_the_scope(db: Store) -> None:
    db.record_session(build_session(0, verdict="fail", branch="feature"))
    db.record_session(build_session(1, verdict="pass", event="pull_request"))
    db.record_session(build_session(2, verdict="pass"))

    trials = load_trials(
        db, HistoryScope("e2e-gate", branch="main", events=("push",)), limit=10
    )

    assert [trial.started_at for trial in trials] == [T0 + timedelta(hours=2)]
