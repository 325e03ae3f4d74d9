"""The first schema: gate runs, their sessions (shards), test results, sync state."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COUNTS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "rerun")


def _count_columns() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS]


def upgrade() -> None:
    op.create_table(
        "gate_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("gate", sa.String(200), nullable=False),
        sa.Column("repository", sa.String(200), nullable=False),
        sa.Column("run_key", sa.String(300), nullable=False),
        sa.Column("sources", sa.String(100), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("branch", sa.Text()),
        sa.Column("commit_sha", sa.Text()),
        sa.Column("ci_provider", sa.String(30)),
        sa.Column("ci_run_id", sa.String(40)),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Text()),
        sa.Column("job", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_s", sa.Float()),
        sa.Column("exit_status", sa.Integer()),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ci_status", sa.String(30)),
        sa.Column("ci_conclusion", sa.String(30)),
        sa.Column("ci_verdict", sa.String(20)),
        sa.Column("ci_details", sa.Text()),
        sa.Column("has_test_data", sa.Boolean(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        *_count_columns(),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("gate", "repository", "run_key", name="uq_gate_runs_key"),
    )
    op.create_index(
        "ix_gate_runs_scope", "gate_runs", ["gate", "repository", "started_at"]
    )
    op.create_index("ix_gate_runs_commit", "gate_runs", ["gate", "commit_sha"])
    op.create_index("ix_gate_runs_recent", "gate_runs", ["gate", "started_at"])

    op.create_table(
        "gate_sessions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("gate_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("shard", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("exit_status", sa.Integer()),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text()),
        sa.Column("python_version", sa.Text()),
        sa.Column("pytest_version", sa.Text()),
        sa.Column("plugin_version", sa.Text()),
        sa.Column("xdist_workers", sa.Integer(), nullable=False),
        sa.Column("reruns", sa.Integer()),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("collected", sa.Integer()),
        *_count_columns(),
        sa.UniqueConstraint("run_id", "shard", name="uq_gate_sessions_shard"),
    )

    op.create_table(
        "test_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("gate_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "session_id",
            sa.Integer(),
            sa.ForeignKey("gate_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("test_id", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Text(), nullable=False),
        sa.Column("reruns", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("worker", sa.Text()),
        sa.Column("message", sa.Text()),
        sa.Column("signature", sa.Text()),
        sa.Column("longrepr", sa.Text()),
        sa.Column("file", sa.Text()),
        sa.Column("line", sa.Integer()),
    )
    op.create_index("ix_test_results_run", "test_results", ["run_id"])
    op.create_index("ix_test_results_session", "test_results", ["session_id"])

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("gate", sa.String(200), nullable=False),
        sa.Column("repository", sa.String(200), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("wanted_from", sa.DateTime(timezone=True)),
        sa.Column("covered_from", sa.DateTime(timezone=True)),
        sa.Column("covered_to", sa.DateTime(timezone=True)),
        sa.Column("workflow_id", sa.String(40)),
        sa.Column("gate_workflows", sa.Text(), nullable=False),
        sa.Column("etags", sa.Text(), nullable=False),
        sa.Column("ignored", sa.Text(), nullable=False),
        sa.Column("pending", sa.Text(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "provider", "gate", "repository", "scope_key", name="uq_sync_state_scope"
        ),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("test_results")
    op.drop_table("gate_sessions")
    op.drop_table("gate_runs")
