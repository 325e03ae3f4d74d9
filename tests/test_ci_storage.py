"""Tests for gate_tracker.ci_storage: CI attempts as gate run rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from conftest import build_session

from gate_tracker.ci_attempts import GateAttempt, decide_attempt, no_jobs_attempt
from gate_tracker.ci_storage import (
    Scope,
    plugin_recorded,
    store_attempt,
    stored_any,
    stored_attempts,
)
from gate_tracker.github_client import CIJob, CIRun
from gate_tracker.records import TestRecord
from gate_tracker.schema import gate_runs
from gate_tracker.storage import Store

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
SCOPE = Scope("e2e-gate", "acme/shop", "e2e-gate")


def run(run_id: int = 77, attempt: int = 1, conclusion: str = "success") -> CIRun:
    return CIRun(
        id=run_id,
        attempt=attempt,
        status="completed",
        conclusion=conclusion,
        event="push",
        branch="main",
        commit="c" * 40,
        created_at=START,
        workflow_id=5,
        workflow_name="E2E gate",
        url=f"https://github.com/acme/shop/actions/runs/{run_id}",
    )


def gate_job(conclusion: str = "success", attempt: int = 1) -> CIJob:
    return CIJob(
        id=1000 + attempt,
        name="e2e-gate",
        status="completed",
        conclusion=conclusion,
        started_at=START + timedelta(minutes=1),
        completed_at=START + timedelta(minutes=9),
        attempt=attempt,
        url=None,
    )


def attempt_of(conclusion: str = "success", number: int = 1) -> GateAttempt:
    decided = decide_attempt(number, [gate_job(conclusion, number)], "e2e-gate", 360)
    assert not isinstance(decided, str)
    return decided


def test_an_attempt_becomes_a_row_with_what_ci_says(any_db_url: str) -> None:
    with Store(any_db_url) as store:
        with store.writing() as conn:
            done = store_attempt(
                store, conn, SCOPE, run(), attempt_of("failure"), [], now=START
            )
        [stored] = store.runs("e2e-gate", repository="acme/shop")
        with store.reading() as conn:
            details = json.loads(
                conn.execute(sa.select(gate_runs.c.ci_details)).scalar()
            )

    assert (done.sessions, done.has_test_data) == (0, False)
    assert stored.run_key == "ci:github-actions:acme/shop:77:1"
    assert (stored.verdict, stored.reason) == ("fail", "CI: e2e-gate failed")
    assert (stored.ci_status, stored.ci_conclusion, stored.sources) == (
        "completed",
        "failure",
        "github",
    )
    assert stored.started_at == START + timedelta(minutes=1)
    assert stored.duration_s == 480.0
    assert stored.url == "https://github.com/acme/shop/actions/runs/77/attempts/1"
    assert details["jobs"][0]["id"] == 1001


def test_ci_overwrites_the_plugins_guesses_and_keeps_its_sessions(
    any_db_url: str,
) -> None:
    session = build_session(
        run_id="77",
        verdict="flaky-pass",
        branch="wip",
        tests=[TestRecord("t.py::test_a", "passed", ["failed", "passed"])],
    )

    with Store(any_db_url) as store:
        store.record_session(session)
        with store.writing() as conn:
            done = store_attempt(store, conn, SCOPE, run(), attempt_of(), [], now=START)
        [stored] = store.runs("e2e-gate", repository="acme/shop")

    assert done.has_test_data
    assert (stored.sources, stored.verdict, stored.branch) == (
        "github+plugin",
        "flaky-pass",
        "main",
    )
    assert stored.sessions == 1
    assert stored.started_at == START + timedelta(minutes=1)


def test_sessions_stored_with_the_attempt_are_counted_once(store: Store) -> None:
    session = build_session(run_id="77")

    with store.writing() as conn:
        first = store_attempt(
            store, conn, SCOPE, run(), attempt_of(), [session], now=START
        )
    with store.writing() as conn:
        again = store_attempt(
            store, conn, SCOPE, run(), attempt_of(), [session], now=START
        )

    assert (first.sessions, again.sessions) == (1, 0)
    assert len(store.runs("e2e-gate")) == 1


def test_what_is_stored_from_ci_is_known_by_run_and_attempt(store: Store) -> None:
    store.record_session(build_session(run_id="90"))
    empty = stored_any(store, SCOPE)
    with store.writing() as conn:
        store_attempt(
            store, conn, SCOPE, run(77, 2), attempt_of(number=1), [], now=START
        )
        store_attempt(
            store, conn, SCOPE, run(77, 2), attempt_of(number=2), [], now=START
        )
        store_attempt(
            store, conn, SCOPE, run(78), no_jobs_attempt(run(78), 1), [], now=START
        )

    assert not empty
    assert stored_any(store, SCOPE)
    assert stored_attempts(store, SCOPE, [77, 78, 90, 91]) == {77: {1, 2}, 78: {1}}
    assert stored_attempts(store, Scope("other", "acme/shop", "e2e-gate"), [77]) == {}
    assert stored_attempts(store, SCOPE, []) == {}


def test_a_plugin_session_of_an_attempt_is_found(store: Store) -> None:
    store.record_session(build_session(run_id="77", attempt=2))

    assert plugin_recorded(store, SCOPE, 77, 2)
    assert not plugin_recorded(store, SCOPE, 77, 1)
    assert not plugin_recorded(store, Scope("smoke", "acme/shop", "e2e-gate"), 77, 2)
