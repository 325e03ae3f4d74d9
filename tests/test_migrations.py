"""Alembic migrations: in step with schema.py; stores meeting old or new schemas."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gate_tracker import rows, schema
from gate_tracker.database import open_engine, schema_version
from gate_tracker.exceptions import SchemaOutdatedError, SchemaTooNewError
from gate_tracker.migrations import (
    downgrade_schema,
    head_revision,
    known_revisions,
    upgrade_schema,
)
from gate_tracker.storage import Store
from tests.conftest import build_session

FUTURE_REVISION = "0999"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def two_db_urls(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """Two empty databases of one kind: SQLite files, or PostgreSQL databases."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")
        return

    server = request.getfixturevalue("pg_server")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    names = [f"gt_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(server)
    urls = [base.set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        yield urls[0], urls[1]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _snapshot(url: str) -> dict[str, dict[str, Any]]:
    """Tables, columns, types, nullability, keys and indexes, as reflected."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            return {
                name: _table_snapshot(inspector, conn.dialect, name)
                for name in inspector.get_table_names()
            }
    finally:
        engine.dispose()


def _table_snapshot(
    inspector: sa.Inspector, dialect: sa.Dialect, name: str
) -> dict[str, Any]:
    columns = [
        (
            column["name"],
            column["type"].compile(dialect=dialect),
            column["nullable"],
            column.get("default"),
            column.get("autoincrement"),
        )
        for column in inspector.get_columns(name)
    ]
    foreign_keys = sorted(
        (
            tuple(fk["constrained_columns"]),
            fk["referred_table"],
            tuple(fk["referred_columns"]),
            fk["options"].get("ondelete"),
        )
        for fk in inspector.get_foreign_keys(name)
    )
    indexes = sorted(
        (index["name"], tuple(index["column_names"]), bool(index["unique"]))
        for index in inspector.get_indexes(name)
    )
    uniques = sorted(
        (unique["name"], tuple(unique["column_names"]))
        for unique in inspector.get_unique_constraints(name)
    )
    primary_key = inspector.get_pk_constraint(name)
    return {
        "columns": columns,
        "primary_key": (primary_key["name"], primary_key["constrained_columns"]),
        "foreign_keys": foreign_keys,
        "indexes": indexes,
        "uniques": uniques,
    }


def test_migrations_build_exactly_the_schema_of_create_all(
    two_db_urls: tuple[str, str],
) -> None:
    """Migration 0001 and schema.py agree on every table, column, key and index."""
    created_url, migrated_url = two_db_urls
    Store(created_url).close()
    engine = open_engine(migrated_url)
    upgrade_schema(engine)
    engine.dispose()

    created = _snapshot(created_url)
    migrated = _snapshot(migrated_url)

    assert set(created) == {*schema.metadata.tables, "alembic_version"}
    assert len(created["gate_runs"]["columns"]) == len(schema.gate_runs.columns)
    for table in sorted(created):
        assert migrated[table] == created[table], table
    assert set(migrated) == set(created)


def test_head_revision_is_the_revision_the_code_needs() -> None:
    assert head_revision() == rows.SCHEMA_REVISION
    assert known_revisions() == {"0001"}


def test_a_new_store_is_stamped_at_the_head_revision(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        assert store.schema_revision() == rows.SCHEMA_REVISION


def test_downgrade_to_base_leaves_only_an_empty_version_table(
    any_db_url: str,
) -> None:
    Store(any_db_url).close()
    engine = open_engine(any_db_url)

    downgrade_schema(engine, "base")

    assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    version = schema_version(engine)
    assert (version.stamped, version.revision) == (True, None)
    engine.dispose()


def _database_at_base(url: str) -> None:
    # A genuinely older schema: Alembic's own downgrade of a real database.
    engine = open_engine(url)
    upgrade_schema(engine)
    downgrade_schema(engine, "base")
    engine.dispose()


def test_a_sqlite_database_behind_upgrades_itself(sqlite_url: str) -> None:
    _database_at_base(sqlite_url)

    with Store(sqlite_url) as store:
        revision = store.schema_revision()
        outcome = store.record_session(build_session(1))
        runs = store.runs("e2e-gate")

    assert revision == rows.SCHEMA_REVISION
    assert outcome.stored
    assert [run.id for run in runs] == [outcome.run_id]


@pytest.mark.postgresql
def test_a_shared_database_behind_names_the_upgrade_command(pg_url: str) -> None:
    """The message gives the exact command, with the URL's password hidden."""
    url = sa.engine.make_url(pg_url).set(password="s3cret-pw")
    with_password = url.render_as_string(hide_password=False)
    _database_at_base(with_password)

    with pytest.raises(SchemaOutdatedError) as caught:
        Store(with_password)

    hidden = url.render_as_string(hide_password=True)
    assert f"`gate-tracker --db {hidden} db upgrade`" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    engine = open_engine(pg_url)
    assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()


def _stamp(url: str, revision: str) -> None:
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
        )
    engine.dispose()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sqlite_database_newer_than_the_code_is_never_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gate.db"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        store.record_session(build_session(1))
    _stamp(url, FUTURE_REVISION)
    before = _digest(path)

    with pytest.raises(SchemaTooNewError, match=FUTURE_REVISION):
        Store(url)

    assert _digest(path) == before


@pytest.mark.postgresql
def test_a_postgresql_database_newer_than_the_code_is_never_written(
    pg_url: str,
) -> None:
    with Store(pg_url) as store:
        store.record_session(build_session(1))
    _stamp(pg_url, FUTURE_REVISION)

    with pytest.raises(SchemaTooNewError, match="newer gate-tracker"):
        Store(pg_url)

    engine = open_engine(pg_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM gate_runs")).scalar()
    assert runs == 1
    assert schema_version(engine).revision == FUTURE_REVISION
    engine.dispose()


def test_upgrading_twice_changes_nothing_the_second_time(any_db_url: str) -> None:
    engine = open_engine(any_db_url)
    upgrade_schema(engine)
    first = _snapshot(any_db_url)

    upgrade_schema(engine)

    assert _snapshot(any_db_url) == first
    assert schema_version(engine).revision == rows.SCHEMA_REVISION
    engine.dispose()


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_built_wheel_ships_migrations_that_run_without_alembic_ini(
    tmp_path: Path,
) -> None:
    """Install the wheel alone, then upgrade a database from an empty directory."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "gate_tracker", source / "gate_tracker", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "-w", str(tmp_path / "dist"), str(source)], check=True)
    wheel = next((tmp_path / "dist").glob("gate_tracker-*.whl"))
    target = tmp_path / "installed"
    install = [*pip, "install", "--no-deps", "--no-index", "--target", str(target)]
    subprocess.run([*install, str(wheel)], check=True)
    workdir = tmp_path / "empty"
    workdir.mkdir()

    script = (
        "import gate_tracker, sys\n"
        "from gate_tracker.migrations import upgrade_schema\n"
        "from gate_tracker.database import open_engine, schema_version\n"
        "engine = open_engine('sqlite:///gate.db')\n"
        "upgrade_schema(engine)\n"
        "print(gate_tracker.__file__)\n"
        "print(schema_version(engine).revision)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    where, revision = done.stdout.split()
    assert Path(where).is_relative_to(target)
    assert revision == rows.SCHEMA_REVISION
    assert sorted(p.name for p in workdir.iterdir()) == ["gate.db"]


def test_opening_a_current_database_never_imports_alembic(tmp_path: Path) -> None:
    """The fast path: plain SQL reads the version; Alembic loads only to upgrade."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    Store(url).close()
    script = (
        "import sys\n"
        "from gate_tracker.storage import Store\n"
        f"Store({url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "[]"
