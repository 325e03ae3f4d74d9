"""The rows a session becomes, as plain values: no SQLAlchemy needed here.

``Store`` (through SQLAlchemy) and the plugin's direct writer (through the
database driver, see ``gate_tracker.direct_write``) both build what they write
with these functions, so the two ways of storing a session store the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from gate_tracker.records import OUTCOMES, SessionRecord
from gate_tracker.verdicts import combine_verdicts

SCHEMA_REVISION = "0001"
"""The Alembic revision this code reads and writes (``migrations/versions``)."""

COUNT_COLUMNS = (*OUTCOMES, "rerun")
"""The per-outcome count columns of ``gate_runs`` and ``gate_sessions``."""

TEST_COLUMNS = (
    "run_id",
    "session_id",
    "test_id",
    "outcome",
    "attempts",
    "reruns",
    "duration_s",
    "worker",
    "message",
    "signature",
    "longrepr",
    "file",
    "line",
)
"""The columns of ``test_results`` that ``test_values`` fills, in its order."""


def run_values(session: SessionRecord, recorded_at: datetime) -> dict[str, Any]:
    """The ``gate_runs`` row a session creates when its run is not stored yet."""
    ci = session.ci
    return {
        "gate": session.gate,
        "repository": session.repository,
        "run_key": session.run_key,
        "sources": "",
        "event": session.event,
        "branch": session.branch,
        "commit_sha": session.commit,
        "ci_provider": ci.provider if ci else None,
        "ci_run_id": ci.run_id if ci else None,
        "attempt": (ci.run_attempt or 1) if ci else 1,
        "workflow": ci.workflow if ci else None,
        "job": ci.job if ci else None,
        "url": ci.url if ci else None,
        "started_at": session.started_at,
        "finished_at": session.finished_at,
        "duration_s": session.duration_s,
        "verdict": session.verdict,
        "reason": session.reason,
        "recorded_at": recorded_at,
        # Filled in later: from the sessions by refreshed_run, from CI by the
        # collector.
        "ci_status": None,
        "ci_conclusion": None,
        "ci_verdict": None,
        "ci_details": None,
        "exit_status": None,
        "has_test_data": False,
        "sessions": 0,
        **dict.fromkeys(COUNT_COLUMNS, 0),
    }


def session_values(run_id: int, session: SessionRecord) -> dict[str, Any]:
    """The ``gate_sessions`` row of ``session`` in the run ``run_id``."""
    counts = session.counts()
    return {
        "run_id": run_id,
        "shard": session.shard,
        "record_id": session.record_id,
        "source": session.source,
        "started_at": session.started_at,
        "finished_at": session.finished_at,
        "duration_s": session.duration_s,
        "exit_status": session.exit_status,
        "verdict": session.verdict,
        "reason": session.reason,
        "hostname": session.hostname,
        "python_version": session.python_version,
        "pytest_version": session.pytest_version,
        "plugin_version": session.plugin_version,
        "xdist_workers": session.xdist_workers,
        "reruns": session.reruns,
        "args": json.dumps(session.args),
        "selection": json.dumps(session.selection),
        "collected": session.collected,
        **{column: counts[column] for column in COUNT_COLUMNS},
    }


def test_values(
    run_id: int, session_id: int, session: SessionRecord
) -> list[tuple[Any, ...]]:
    """The ``test_results`` rows of ``session``, as tuples in ``TEST_COLUMNS`` order."""
    return [
        (
            run_id,
            session_id,
            t.test_id,
            t.outcome,
            ",".join(t.attempts),
            len(t.attempts) - 1,
            t.duration_s,
            t.worker,
            t.message,
            t.signature,
            t.longrepr,
            t.file,
            t.line,
        )
        for t in session.tests
    ]


def refreshed_run(
    run: Mapping[Any, Any],
    sessions: Sequence[Mapping[Any, Any]],
    *,
    add_source: str | None = None,
) -> dict[str, Any]:
    """A gate run's verdict, counts and times recomputed from its parts.

    The parts are the run's ``sessions`` plus, when CI data is stored, the
    verdict derived from the CI conclusion. Times must be aware datetimes.
    """
    verdicts = [s["verdict"] for s in sessions]
    if run["ci_verdict"]:
        verdicts.append(run["ci_verdict"])
    values: dict[str, Any] = {
        "verdict": combine_verdicts(verdicts) if verdicts else run["verdict"],
        "sessions": len(sessions),
        "has_test_data": bool(sessions),
    }
    for column in COUNT_COLUMNS:
        values[column] = sum(s[column] for s in sessions)
    if sessions:
        values["reason"] = "; ".join(
            (f"{s['shard']}: " if s["shard"] else "") + s["reason"]
            for s in sessions
            if s["reason"]
        )
        if run["ci_verdict"] is None:
            values["started_at"] = min(aware(s["started_at"]) for s in sessions)
            values["finished_at"] = max(aware(s["finished_at"]) for s in sessions)
            values["duration_s"] = (
                values["finished_at"] - values["started_at"]
            ).total_seconds()
            values["exit_status"] = max(
                (s["exit_status"] for s in sessions if s["exit_status"] is not None),
                default=None,
            )
    if add_source:
        sources = set(filter(None, run["sources"].split("+"))) | {add_source}
        values["sources"] = "+".join(sorted(sources))
    return values


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware datetime: SQLite gives back naive UTC ones."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment
