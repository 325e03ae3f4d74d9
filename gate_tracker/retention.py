"""Retention: deleting old gate runs with their sessions and test results.

Runs go in small batches, each its own transaction, so a long prune never
holds the database for long: writers recording new runs wait at most for one
batch. A run is old when it started before the cut-off; newer runs are never
touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gate_tracker.rows import COUNT_COLUMNS
from gate_tracker.schema import gate_runs, gate_sessions, test_results
from gate_tracker.storage import Store

log = logging.getLogger(__name__)

BATCH_RUNS = 500
"""Most runs deleted in one transaction (also below SQLite's 999 parameters)."""

BATCH_TESTS = 50_000
"""Most test results deleted in one transaction, so big runs make small batches."""


@dataclass
class Pruned:
    """What a prune removed, or would remove in a dry run."""

    cutoff: datetime
    dry_run: bool
    runs: int = 0
    sessions: int = 0
    tests: int = 0
    batches: int = 0

    def add(self, runs: int, sessions: int, tests: int) -> None:
        self.runs += runs
        self.sessions += sessions
        self.tests += tests
        self.batches += 1


ProgressCallback = Callable[[Pruned], None]


def cutoff_for(days: int, *, now: datetime | None = None) -> datetime:
    """The moment ``days`` days before ``now`` (UTC); older runs are pruned."""
    moment = now or datetime.now(timezone.utc)
    return moment - timedelta(days=days)


def prune_runs(
    store: Store,
    cutoff: datetime,
    *,
    gate: str | None = None,
    repository: str | None = None,
    dry_run: bool = False,
    batch_runs: int = BATCH_RUNS,
    batch_tests: int = BATCH_TESTS,
    progress: ProgressCallback | None = None,
) -> Pruned:
    """Delete the runs that started before ``cutoff``, batch by batch.

    ``gate`` and ``repository`` narrow the prune to one gate or repository.
    With ``dry_run`` nothing is deleted and the counts say what would be.
    ``progress`` is called with the running totals after every batch. A batch
    that fails rolls back alone: the batches before it stay deleted, and a
    later prune carries on from there.
    """
    pruned = Pruned(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        with store.reading() as conn:
            pruned.add(*_count(conn, _old_runs(cutoff, gate, repository)))
        return pruned

    while True:
        with store.writing() as conn:
            ids = _next_batch(conn, cutoff, gate, repository, batch_runs, batch_tests)
            if not ids:
                break
            pruned.add(*_delete(conn, ids))
        log.info(
            "pruned %d runs so far (%d test results)",
            pruned.runs,
            pruned.tests,
            extra={"gate": gate, "repository": repository},
        )
        if progress is not None:
            progress(pruned)
    return pruned


def _old_runs(
    cutoff: datetime, gate: str | None, repository: str | None
) -> list[sa.ColumnElement[bool]]:
    conditions = [gate_runs.c.started_at < cutoff]
    if gate is not None:
        conditions.append(gate_runs.c.gate == gate)
    if repository is not None:
        conditions.append(gate_runs.c.repository == repository)
    return conditions


def _count(
    conn: Connection, conditions: Sequence[sa.ColumnElement[bool]]
) -> tuple[int, int, int]:
    old = sa.select(gate_runs.c.id).where(*conditions).scalar_subquery()
    runs = conn.execute(
        sa.select(sa.func.count()).select_from(gate_runs).where(*conditions)
    ).scalar_one()
    sessions = conn.execute(
        sa.select(sa.func.count()).where(gate_sessions.c.run_id.in_(old))
    ).scalar_one()
    tests = conn.execute(
        sa.select(sa.func.count()).where(test_results.c.run_id.in_(old))
    ).scalar_one()
    return int(runs), int(sessions), int(tests)


def _next_batch(
    conn: Connection,
    cutoff: datetime,
    gate: str | None,
    repository: str | None,
    batch_runs: int,
    batch_tests: int,
) -> list[int]:
    # The stored counts say how many test results each run holds, so a batch
    # can stop before it grows too big. Rows a writer holds right now are
    # skipped on PostgreSQL rather than waited for; the next prune gets them.
    tests_per_run = sum(
        (gate_runs.c[name] for name in COUNT_COLUMNS if name != "rerun"),
        sa.literal(0),
    )
    query = (
        sa.select(gate_runs.c.id, tests_per_run.label("tests"))
        .where(*_old_runs(cutoff, gate, repository))
        .order_by(gate_runs.c.started_at, gate_runs.c.id)
        .limit(batch_runs)
        .with_for_update(skip_locked=True)
    )
    ids: list[int] = []
    tests = 0
    for row in conn.execute(query):
        if ids and tests + row.tests > batch_tests:
            break
        ids.append(int(row.id))
        tests += row.tests
    return ids


def _delete(conn: Connection, ids: list[int]) -> tuple[int, int, int]:
    # Children first, so the counts are exact whatever cascades the database
    # applies on its own.
    tests = conn.execute(sa.delete(test_results).where(test_results.c.run_id.in_(ids)))
    sessions = conn.execute(
        sa.delete(gate_sessions).where(gate_sessions.c.run_id.in_(ids))
    )
    runs = conn.execute(sa.delete(gate_runs).where(gate_runs.c.id.in_(ids)))
    return runs.rowcount, sessions.rowcount, tests.rowcount
