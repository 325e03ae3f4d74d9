"""The ``gate-tracker`` command line.

Each command lives in a ``commands_*`` module and is attached to the ``main``
group at the bottom of this file. Errors of gate-tracker's own are caught here
once, printed without a traceback, and turned into ``EXIT_ERROR``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from gate_tracker import __version__
from gate_tracker.config import Settings, database_url, load_settings
from gate_tracker.exceptions import GateTrackerError
from gate_tracker.logs import configure_logging

EXIT_OK = 0
EXIT_NOT_MET = 1
EXIT_ERROR = 2


@dataclass
class Context:
    """What every command gets: the settings and the chosen database URL."""

    settings: Settings
    db_option: str | None

    @property
    def db_url(self) -> str:
        return database_url(self.db_option, self.settings)

    def open_store(self, *, create: bool = True):  # type: ignore[no-untyped-def]
        from gate_tracker.storage import Store

        return Store(self.db_url, create=create)


class _Group(click.Group):
    """A group that turns gate-tracker errors into a message and exit 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GateTrackerError as err:
            click.echo(f"gate-tracker: error: {err}", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gate-tracker")
@click.option(
    "--db",
    "db",
    metavar="URL",
    help="SQLAlchemy database URL. Default: $GATE_TRACKER_DB, then "
    "[tool.gate-tracker] db, then .gate-tracker/gate.db.",
)
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="GATE_TRACKER_LOG_FORMAT",
    default="text",
    show_default=True,
    help="Log lines for people, or one JSON object per line for CI.",
)
@click.pass_context
def main(
    ctx: click.Context, db: str | None, verbose: int, quiet: int, log_format: str
) -> None:
    """Track an end-to-end release gate: record runs, check the objective."""
    configure_logging(verbosity=verbose - quiet, fmt=log_format)
    ctx.obj = Context(settings=load_settings(Path.cwd()), db_option=db)


@main.group("import")
def import_group() -> None:
    """Load runs recorded elsewhere: JSON records, JUnit XML."""


def _attach_commands() -> None:
    from gate_tracker import commands_records, commands_status

    main.add_command(commands_status.status)
    main.add_command(commands_status.runs)
    import_group.add_command(commands_records.import_record)

    from gate_tracker import commands_junit

    import_group.add_command(commands_junit.import_junit)

    from gate_tracker import commands_db

    main.add_command(commands_db.db_group)

    from gate_tracker import commands_prune

    main.add_command(commands_prune.prune)

    from gate_tracker import commands_flaky

    main.add_command(commands_flaky.flaky)

    from gate_tracker import commands_metrics, commands_report

    main.add_command(commands_report.report)
    main.add_command(commands_metrics.metrics)

    from gate_tracker import commands_collect

    main.add_command(commands_collect.collect_group)


_attach_commands()
