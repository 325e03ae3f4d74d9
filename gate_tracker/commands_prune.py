"""``gate-tracker prune``: delete runs older than a number of days."""

from __future__ import annotations

import click

from gate_tracker.cli import Context
from gate_tracker.retention import Pruned, cutoff_for, prune_runs


@click.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Delete runs that started more than DAYS days ago.",
)
@click.option("--gate", metavar="NAME", help="Prune only this gate's runs.")
@click.option(
    "--repo",
    "repository",
    metavar="OWNER/NAME",
    help="Prune only this repository's runs.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be deleted; delete nothing."
)
@click.pass_obj
def prune(
    ctx: Context, days: int, gate: str | None, repository: str | None, dry_run: bool
) -> None:
    """Delete old runs with their sessions and test results.

    Runs are deleted in small batches, each in its own transaction, so
    recording goes on meanwhile; runs newer than the cut-off are untouched.
    """
    cutoff = cutoff_for(days)
    with ctx.open_store(create=False) as store:
        pruned = prune_runs(
            store, cutoff, gate=gate, repository=repository, dry_run=dry_run
        )
    click.echo(_summary(pruned, days))


def _summary(pruned: Pruned, days: int) -> str:
    verb = "would delete" if pruned.dry_run else "deleted"
    when = pruned.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{verb} {_count(pruned.runs, 'run')} started before {when} "
        f"({days} days ago): {_count(pruned.sessions, 'session')}, "
        f"{_count(pruned.tests, 'test result')}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
