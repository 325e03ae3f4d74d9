"""A database per test, SQLite or PostgreSQL, cheap enough for many tests.

Creating a PostgreSQL database takes a few hundred milliseconds, so tests that
only need an empty gate-tracker schema share one database per module and get
it emptied before each test. Tests that need a database without any schema
use ``pg_url`` from conftest instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from gate_tracker import schema


@contextmanager
def new_pg_database(server: str) -> Iterator[str]:
    """The URL of a new, empty database on the PostgreSQL ``server``, dropped after."""
    name = f"gt_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def module_pg_url(pg_server: str) -> Iterator[str]:
    """One PostgreSQL database for the module, dropped after it."""
    with new_pg_database(pg_server) as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty gate-tracker database: a new SQLite file, or the module's
    PostgreSQL database with every table emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.db'}"
    url = str(request.getfixturevalue("module_pg_url"))
    _empty(url)
    return url


def _empty(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            tables = [
                t.name for t in schema.metadata.sorted_tables if t.name in present
            ]
            if tables:
                names = ", ".join(f'"{name}"' for name in tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
