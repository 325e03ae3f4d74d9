"""Alembic migrations of the gate-tracker schema, shipped inside the package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS_DIR = Path(__file__).parent / "versions"
SCRIPT_LOCATION = "gate_tracker:migrations"
"""Where Alembic finds the migrations: inside the installed package."""

VERSION_TABLE = "alembic_version"
LOCK_KEY = 0x67617465_74726B72
"""PostgreSQL advisory lock held while the schema is created or upgraded."""


@dataclass(frozen=True)
class SchemaVersion:
    """What a database says about its schema.

    ``stamped`` is true when the version table exists; ``revision`` is None in
    an empty database and in one downgraded to the base (no tables left).
    """

    stamped: bool
    revision: str | None


def known_revisions() -> set[str]:
    """Every schema revision this gate-tracker knows, from the version files.

    Version files are named ``<revision>_<slug>.py``.
    """
    return {
        path.name.split("_", 1)[0]
        for path in VERSIONS_DIR.glob("*_*.py")
        if not path.name.startswith("_")
    }


def stored_version(conn: Connection) -> SchemaVersion:
    """The schema version recorded in the database, read with plain SQL."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return SchemaVersion(stamped=False, revision=None)

    revision = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return SchemaVersion(stamped=True, revision=revision.scalar())


def lock_schema(conn: Connection) -> None:
    """Make concurrent schema changes on PostgreSQL wait for each other.

    The lock lasts until the transaction ends. Other databases need none:
    SQLite serialises writers itself.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for gate-tracker's migrations, built in code.

    No ``alembic.ini`` is read: the migrations are found inside the package,
    and they run on ``connection`` (see ``env.py``).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision among the shipped migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found under {VERSIONS_DIR}")
    return head


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction.

    On SQLite the transaction takes the write lock at once, on PostgreSQL an
    advisory lock, so a concurrent upgrade waits and then finds nothing to do.
    """
    from alembic import command

    writer = engine.connect().execution_options(gate_tracker_write=True)
    with writer as conn, conn.begin():
        command.upgrade(alembic_config(conn), revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Run the migrations down to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    writer = engine.connect().execution_options(gate_tracker_write=True)
    with writer as conn, conn.begin():
        command.downgrade(alembic_config(conn), revision)
