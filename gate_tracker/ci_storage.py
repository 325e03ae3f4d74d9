"""CI attempts in the store: one gate run row per attempt, CI's view on top.

A row may exist already, made by the plugin recording in the same attempt
(the run key is the same): CI's event, branch, commit, times, URL, status,
conclusion and verdict then overwrite the plugin's guesses, and the sessions
stay. ``refresh_run`` combines CI's verdict with the sessions' verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gate_tracker.ci_attempts import PROVIDER, GateAttempt, attempt_url, run_key
from gate_tracker.github_client import CIJob, CIRun
from gate_tracker.records import SessionRecord
from gate_tracker.rows import COUNT_COLUMNS
from gate_tracker.schema import gate_runs, gate_sessions
from gate_tracker.storage import Store, refresh_run

SOURCE = "github"
"""How a gate run's ``sources`` name what CI said about it."""

# The values go as parameters, so one compiled statement serves every run.
_UPDATE_CI = sa.update(gate_runs).where(gate_runs.c.id == sa.bindparam("row_id"))


@dataclass(frozen=True)
class Scope:
    """Where CI attempts are stored: a gate, a repository and its gate job."""

    gate: str
    repository: str
    job: str


@dataclass(frozen=True)
class StoredAttempt:
    """What storing one attempt did."""

    sessions: int
    """Sessions stored now (a session already stored counts 0)."""
    has_test_data: bool


def store_attempt(
    store: Store,
    conn: Connection,
    scope: Scope,
    run: CIRun,
    attempt: GateAttempt,
    sessions: Sequence[SessionRecord],
    *,
    now: datetime,
) -> StoredAttempt:
    """Store one attempt as a gate run with its sessions, inside ``conn``."""
    key = run_key(scope.repository, run.id, attempt.number)
    ci_values = _ci_values(scope, run, attempt)
    values = {
        "gate": scope.gate,
        "repository": scope.repository,
        "run_key": key,
        "sources": "",
        "verdict": attempt.verdict,
        "reason": attempt.reason,
        "recorded_at": now,
        **dict.fromkeys(COUNT_COLUMNS, 0),
        **ci_values,
    }
    row_id = store.ensure_run_row(conn, (scope.gate, scope.repository, key), values)
    conn.execute(_UPDATE_CI, {"row_id": row_id, **ci_values})

    stored = sum(store.store_session(conn, session).stored for session in sessions)
    refresh_run(conn, row_id, add_source=SOURCE)
    return StoredAttempt(
        sessions=stored, has_test_data=bool(sessions) or _has_sessions(conn, row_id)
    )


def stored_attempts(
    store: Store, scope: Scope, run_ids: Sequence[int]
) -> dict[int, set[int]]:
    """The attempts of these runs already stored from CI, by run id."""
    if not run_ids:
        return {}
    query = sa.select(gate_runs.c.ci_run_id, gate_runs.c.attempt).where(
        *_from_ci(scope), gate_runs.c.ci_run_id.in_([str(i) for i in run_ids])
    )
    stored: dict[int, set[int]] = {}
    with store.reading() as conn:
        for row in conn.execute(query):
            stored.setdefault(int(row.ci_run_id), set()).add(int(row.attempt))
    return stored


def stored_any(store: Store, scope: Scope) -> bool:
    """Whether any gate run of ``scope`` was stored from CI."""
    query = sa.select(gate_runs.c.id).where(*_from_ci(scope)).limit(1)
    with store.reading() as conn:
        return conn.execute(query).first() is not None


def plugin_recorded(store: Store, scope: Scope, run_id: int, attempt: int) -> bool:
    """Whether the plugin's own session of this attempt is stored."""
    query = (
        sa.select(gate_sessions.c.id)
        .join(gate_runs, gate_runs.c.id == gate_sessions.c.run_id)
        .where(
            gate_runs.c.gate == scope.gate,
            gate_runs.c.repository == scope.repository,
            gate_runs.c.run_key == run_key(scope.repository, run_id, attempt),
            gate_sessions.c.source == "plugin",
        )
        .limit(1)
    )
    with store.reading() as conn:
        return conn.execute(query).first() is not None


def _from_ci(scope: Scope) -> list[Any]:
    # Only the collector sets ci_verdict: a row the plugin alone made has none.
    return [
        gate_runs.c.gate == scope.gate,
        gate_runs.c.repository == scope.repository,
        gate_runs.c.ci_provider == PROVIDER,
        gate_runs.c.ci_verdict.is_not(None),
    ]


def _ci_values(scope: Scope, run: CIRun, attempt: GateAttempt) -> dict[str, Any]:
    latest = attempt.number == run.attempt
    finished = attempt.finished_at
    details = {
        "run_id": run.id,
        "attempt": attempt.number,
        "workflow_id": run.workflow_id,
        "run_status": run.status if latest else "completed",
        "run_conclusion": run.conclusion if latest else None,
        "jobs": [_job_details(job) for job in attempt.jobs],
    }
    return {
        "event": run.event,
        "branch": run.branch,
        "commit_sha": run.commit,
        "ci_provider": PROVIDER,
        "ci_run_id": str(run.id),
        "attempt": attempt.number,
        "workflow": run.workflow_name,
        "job": scope.job,
        "url": attempt_url(run, attempt.number),
        "started_at": attempt.started_at,
        "finished_at": finished,
        "duration_s": (
            (finished - attempt.started_at).total_seconds() if finished else None
        ),
        "ci_status": "completed",
        "ci_conclusion": attempt.conclusion,
        "ci_verdict": attempt.verdict,
        "ci_details": json.dumps(details, sort_keys=True),
    }


def _job_details(job: CIJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "conclusion": job.conclusion,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "completed_at": job.completed_at.isoformat() if job.completed_at else None,
        "url": job.url,
    }


def _has_sessions(conn: Connection, row_id: int) -> bool:
    query = sa.select(gate_sessions.c.id).where(gate_sessions.c.run_id == row_id)
    return conn.execute(query.limit(1)).first() is not None
