"""Storing the plugin's session through the database driver alone, for speed.

Every gate run pays for its own recording. Importing SQLAlchemy costs about 5 %
of the CPU time of a run of 5,000 trivial tests, and more once the garbage
collector has walked its objects for the rest of the session. So when the
database already holds the current schema, the plugin writes its session with
plain SQL over the driver (the standard library's ``sqlite3``, or psycopg for
``postgresql+psycopg`` URLs): the same rows as ``Store.record_session``, built
by the same functions (``gate_tracker.rows``), in one transaction, taking the
same locks.

Everything else is left to ``Store``, which then does the write: other URL
forms and drivers, a database that does not exist yet or lacks the current
schema (the store creates, upgrades or refuses it), and any database that
cannot even be opened or read (the store's error says why).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from gate_tracker import rows
from gate_tracker.config import SQLITE_BUSY_TIMEOUT_S, display_url, sqlite_pragmas
from gate_tracker.exceptions import database_failure
from gate_tracker.records import SessionRecord

_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
_POSTGRESQL_SCHEME = "postgresql+psycopg"
_JUNIT_SOURCE = "junit"
_NO_FAILURE = (None, None, None)  # message, signature, longrepr


def store_directly(url: str, session: SessionRecord) -> tuple[int, bool] | None:
    """Store ``session`` as ``Store.record_session`` would: (run id, stored).

    Returns None, having written nothing, when the store must do it instead.
    Raises ``StorageError`` when the write itself fails.
    """
    database = _open(url)
    if database is None:
        return None

    try:
        if not _current_schema(database):
            return None
        with database.write_transaction(display_url(url)):
            return _store_session(database, session)
    finally:
        database.close()


def _current_schema(database: _Database) -> bool:
    try:
        return database.schema_revision() == rows.SCHEMA_REVISION
    except Exception:  # no version table, not a database: the store's to say
        return False


def _store_session(database: _Database, session: SessionRecord) -> tuple[int, bool]:
    run_id = _ensure_run(database, session)

    stored = database.query(
        "SELECT id, source, shard, record_id FROM gate_sessions WHERE run_id = {}",
        run_id,
    )
    superseded = [row["id"] for row in stored if row["source"] == _JUNIT_SOURCE]
    same_shard = [
        row
        for row in stored
        if row["shard"] == session.shard and row["source"] != _JUNIT_SOURCE
    ]
    if same_shard and same_shard[0]["record_id"] == session.record_id:
        return run_id, False
    for session_id in superseded + [row["id"] for row in same_shard]:
        database.execute("DELETE FROM test_results WHERE session_id = {}", session_id)
        database.execute("DELETE FROM gate_sessions WHERE id = {}", session_id)

    session_id = database.insert_returning_id(
        "gate_sessions", rows.session_values(run_id, session)
    )
    _insert_tests(database, rows.test_values(run_id, session_id, session))
    _refresh_run(database, run_id, add_source=session.source)
    return run_id, True


def _ensure_run(database: _Database, session: SessionRecord) -> int:
    values = rows.run_values(session, recorded_at=datetime.now(timezone.utc))
    database.insert_ignore("gate_runs", values, ("gate", "repository", "run_key"))
    found = database.query(
        "SELECT id FROM gate_runs WHERE gate = {} AND repository = {} AND run_key = {}"
        + database.lock_clause,
        session.gate,
        session.repository,
        session.run_key,
    )
    return int(found[0]["id"])


def _insert_tests(database: _Database, values: list[tuple[Any, ...]]) -> None:
    # Binding parameters is most of the insert's cost, and most tests have no
    # failure to describe: their rows leave those columns out, as NULL.
    first = rows.TEST_COLUMNS.index("message")
    last = rows.TEST_COLUMNS.index("longrepr") + 1
    plain = [row for row in values if row[first:last] == _NO_FAILURE]
    if plain:
        columns = rows.TEST_COLUMNS[:first] + rows.TEST_COLUMNS[last:]
        short_rows = [row[:first] + row[last:] for row in plain]
        database.insert_many("test_results", columns, short_rows)
    if len(plain) < len(values):
        described = [row for row in values if row[first:last] != _NO_FAILURE]
        database.insert_many("test_results", rows.TEST_COLUMNS, described)


def _refresh_run(database: _Database, run_id: int, *, add_source: str) -> None:
    run = database.query("SELECT * FROM gate_runs WHERE id = {}", run_id)[0]
    sessions = database.query("SELECT * FROM gate_sessions WHERE run_id = {}", run_id)
    values = rows.refreshed_run(run, sessions, add_source=add_source)
    assignments = ", ".join(f"{column} = {{}}" for column in values)
    database.execute(
        f"UPDATE gate_runs SET {assignments} WHERE id = {{}}", *values.values(), run_id
    )


class _Database(ABC):
    """One driver connection, and the few statements the writer needs.

    Statements are written with ``{}`` where a parameter goes; each driver
    puts its own placeholder there.
    """

    placeholder = "?"
    lock_clause = ""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def close(self) -> None:
        self.connection.close()

    @abstractmethod
    def schema_revision(self) -> str | None:
        """The stored schema revision; raises when there is no version table."""

    @abstractmethod
    def write_transaction(self, shown_url: str) -> AbstractContextManager[None]:
        """One write transaction, holding the database's write lock if it has one."""

    @abstractmethod
    def insert_returning_id(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row and return its id."""

    def sql(self, statement: str) -> str:
        return statement.replace("{}", self.placeholder)

    def adapt(self, value: Any) -> Any:
        return value

    def execute(self, statement: str, *params: Any) -> Any:
        cursor = self.connection.cursor()
        cursor.execute(self.sql(statement), [self.adapt(p) for p in params])
        return cursor

    def query(self, statement: str, *params: Any) -> list[Mapping[str, Any]]:
        cursor = self.execute(statement, *params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def insert_ignore(
        self, table: str, values: Mapping[str, Any], keys: tuple[str, ...]
    ) -> None:
        self.execute(
            f"{self._insert(table, values)} ON CONFLICT ({', '.join(keys)}) DO NOTHING",
            *values.values(),
        )

    def insert_many(
        self, table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]
    ) -> None:
        marks = ", ".join([self.placeholder] * len(columns))
        self.connection.cursor().executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
        )

    def _insert(self, table: str, values: Mapping[str, Any]) -> str:
        marks = ", ".join(["{}"] * len(values))
        return f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks})"


class _SQLite(_Database):
    def schema_revision(self) -> str | None:
        found = self.query("SELECT version_num FROM alembic_version")
        return str(found[0]["version_num"]) if len(found) == 1 else None

    @contextmanager
    def write_transaction(self, shown_url: str) -> Iterator[None]:
        import sqlite3

        try:
            # The write lock at once, as the store takes it: see database.py.
            self.connection.execute("BEGIN IMMEDIATE")
            yield
            self.connection.execute("COMMIT")
        except sqlite3.Error as err:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise database_failure("write to", shown_url, err) from err
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise

    def adapt(self, value: Any) -> Any:
        # Stored as SQLAlchemy stores a DateTime in SQLite: UTC, no offset.
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def query(self, statement: str, *params: Any) -> list[Mapping[str, Any]]:
        found = super().query(statement, *params)
        return [{k: _sqlite_value(k, v) for k, v in row.items()} for row in found]

    def insert_returning_id(self, table: str, values: Mapping[str, Any]) -> int:
        cursor = self.execute(self._insert(table, values), *values.values())
        return int(cursor.lastrowid)


class _PostgreSQL(_Database):
    placeholder = "%s"
    lock_clause = " FOR UPDATE"

    def schema_revision(self) -> str | None:
        try:
            found = self.query("SELECT version_num FROM alembic_version")
        finally:
            self.connection.rollback()
        return str(found[0]["version_num"]) if len(found) == 1 else None

    @contextmanager
    def write_transaction(self, shown_url: str) -> Iterator[None]:
        import psycopg

        try:
            with self.connection.transaction():
                yield
        except psycopg.Error as err:
            raise database_failure("write to", shown_url, err) from err

    def insert_returning_id(self, table: str, values: Mapping[str, Any]) -> int:
        cursor = self.execute(
            f"{self._insert(table, values)} RETURNING id", *values.values()
        )
        return int(cursor.fetchone()[0])

    def insert_many(
        self, table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]
    ) -> None:
        # COPY: psycopg adapts the rows in C, where an INSERT per row costs
        # the plugin ten times the CPU.
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.connection.cursor().copy(statement) as copy:
            for row in values:
                copy.write_row(row)


def _open(url: str) -> _Database | None:
    """A connection for ``url``, or None when the store must handle it."""
    scheme, _, rest = url.partition("://")
    try:
        if scheme in _SQLITE_SCHEMES:
            return _open_sqlite(rest)
        if scheme == _POSTGRESQL_SCHEME:
            return _open_postgresql(url)
    except Exception:  # the store opens it again and says what is wrong
        return None
    return None


def _open_sqlite(rest: str) -> _Database | None:
    import sqlite3

    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them.
    if not rest.startswith("/") or "?" in rest:
        return None
    path = Path(rest[1:])
    if not path.is_file():
        return None

    connection = sqlite3.connect(
        path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None
    )
    try:
        for pragma in sqlite_pragmas(SQLITE_BUSY_TIMEOUT_S):
            connection.execute(pragma)
    except sqlite3.Error:
        connection.close()
        raise
    return _SQLite(connection)


def _open_postgresql(url: str) -> _Database | None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    parts = urlsplit(url)
    if "," in parts.netloc:  # several hosts: the store's URL handling knows them
        return None
    conninfo = make_conninfo(
        "",
        host=parts.hostname,
        port=parts.port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        dbname=unquote(parts.path.lstrip("/")) or None,
        **dict(parse_qsl(parts.query)),
    )
    return _PostgreSQL(psycopg.connect(conninfo))


def _sqlite_value(column: str, value: Any) -> Any:
    # SQLite hands back the stored text of a datetime.
    if column in ("started_at", "finished_at") and isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return value
