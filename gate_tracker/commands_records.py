"""``gate-tracker import record``: load JSON records into the database."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gate_tracker.cli import EXIT_ERROR, Context
from gate_tracker.exceptions import InputError
from gate_tracker.record_file import read_record


@click.command("record")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--delete-imported",
    is_flag=True,
    help="Delete each file once it is stored (for pending records).",
)
@click.pass_obj
def import_record(ctx: Context, paths: tuple[Path, ...], delete_imported: bool) -> None:
    """Load JSON records (pending files, CI artifacts) written by the plugin.

    A directory stands for every *.json file in it. Importing a record twice
    stores it once. Each record is stored in its own transaction; a broken
    file is reported and the others still load. Exit 2 when any file failed.
    """
    files = _expand(paths)
    failures = 0
    with ctx.open_store(create=True) as store:
        for path in files:
            try:
                session = read_record(path)
            except InputError as err:
                click.echo(f"gate-tracker: error: {err}", err=True)
                failures += 1
                continue

            outcome = store.record_session(session)
            state = "stored as" if outcome.stored else "already stored in"
            click.echo(
                f"{path}: {session.gate} {session.verdict}, "
                f"{len(session.tests)} test{'' if len(session.tests) == 1 else 's'}, "
                f"{state} run {outcome.run_id}"
            )
            if delete_imported:
                path.unlink()

    if failures:
        sys.exit(EXIT_ERROR)


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files
