"""``gate-tracker metrics``: OpenMetrics text of every gate, for Prometheus."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import click

from gate_tracker.cli import Context
from gate_tracker.commands_status import Scope, load_objective, resolve_scope
from gate_tracker.exceptions import ConfigurationError, StorageError
from gate_tracker.objective import ANY_BRANCH
from gate_tracker.storage import Store

# resolve_scope looks a missing repository up; a placeholder skips that, and
# the real one (possibly "" for runs outside CI) replaces it afterwards.
_GIVEN = "given"


@click.command()
@click.option(
    "--gate",
    metavar="NAME",
    help="Only this gate. Default: every gate stored, in each of its repositories.",
)
@click.option(
    "--repo",
    "repository",
    metavar="OWNER/NAME",
    help="Only this repository.",
)
@click.option(
    "--branch",
    metavar="BRANCH",
    help=f"Branch in scope, as for status (default main; '{ANY_BRANCH}' for any).",
)
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="EVENT",
    help="Event in scope, repeatable, as for status.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE, replaced whole (fit for node_exporter's textfile "
    "collector), instead of standard output.",
)
@click.pass_obj
def metrics(
    ctx: Context,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
    out: Path | None,
) -> None:
    """Print OpenMetrics text: streaks, runs by verdict, pass rate, flaky tests.

    Every sample is labelled with gate and repository; docs/report.md lists
    the metric names and alert rules that use them.
    """
    # prometheus_client and the analysis load only when metrics are made.
    from gate_tracker.metrics import gate_metrics, render_metrics

    now = datetime.now(timezone.utc)
    with ctx.open_store() as store:
        gathered = [
            gate_metrics(store, load_objective(store, scope), ctx.settings, now=now)
            for scope in _scopes(ctx, store, gate, repository, branch, events)
        ]

    text = render_metrics(gathered)
    if out is None:
        click.echo(text.decode("utf-8"), nl=False)
        return
    _replace(out, text)


def _scopes(
    ctx: Context,
    store: Store,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
) -> list[Scope]:
    pairs = [
        (name, repo)
        for name, repo in store.gates()
        if (gate is None or name == gate) and (repository is None or repo == repository)
    ]
    if not pairs and (gate is not None or repository is not None):
        wanted = " in ".join(filter(None, (gate, repository)))
        raise ConfigurationError(
            f"no runs of {wanted} are stored in {store.shown_url}; "
            "`gate-tracker runs` lists what is there"
        )

    scopes = []
    for name, repo in pairs:
        scope = resolve_scope(
            ctx,
            store,
            gate=name,
            repository=_GIVEN,
            branch=branch,
            events=events,
        )
        scopes.append(dataclasses.replace(scope, repository=repo))
    return scopes


def _replace(path: Path, data: bytes) -> None:
    # A scraper reading the file mid-write would see half an exposition: write
    # a temporary file beside it and rename it over the old one.
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private; a scraper runs as another user.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as err:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise StorageError(
            f"cannot write the metrics file {path}: {err.strerror or err}. "
            "Check that its folder exists and is writable"
        ) from err
