"""The store: gate runs, sessions and test results in any SQLAlchemy database.

Every write is one transaction. SQLite runs in WAL mode with a busy timeout and
takes its write lock when a write transaction begins, so concurrent writers
queue instead of failing; other databases rely on unique keys and row locks.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from gate_tracker import rows, schema
from gate_tracker.config import display_url
from gate_tracker.database import make_engine, schema_version, upgrade_command
from gate_tracker.exceptions import (
    SchemaOutdatedError,
    SchemaTooNewError,
    StorageError,
    database_failure,
)
from gate_tracker.records import FAILED_OUTCOMES, SessionRecord, StoredRun
from gate_tracker.rows import COUNT_COLUMNS
from gate_tracker.schema import gate_runs, gate_sessions, test_results

if TYPE_CHECKING:
    from gate_tracker.migrations import SchemaVersion

log = logging.getLogger(__name__)

JUNIT_SOURCE = "junit"
_VERSION_TABLE = "alembic_version"


@dataclass
class RecordOutcome:
    """What ``Store.record_session`` did."""

    run_id: int
    stored: bool
    """False when the same session (same record id) was already stored."""


class Store:
    """Reads and writes gate runs in one database.

    Open with ``Store(url)``; the schema is created on first use of an empty
    database. Close with ``close()`` or use the store as a context manager.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.shown_url = display_url(url)
        self.engine = make_engine(url, create=create)
        try:
            self._check_schema(create=create)
        except BaseException:
            self.engine.dispose()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction; everything in it lands or nothing does."""
        with self._translated("write to"), self.engine.connect() as conn:
            conn.execution_options(gate_tracker_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One read transaction, giving a consistent view."""
        with self._translated("read"), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except (OperationalError, DBAPIError) as err:
            cause = err.orig if err.orig else err
            raise database_failure(action, self.shown_url, cause) from err
        except SQLAlchemyError as err:
            raise StorageError(
                f"could not {action} the database {self.shown_url}: {err}"
            ) from err

    # -- schema -------------------------------------------------------------

    def _check_schema(self, *, create: bool) -> None:
        version = self._stored_version()
        if version.revision == rows.SCHEMA_REVISION:
            return

        if not version.stamped:
            if not create:
                raise StorageError(
                    f"the database {self.shown_url} holds no gate-tracker data yet"
                )
            self._create_schema()
            return

        known = _known_revisions()
        if version.revision is not None and version.revision not in known:
            raise SchemaTooNewError(
                f"the database {self.shown_url} has schema revision "
                f"{version.revision}, written by a newer gate-tracker; it is left "
                "untouched. Upgrade gate-tracker to use it"
            )

        # Behind: an older revision, or the base after a full downgrade.
        if self.engine.dialect.name == "sqlite":
            self._upgrade_schema(version.revision)
            return
        raise SchemaOutdatedError(
            f"the database {self.shown_url} is at schema revision "
            f"{version.revision or 'base'}, this gate-tracker needs "
            f"{rows.SCHEMA_REVISION}: run `{upgrade_command(self.url)}` first"
        )

    def schema_revision(self) -> str | None:
        """The schema revision stored in the database, or None when empty."""
        return self._stored_version().revision

    def _stored_version(self) -> SchemaVersion:
        return schema_version(self.engine)

    def _create_schema(self) -> None:
        from gate_tracker.migrations import lock_schema

        try:
            with self.writing() as conn:
                lock_schema(conn)
                schema.metadata.create_all(conn, checkfirst=True)
                version = _version_table()
                version.create(conn, checkfirst=True)
                conn.execute(sa.delete(version))
                conn.execute(
                    sa.insert(version).values(version_num=rows.SCHEMA_REVISION)
                )
        except StorageError:
            # Another process may have created the schema at the same moment.
            if self.schema_revision() != rows.SCHEMA_REVISION:
                raise

    def _upgrade_schema(self, revision: str | None) -> None:
        from gate_tracker.migrations import upgrade_schema

        log.info(
            "upgrading the schema of %s from %s to %s",
            self.shown_url,
            revision or "base",
            rows.SCHEMA_REVISION,
        )
        with self._translated("upgrade"):
            upgrade_schema(self.engine)

    # -- writing --------------------------------------------------------------

    def record_session(self, session: SessionRecord) -> RecordOutcome:
        """Store one session as a shard of its gate run, in one transaction.

        Storing a session whose record id is already stored changes nothing; a
        different session for the same shard of the same gate run replaces it,
        so a shard is stored once.
        """
        with self.writing() as conn:
            return self.store_session(conn, session)

    def store_session(self, conn: Connection, session: SessionRecord) -> RecordOutcome:
        """``record_session`` inside the caller's transaction ``conn``.

        The collector uses it to store a CI run with all its sessions at once.
        A gate run keeps either the plugin's sessions or JUnit imports, never
        both, so no test is counted twice: the plugin's records, which know
        every attempt, win.
        """
        run_id = self._ensure_run(conn, session)
        if not _prefer_recorded_sessions(conn, run_id, session):
            return RecordOutcome(run_id=run_id, stored=False)

        existing = conn.execute(
            sa.select(gate_sessions.c.id, gate_sessions.c.record_id).where(
                gate_sessions.c.run_id == run_id,
                gate_sessions.c.shard == session.shard,
            )
        ).first()
        if existing is not None and existing.record_id == session.record_id:
            return RecordOutcome(run_id=run_id, stored=False)
        if existing is not None:
            conn.execute(
                sa.delete(test_results).where(test_results.c.session_id == existing.id)
            )
            conn.execute(
                sa.delete(gate_sessions).where(gate_sessions.c.id == existing.id)
            )

        session_id = _insert_session(conn, run_id, session)
        _insert_tests(conn, run_id, session_id, session)
        refresh_run(conn, run_id, add_source=session.source)
        return RecordOutcome(run_id=run_id, stored=True)

    def _ensure_run(self, conn: Connection, session: SessionRecord) -> int:
        key = (session.gate, session.repository, session.run_key)
        values = rows.run_values(session, recorded_at=datetime.now(timezone.utc))
        return self.ensure_run_row(conn, key, values)

    def ensure_run_row(
        self, conn: Connection, key: tuple[str, str, str], values: dict[str, Any]
    ) -> int:
        """The id of the gate run ``key`` (gate, repository, run key).

        The row is created from ``values`` when missing, and locked for the rest
        of the transaction so concurrent writers of one run queue up.
        """
        insert_ignore(conn, gate_runs, values, ("gate", "repository", "run_key"))
        gate, repository, run_key = key
        row_id = conn.execute(
            sa.select(gate_runs.c.id)
            .where(
                gate_runs.c.gate == gate,
                gate_runs.c.repository == repository,
                gate_runs.c.run_key == run_key,
            )
            .with_for_update()
        ).scalar_one()
        return int(row_id)

    # -- reading --------------------------------------------------------------

    def gates(self) -> list[tuple[str, str]]:
        """Every (gate, repository) pair stored, sorted."""
        with self.reading() as conn:
            rows = conn.execute(
                sa.select(gate_runs.c.gate, gate_runs.c.repository)
                .distinct()
                .order_by(gate_runs.c.gate, gate_runs.c.repository)
            )
            return [(row.gate, row.repository) for row in rows]

    def runs(
        self,
        gate: str,
        *,
        repository: str | None = None,
        branch: str | None = None,
        events: Sequence[str] | None = None,
        commit: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StoredRun]:
        """Gate runs in scope, newest first."""
        query = sa.select(gate_runs).where(gate_runs.c.gate == gate)
        if repository is not None:
            query = query.where(gate_runs.c.repository == repository)
        if branch is not None:
            query = query.where(gate_runs.c.branch == branch)
        if events:
            query = query.where(gate_runs.c.event.in_(list(events)))
        if commit is not None:
            query = query.where(gate_runs.c.commit_sha.startswith(commit))
        query = query.order_by(gate_runs.c.started_at.desc(), gate_runs.c.id.desc())
        query = query.limit(limit).offset(offset)

        with self.reading() as conn:
            return [stored_run(row._mapping) for row in conn.execute(query)]

    def tests_of_note(
        self, run_ids: Iterable[int]
    ) -> dict[int, tuple[list[str], list[str]]]:
        """For each run id: its failed tests and its tests that needed reruns."""
        ids = list(run_ids)
        notes: dict[int, tuple[list[str], list[str]]] = {i: ([], []) for i in ids}
        if not ids:
            return notes

        query = (
            sa.select(
                test_results.c.run_id, test_results.c.test_id, test_results.c.outcome
            )
            .where(
                test_results.c.run_id.in_(ids),
                sa.or_(
                    test_results.c.outcome.in_(FAILED_OUTCOMES),
                    test_results.c.reruns > 0,
                ),
            )
            .order_by(test_results.c.run_id, test_results.c.test_id)
        )
        with self.reading() as conn:
            for row in conn.execute(query):
                failed, rerun = notes[row.run_id]
                if row.outcome in FAILED_OUTCOMES:
                    failed.append(row.test_id)
                else:
                    rerun.append(row.test_id)
        return notes


def _prefer_recorded_sessions(
    conn: Connection, run_id: int, session: SessionRecord
) -> bool:
    """Drop the run's JUnit sessions for a recorded one; False to skip ``session``."""
    stored = conn.execute(
        sa.select(gate_sessions.c.id, gate_sessions.c.source).where(
            gate_sessions.c.run_id == run_id
        )
    ).all()
    if session.source == JUNIT_SOURCE:
        return all(row.source == JUNIT_SOURCE for row in stored)

    superseded = [row.id for row in stored if row.source == JUNIT_SOURCE]
    if superseded:
        conn.execute(
            sa.delete(test_results).where(test_results.c.session_id.in_(superseded))
        )
        conn.execute(sa.delete(gate_sessions).where(gate_sessions.c.id.in_(superseded)))
    return True


def update_session_exit_status(store: Store, session: SessionRecord) -> None:
    """Store ``session.exit_status`` for the already stored ``session``."""
    with store.writing() as conn:
        run_id = conn.execute(
            sa.update(gate_sessions)
            .where(gate_sessions.c.record_id == session.record_id)
            .values(exit_status=session.exit_status)
            .returning(gate_sessions.c.run_id)
        ).scalar()
        if run_id is not None:
            refresh_run(conn, int(run_id))


def refresh_run(
    conn: Connection, run_id: int, *, add_source: str | None = None
) -> None:
    """Recompute a gate run's verdict, counts and times from its parts.

    The parts are the run's sessions plus, when CI data is stored, the verdict
    derived from the CI conclusion.
    """
    run = conn.execute(sa.select(gate_runs).where(gate_runs.c.id == run_id)).one()
    sessions = conn.execute(
        sa.select(gate_sessions).where(gate_sessions.c.run_id == run_id)
    ).all()
    values = rows.refreshed_run(
        run._mapping, [s._mapping for s in sessions], add_source=add_source
    )
    conn.execute(sa.update(gate_runs).where(gate_runs.c.id == run_id).values(**values))


def insert_ignore(
    conn: Connection, table: sa.Table, values: dict[str, Any], keys: Sequence[str]
) -> None:
    """Insert ``values`` unless a row with the same unique ``keys`` exists."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        # Import only the dialect in use: each costs start-up time.
        dialect_module = importlib.import_module(f"sqlalchemy.dialects.{dialect}")
        statement = dialect_module.insert(table).values(**values)
        conn.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))
        return

    try:
        with conn.begin_nested():
            conn.execute(sa.insert(table).values(**values))
    except IntegrityError:
        pass


def stored_run(row: Any) -> StoredRun:
    """A ``StoredRun`` from a ``gate_runs`` row mapping."""
    return StoredRun(
        id=row["id"],
        gate=row["gate"],
        repository=row["repository"],
        run_key=row["run_key"],
        sources=row["sources"],
        event=row["event"],
        branch=row["branch"],
        commit=row["commit_sha"],
        ci_run_id=row["ci_run_id"],
        attempt=row["attempt"],
        workflow=row["workflow"],
        job=row["job"],
        url=row["url"],
        started_at=rows.aware(row["started_at"]),
        finished_at=rows.aware(row["finished_at"]) if row["finished_at"] else None,
        duration_s=row["duration_s"],
        exit_status=row["exit_status"],
        verdict=row["verdict"],
        reason=row["reason"],
        ci_status=row["ci_status"],
        ci_conclusion=row["ci_conclusion"],
        has_test_data=bool(row["has_test_data"]),
        sessions=row["sessions"],
        counts={column: row[column] for column in COUNT_COLUMNS},
    )


def _insert_session(conn: Connection, run_id: int, session: SessionRecord) -> int:
    result = conn.execute(
        sa.insert(gate_sessions).values(**rows.session_values(run_id, session))
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT always reports its key
    return int(key[0])


def _insert_tests(
    conn: Connection, run_id: int, session_id: int, session: SessionRecord
) -> None:
    if not session.tests:
        return

    # One executemany for every row: the bulk of a recording's write cost.
    values = rows.test_values(run_id, session_id, session)
    named = [dict(zip(rows.TEST_COLUMNS, row, strict=True)) for row in values]
    conn.execute(sa.insert(test_results), named)


def _version_table() -> sa.Table:
    return sa.Table(
        _VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        # Named as Alembic names it, so both ways of creating a schema agree.
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )


def _known_revisions() -> set[str]:
    from gate_tracker.migrations import known_revisions

    return known_revisions()
