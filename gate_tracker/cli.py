"""The ``gate-tracker`` command line.

Each command lives in a ``commands_*`` module, named in ``_COMMANDS`` below
and imported only when used. Errors of gate-tracker's own are caught here
once, printed without a traceback, and turned into ``EXIT_ERROR``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gate_tracker import __version__
from gate_tracker.config import Settings, database_url, load_settings
from gate_tracker.exceptions import GateTrackerError
from gate_tracker.logs import TRUSTED, configure_logging

if TYPE_CHECKING:
    from gate_tracker.storage import Store

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

    def open_store(self, *, create: bool = False) -> Store:
        """Open the database; only commands that write pass ``create=True``.

        Reading commands never create a database, so a mistyped ``--db``
        leaves no file behind.
        """
        from gate_tracker.storage import Store

        return Store(self.db_url, create=create)


_COMMANDS = {
    "status": "gate_tracker.commands_status:status",
    "runs": "gate_tracker.commands_status:runs",
    "collect": "gate_tracker.commands_collect:collect_group",
    "flaky": "gate_tracker.commands_flaky:flaky",
    "report": "gate_tracker.commands_report:report",
    "metrics": "gate_tracker.commands_metrics:metrics",
    "db": "gate_tracker.commands_db:db_group",
    "prune": "gate_tracker.commands_prune:prune",
}
_IMPORT_COMMANDS = {
    "record": "gate_tracker.commands_records:import_record",
    "junit": "gate_tracker.commands_junit:import_junit",
}


class _Group(click.Group):
    """A group that loads its commands on first use and reports errors.

    Commands are named in ``lazy_commands`` as ``module:attribute`` and
    imported only when run or listed, so ``gate-tracker status`` never pays
    for the collector's or the report's libraries. Gate-tracker errors become
    a message on stderr and exit status 2.
    """

    def __init__(
        self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command: click.Command = getattr(
            importlib.import_module(module_name), attribute
        )
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GateTrackerError as err:
            _report_error(err)
            sys.exit(EXIT_ERROR)


def _report_error(err: GateTrackerError) -> None:
    # Through the log handler, so --log-format json gives a JSON line too.
    logger = logging.getLogger("gate_tracker")
    if logger.handlers:
        logger.error("%s", err, extra={TRUSTED: True})
    else:
        click.echo(f"gate-tracker: error: {err}", err=True)


@click.group(
    cls=_Group,
    lazy_commands=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


@main.group("import", cls=_Group, lazy_commands=_IMPORT_COMMANDS)
def import_group() -> None:
    """Load runs recorded elsewhere: JSON records, JUnit XML."""
