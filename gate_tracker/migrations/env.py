"""The Alembic environment: runs gate-tracker's migrations on one connection."""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from gate_tracker import schema
from gate_tracker.migrations import lock_schema


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        lock_schema(connection)
        context.run_migrations()


def _connection() -> Connection:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise CommandError(
            "gate-tracker's migrations run through `gate-tracker db upgrade`, "
            "which passes them a database connection"
        )
    return connection


if context.is_offline_mode():
    raise CommandError("gate-tracker's migrations do not support offline (--sql) mode")
_run_migrations(_connection())
