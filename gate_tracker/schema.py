"""The database schema: gate runs, their sessions (shards) and test results.

``gate_runs`` holds one row per trial of a gate (a local session, or one
attempt of one CI run), ``gate_sessions`` one row per recorded shard of it, and
``test_results`` one row per test of a session. Every query is scoped by gate
and repository (an empty string for runs outside CI).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from gate_tracker.rows import COUNT_COLUMNS

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and read back with its time zone.

    SQLite keeps no offset: 11:00+02:00 would be read back as 11:00 UTC, so
    every value is converted to UTC on the way in. A naive value is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; gate-tracker stores UTC"
            )
        return value.astimezone(timezone.utc)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        # PostgreSQL answers in the server's time zone: read it back as UTC.
        return value.astimezone(timezone.utc)


def _count_columns() -> list[Column[int]]:
    return [Column(name, Integer, nullable=False, default=0) for name in COUNT_COLUMNS]


gate_runs = Table(
    "gate_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gate", String(200), nullable=False),
    Column("repository", String(200), nullable=False, default=""),
    Column("run_key", String(300), nullable=False),
    Column("sources", String(100), nullable=False, default=""),
    Column("event", String(50), nullable=False),
    Column("branch", Text),
    Column("commit_sha", Text),
    Column("ci_provider", String(30)),
    Column("ci_run_id", String(40)),
    Column("attempt", Integer, nullable=False, default=1),
    Column("workflow", Text),
    Column("job", Text),
    Column("url", Text),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("duration_s", Float),
    Column("exit_status", Integer),
    Column("verdict", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("ci_status", String(30)),
    Column("ci_conclusion", String(30)),
    Column("ci_verdict", String(20)),
    Column("ci_details", Text),
    Column("has_test_data", Boolean, nullable=False, default=False),
    Column("sessions", Integer, nullable=False, default=0),
    *_count_columns(),
    Column("recorded_at", UTCDateTime(), nullable=False),
    UniqueConstraint("gate", "repository", "run_key", name="uq_gate_runs_key"),
    Index("ix_gate_runs_scope", "gate", "repository", "started_at"),
    Index("ix_gate_runs_commit", "gate", "commit_sha"),
    # The newest runs of a gate over all its repositories: status and the
    # forecast read only those, however long the history.
    Index("ix_gate_runs_recent", "gate", "started_at"),
)

gate_sessions = Table(
    "gate_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        Integer,
        ForeignKey("gate_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("shard", String(100), nullable=False, default=""),
    Column("record_id", String(64), nullable=False),
    Column("source", String(20), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("exit_status", Integer),
    Column("verdict", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("hostname", Text),
    Column("python_version", Text),
    Column("pytest_version", Text),
    Column("plugin_version", Text),
    Column("xdist_workers", Integer, nullable=False, default=0),
    Column("reruns", Integer),
    Column("args", Text, nullable=False, default="[]"),
    Column("selection", Text, nullable=False, default="{}"),
    Column("collected", Integer),
    *_count_columns(),
    UniqueConstraint("run_id", "shard", name="uq_gate_sessions_shard"),
)

test_results = Table(
    "test_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        Integer,
        ForeignKey("gate_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "session_id",
        Integer,
        ForeignKey("gate_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("test_id", Text, nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("attempts", Text, nullable=False),
    Column("reruns", Integer, nullable=False, default=0),
    Column("duration_s", Float, nullable=False, default=0.0),
    Column("worker", Text),
    Column("message", Text),
    Column("signature", Text),
    Column("longrepr", Text),
    Column("file", Text),
    Column("line", Integer),
    Index("ix_test_results_run", "run_id"),
    # Deleting a session's results (prune, a replaced shard) finds them by it.
    Index("ix_test_results_session", "session_id"),
)

sync_state = Table(
    "sync_state",
    metadata,
    # Where a collector stands for one gate, repository and scope (workflow,
    # job, branch, events): the span of creation times it has fully stored,
    # and what saves requests next time. Written in the same transaction as
    # the runs it vouches for.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(30), nullable=False),
    Column("gate", String(200), nullable=False),
    Column("repository", String(200), nullable=False),
    Column("scope_key", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("wanted_from", UTCDateTime()),
    Column("covered_from", UTCDateTime()),
    Column("covered_to", UTCDateTime()),
    Column("workflow_id", String(40)),
    Column("gate_workflows", Text, nullable=False, default="[]"),
    Column("etags", Text, nullable=False, default="{}"),
    Column("ignored", Text, nullable=False, default="{}"),
    Column("pending", Text, nullable=False, default="{}"),
    Column("synced_at", UTCDateTime()),
    UniqueConstraint(
        "provider", "gate", "repository", "scope_key", name="uq_sync_state_scope"
    ),
)
