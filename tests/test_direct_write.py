"""The plugin's direct writer stores exactly what the store stores, or nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import build_session
from databases import (  # noqa: F401  (the fixture)
    _empty,
    db_url,
    module_pg_url,
)

from gate_tracker import direct_write, schema
from gate_tracker.direct_write import store_directly
from gate_tracker.exceptions import StorageError
from gate_tracker.records import SessionRecord, TestRecord
from gate_tracker.storage import Store

Writer = Callable[[str, SessionRecord], "tuple[int, bool]"]


def _with_store(url: str, session: SessionRecord) -> tuple[int, bool]:
    with Store(url) as store:
        outcome = store.record_session(session)
    return outcome.run_id, outcome.stored


def _directly(url: str, session: SessionRecord) -> tuple[int, bool]:
    written = store_directly(url, session)
    assert written is not None, "the direct writer declined a current database"
    return written


def _tests() -> list[TestRecord]:
    failed = TestRecord("tests/test_a.py::test_broken", "failed", ["failed"], 1.25)
    failed.message = "AssertionError: 3 != 4"
    failed.signature = "AssertionError: <n> != <n>"
    failed.longrepr = "def test_broken():\n>       assert 3 == 4\nE       assert 3 == 4"
    failed.file, failed.line = "tests/test_a.py", 12
    return [
        failed,
        TestRecord("tests/test_a.py::test_ok", "passed", ["passed"], 0.5, worker="gw0"),
        TestRecord("tests/test_a.py::test_flaky", "passed", ["failed", "passed"], 2.0),
        TestRecord("tests/test_a.py::test_skip", "skipped", ["skipped"], 0.0),
    ]


def _scenario() -> list[tuple[SessionRecord, bool]]:
    """Sessions to store in order, each with whether a writer may be direct."""
    shard_a = build_session(1, shard="a", tests=_tests())
    shard_b = build_session(1, shard="b", verdict="fail", tests=_tests())
    shard_b_again = build_session(1, shard="b", tests=_tests()[:1])
    local = build_session(2, event="local", tests=_tests())
    imported = build_session(3, source="junit", tests=_tests())
    recorded = build_session(3, verdict="flaky-pass", tests=_tests()[:2])
    return [
        (shard_a, True),
        (shard_b, True),
        (shard_a, True),  # the same record again: stored once
        (shard_b_again, True),  # a new record of shard b replaces it
        (local, True),
        (imported, False),  # JUnit imports go through the store alone
        (recorded, True),  # the plugin's record supersedes the import
    ]


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row but the moment of recording; test results in a stable order.

    The order of one session's test results is not kept: the direct writer
    inserts the tests without a failure first.
    """
    engine = sa.create_engine(url)
    results = schema.test_results
    try:
        with engine.connect() as conn:
            tables = {
                table.name: [
                    {k: v for k, v in row._mapping.items() if k != "recorded_at"}
                    for row in conn.execute(sa.select(table).order_by(table.c.id))
                ]
                for table in (schema.gate_runs, schema.gate_sessions)
            }
            tables[results.name] = [
                {k: v for k, v in row._mapping.items() if k != "id"}
                for row in conn.execute(
                    sa.select(results).order_by(results.c.session_id, results.c.test_id)
                )
            ]
            return tables
    finally:
        engine.dispose()


def _store_all(
    url: str, writer: Writer, scenario: list[tuple[SessionRecord, bool]]
) -> list[tuple[int, bool]]:
    Store(url).close()  # the schema, as the first recording creates it
    return [
        (writer if direct else _with_store)(url, session)
        for session, direct in scenario
    ]


def _again(url: str, tmp_path: Path) -> str:
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    _empty(url)
    return url


def test_the_direct_writer_stores_the_rows_the_store_stores(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    scenario = _scenario()
    by_store = _store_all(db_url, _with_store, scenario)
    stored_by_store = _tables(db_url)

    second = _again(db_url, tmp_path)
    directly = _store_all(second, _directly, scenario)
    stored_directly = _tables(second)

    assert directly == by_store
    assert [stored for _, stored in directly] == [
        True,
        True,
        False,
        True,
        True,
        True,
        True,
    ]
    assert stored_directly == stored_by_store
    runs = stored_directly["gate_runs"]
    assert [(run["sessions"], run["sources"], run["verdict"]) for run in runs] == [
        (2, "plugin", "pass"),
        (1, "plugin", "pass"),
        (1, "junit+plugin", "flaky-pass"),
    ]
    assert len(stored_directly["test_results"]) == 1 + 4 + 4 + 2


def test_the_direct_writer_leaves_unfamiliar_databases_to_the_store(
    tmp_path: Path,
) -> None:
    session = build_session(1)
    empty_file = tmp_path / "empty.db"
    sqlite3.connect(empty_file).close()
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("shopping list\n")
    older = tmp_path / "older.db"
    Store(f"sqlite:///{older}").close()
    with sqlite3.connect(older) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")

    for url in (
        f"sqlite:///{tmp_path / 'missing.db'}",
        f"sqlite:///{empty_file}",
        f"sqlite:///{not_a_database}",
        f"sqlite:///{older}",
        f"sqlite:///{older}?mode=ro",
        "sqlite://",
        "mysql+pymysql://gate@127.0.0.1/gate",
    ):
        assert store_directly(url, session) is None, url

    assert not (tmp_path / "missing.db").exists()
    assert not_a_database.read_text() == "shopping list\n"
    with sqlite3.connect(older) as conn:
        assert conn.execute("SELECT count(*) FROM gate_runs").fetchone() == (0,)


def test_a_failed_direct_write_leaves_nothing_behind(sqlite_url: str) -> None:
    Store(sqlite_url).close()
    unstorable = build_session(1, tests=_tests())
    unstorable.tests[-1].test_id = None  # type: ignore[assignment]

    with pytest.raises(StorageError) as raised:
        store_directly(sqlite_url, unstorable)

    assert str(raised.value).startswith(
        f"could not write to the database {sqlite_url}: NOT NULL constraint failed"
    )
    assert _tables(sqlite_url) == {
        "gate_runs": [],
        "gate_sessions": [],
        "test_results": [],
    }


def test_a_locked_database_fails_the_direct_write_with_its_name(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(sqlite_url).close()
    monkeypatch.setattr(direct_write, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None
    )
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="database is locked"):
            store_directly(sqlite_url, build_session(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert _tables(sqlite_url)["gate_runs"] == []


@pytest.mark.postgresql
def test_the_direct_writer_leaves_a_postgresql_database_without_the_schema_alone(
    pg_url: str,
) -> None:
    assert store_directly(pg_url, build_session(1)) is None

    Store(pg_url).close()
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        assert store_directly(pg_url, build_session(1)) is None
        with engine.connect() as conn:
            runs = conn.execute(sa.text("SELECT count(*) FROM gate_runs")).scalar()
    finally:
        engine.dispose()
    assert runs == 0
