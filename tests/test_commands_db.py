"""``gate-tracker db upgrade`` and ``db current`` on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from gate_tracker import rows, schema
from gate_tracker.cli import main
from gate_tracker.database import open_engine, schema_version
from gate_tracker.migrations import downgrade_schema, upgrade_schema
from gate_tracker.storage import Store
from tests.conftest import build_session


@pytest.fixture(autouse=True)
def _empty_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No alembic.ini and no pyproject.toml: the commands must need neither.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("GATE_TRACKER_DB", raising=False)


def _run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, "db", *args])


def _revision(url: str) -> str | None:
    engine = open_engine(url)
    try:
        return schema_version(engine).revision
    finally:
        engine.dispose()


def _at_base(url: str) -> None:
    engine = open_engine(url)
    upgrade_schema(engine)
    downgrade_schema(engine, "base")
    engine.dispose()


def test_upgrade_creates_the_whole_schema_in_an_empty_database(
    any_db_url: str,
) -> None:
    result = _run(any_db_url, "upgrade")

    assert result.exit_code == 0, result.output
    assert "from none (empty database) to 0001" in result.output
    assert _revision(any_db_url) == rows.SCHEMA_REVISION
    engine = open_engine(any_db_url)
    assert set(sa.inspect(engine).get_table_names()) >= set(schema.metadata.tables)
    engine.dispose()


def test_upgrade_brings_a_database_at_base_to_the_head(any_db_url: str) -> None:
    _at_base(any_db_url)

    result = _run(any_db_url, "upgrade")

    assert result.exit_code == 0, result.output
    assert "from base (no tables) to 0001" in result.output
    with Store(any_db_url) as store:
        store.record_session(build_session(1))
        assert len(store.runs("e2e-gate")) == 1


def test_upgrade_of_a_current_database_keeps_its_runs(any_db_url: str) -> None:
    with Store(any_db_url) as store:
        store.record_session(build_session(1))

    result = _run(any_db_url, "upgrade")

    assert result.exit_code == 0, result.output
    assert "is already at revision 0001" in result.output
    with Store(any_db_url) as store:
        assert len(store.runs("e2e-gate")) == 1


def test_upgrade_refuses_a_database_newer_than_the_code(any_db_url: str) -> None:
    Store(any_db_url).close()
    engine = open_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()

    result = _run(any_db_url, "upgrade")

    assert result.exit_code == 2
    assert "schema revision 0999, written by a newer gate-tracker" in result.output
    assert _revision(any_db_url) == "0999"


def test_current_says_up_to_date_and_exits_zero(any_db_url: str) -> None:
    Store(any_db_url).close()

    result = _run(any_db_url, "current")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "revision: 0001",
        "this gate-tracker: 0001",
        "up to date",
    ]


def test_current_names_the_upgrade_command_when_behind(any_db_url: str) -> None:
    _at_base(any_db_url)

    result = _run(any_db_url, "current")

    assert result.exit_code == 1
    assert "revision: base (no tables)" in result.output
    assert "behind: run `gate-tracker --db " in result.output
    assert " db upgrade`" in result.output


def test_current_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "gate.db"

    result = _run(f"sqlite:///{path}", "current")

    assert result.exit_code == 1
    assert "revision: none (empty database)" in result.output
    assert not path.parent.exists()


@pytest.mark.postgresql
def test_current_hides_the_database_password(pg_url: str) -> None:
    url = sa.engine.make_url(pg_url).set(password="hunter2-pw")
    Store(pg_url).close()

    result = _run(url.render_as_string(hide_password=False), "current")

    assert result.exit_code == 0, result.output
    assert "hunter2-pw" not in result.output
    assert f"database: {url.render_as_string(hide_password=True)}" in result.output


def test_current_on_an_unreachable_server_is_a_clear_error() -> None:
    url = "postgresql+psycopg://postgres:pw-unseen@127.0.0.1:9/none"

    result = _run(url, "current")

    assert result.exit_code == 2
    assert "could not open the database postgresql+psycopg://postgres:***@" in (
        result.output
    )
    assert "pw-unseen" not in result.output
