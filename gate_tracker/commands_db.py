"""``gate-tracker db``: see and apply the database schema's migrations."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from gate_tracker import rows
from gate_tracker.cli import EXIT_NOT_MET, Context
from gate_tracker.config import display_url
from gate_tracker.database import (
    open_engine,
    schema_version,
    upgrade_command,
)
from gate_tracker.exceptions import SchemaTooNewError, StorageError
from gate_tracker.migrations import SchemaVersion, known_revisions


@click.group("db")
def db_group() -> None:
    """Manage the database schema (Alembic migrations shipped with gate-tracker)."""


@db_group.command("upgrade")
@click.pass_obj
def upgrade(ctx: Context) -> None:
    """Bring the database schema up to this gate-tracker's revision.

    An empty database gets the whole schema. Run it once after upgrading
    gate-tracker on a shared database; a SQLite file upgrades itself.
    """
    from gate_tracker.migrations import upgrade_schema

    shown = display_url(ctx.db_url)
    with _engine(ctx.db_url) as engine:
        before = schema_version(engine)
        _refuse_newer(before, shown)
        if before.revision == rows.SCHEMA_REVISION:
            click.echo(f"{shown} is already at revision {rows.SCHEMA_REVISION}")
            return

        with _translated("upgrade", shown):
            upgrade_schema(engine)

    click.echo(f"upgraded {shown} from {_describe(before)} to {rows.SCHEMA_REVISION}")


@db_group.command("current")
@click.pass_obj
def current(ctx: Context) -> None:
    """Show the database's schema revision beside this gate-tracker's.

    Exits 0 when they match and 1 when the database is empty, behind, or
    newer than this gate-tracker.
    """
    shown = display_url(ctx.db_url)
    if _missing_sqlite_file(ctx.db_url):
        # Connecting would create the file; a question should change nothing.
        version = SchemaVersion(stamped=False, revision=None)
    else:
        with _engine(ctx.db_url) as engine:
            version = schema_version(engine)

    click.echo(f"database: {shown}")
    click.echo(f"revision: {_describe(version)}")
    click.echo(f"this gate-tracker: {rows.SCHEMA_REVISION}")
    state = _state(version, ctx.db_url)
    click.echo(state)
    if version.revision != rows.SCHEMA_REVISION:
        sys.exit(EXIT_NOT_MET)


def _state(version: SchemaVersion, url: str) -> str:
    if version.revision == rows.SCHEMA_REVISION:
        return "up to date"
    if not version.stamped:
        return "empty: the first command that writes creates the schema"
    if version.revision is not None and version.revision not in known_revisions():
        return "newer than this gate-tracker: upgrade gate-tracker to use it"
    return f"behind: run `{upgrade_command(url)}`"


def _describe(version: SchemaVersion) -> str:
    if not version.stamped:
        return "none (empty database)"
    return version.revision or "base (no tables)"


def _refuse_newer(version: SchemaVersion, shown: str) -> None:
    if version.revision is None or version.revision in known_revisions():
        return
    raise SchemaTooNewError(
        f"the database {shown} has schema revision {version.revision}, written "
        f"by a newer gate-tracker (this one knows up to {rows.SCHEMA_REVISION}); "
        "it was left untouched. Upgrade gate-tracker instead"
    )


def _missing_sqlite_file(url: str) -> bool:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database not in ("", ":memory:") and not Path(database).exists()


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _translated(action: str, shown: str) -> Iterator[None]:
    from alembic.util import CommandError

    try:
        yield
    except (SQLAlchemyError, CommandError) as err:
        raise StorageError(
            f"could not {action} the database {shown}: {err}. Nothing was "
            "changed: the upgrade runs in one transaction"
        ) from err
