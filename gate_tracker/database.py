"""Connections: engines for any SQLAlchemy URL, configured for gate-tracker.

The lower of the storage layers. SQLite runs in WAL mode with a busy timeout
and takes its write lock when a write transaction begins (connections opened
with the ``gate_tracker_write`` execution option), so concurrent writers queue
instead of failing. Reading the stored schema version needs no Alembic.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from gate_tracker.config import SQLITE_BUSY_TIMEOUT_S, display_url, sqlite_pragmas
from gate_tracker.exceptions import StorageError, first_line

if TYPE_CHECKING:
    from gate_tracker.migrations import SchemaVersion


def schema_version(engine: Engine) -> SchemaVersion:
    """The schema version stored in the database behind ``engine``.

    Reads the version table with plain SQL, so Alembic is imported only when
    an upgrade is due. Raises ``StorageError`` when the database cannot be
    opened or is not a database at all.
    """
    from gate_tracker.migrations import stored_version

    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            return stored_version(conn)
    except sa.exc.DatabaseError as err:
        if _is_damaged_sqlite(err):
            raise StorageError(
                f"{shown} is not a usable SQLite database ({first_line(err.orig)}); "
                "it was left unchanged. Give the path of a gate-tracker database, "
                "or a new path to create one"
            ) from err
        raise StorageError(
            f"could not open the database {shown}: {first_line(err.orig)}. Check "
            "that it is reachable and readable, then try again."
        ) from err
    except SQLAlchemyError as err:
        raise StorageError(f"could not open the database {shown}: {err}") from err


def upgrade_command(url: str) -> str:
    """The command that upgrades the schema of the database at ``url``."""
    return f"gate-tracker --db {display_url(url)} db upgrade"


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``, configured as the store configures its own."""
    return make_engine(url, create=create)


def _is_damaged_sqlite(err: sa.exc.DatabaseError) -> bool:
    # sqlite3 raises its base DatabaseError, not a subclass, for a file that is
    # not a database or whose pages are damaged.
    return type(err.orig) is sqlite3.DatabaseError


def make_engine(url: str, *, create: bool = True) -> Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as err:
        shown = url if "@" not in url else display_url(url)
        raise StorageError(
            f"not a database URL: {shown!r}; give an SQLAlchemy URL such as "
            "sqlite:///path/to/gate.db or postgresql+psycopg://host/name"
        ) from err

    if parsed.get_backend_name() != "sqlite":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as err:
            raise StorageError(
                f"cannot use the database {display_url(url)}: {err}"
            ) from err

    if parsed.database and parsed.database != ":memory:":
        _prepare_sqlite_file(Path(parsed.database), create=create)
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _configure_sqlite)
    sa.event.listen(engine, "begin", _begin_sqlite)
    return engine


def _prepare_sqlite_file(path: Path, *, create: bool) -> None:
    if not create:
        if not path.is_file():
            raise StorageError(
                f"there is no database at {path}: record a run with "
                "`pytest --gate NAME`, or point --db (or GATE_TRACKER_DB) at one"
            )
        return

    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise StorageError(
            f"cannot keep the database at {path}: {folder} is a file, not a folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(
            f"cannot create the folder {folder} for the database: {err.strerror}"
        ) from err


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _begin_sqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in sqlite_pragmas():
        cursor.execute(pragma)
    cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    # A write transaction takes the write lock at once: a deferred one that
    # reads first can fail with "database is locked" without waiting.
    if conn.get_execution_options().get("gate_tracker_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
