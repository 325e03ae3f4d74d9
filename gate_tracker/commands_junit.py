"""``gate-tracker import junit``: load JUnit XML reports from any framework."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa

from gate_tracker.cli import EXIT_ERROR, Context
from gate_tracker.config import ENV_GATE
from gate_tracker.exceptions import ConfigurationError, InputError
from gate_tracker.junit import parse_timestamp, read_junit_path, session_from_junit
from gate_tracker.records import LOCAL_EVENT, OUTCOMES, CIContext, SessionRecord
from gate_tracker.schema import gate_runs, gate_sessions
from gate_tracker.storage import Store

log = logging.getLogger(__name__)

CI_PROVIDER = "github-actions"
CI_DEFAULT_EVENT = "push"
PLUGIN_SOURCE = "plugin"
_SERVER_URL_ENV = "GITHUB_SERVER_URL"
_DEFAULT_SERVER_URL = "https://github.com"
_SHARD_LIMIT = 100
"""The width of ``gate_sessions.shard``."""


@click.command("junit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--gate",
    metavar="NAME",
    help=f"Gate the runs belong to. Default: ${ENV_GATE}, then "
    "[tool.gate-tracker] gate.",
)
@click.option("--commit", metavar="SHA", help="Commit the tests ran on.")
@click.option("--branch", metavar="BRANCH", help="Branch the tests ran on.")
@click.option(
    "--event",
    metavar="EVENT",
    help=f"What started the run (push, schedule, ...). Default: {LOCAL_EVENT!r}, "
    f"or {CI_DEFAULT_EVENT!r} with --run-id.",
)
@click.option(
    "--started-at",
    metavar="TIME",
    help="When the run started (ISO 8601, or epoch seconds or milliseconds). "
    "Default: the earliest suite timestamp, else now.",
)
@click.option(
    "--run-id",
    metavar="ID",
    help="GitHub Actions run id: the reports join that run's other data.",
)
@click.option(
    "--run-attempt",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Attempt of the run, with --run-id.",
)
@click.option(
    "--repo",
    "repository",
    metavar="OWNER/NAME",
    help="Repository of the run, with --run-id. Default: [tool.gate-tracker] repo.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Store nothing when any path cannot be read.",
)
@click.pass_obj
def import_junit(
    ctx: Context,
    paths: tuple[Path, ...],
    gate: str | None,
    commit: str | None,
    branch: str | None,
    event: str | None,
    started_at: str | None,
    run_id: str | None,
    run_attempt: int,
    repository: str | None,
    strict: bool,
) -> None:
    """Load JUnit XML reports written by any test framework.

    Each PATH, a file or a directory of *.xml files, is one gate run. With
    --run-id it is a shard of that GitHub Actions run, named after the PATH,
    and joins the run's collected data. Importing a report twice stores it
    once. A broken file is reported, nothing of it is stored, and the other
    paths still load unless --strict. Exit 2 when any path failed.
    """
    gate = _gate(ctx, gate)
    ci = _ci_context(ctx, run_id, run_attempt, repository, event)
    start = _started_at(started_at)
    chosen_event = event or (CI_DEFAULT_EVENT if ci else LOCAL_EVENT)

    sessions: list[tuple[Path, SessionRecord]] = []
    failures = 0
    for path, shard in zip(paths, _shards(paths, ci), strict=True):
        try:
            source = read_junit_path(path)
            session, warnings = session_from_junit(
                source.documents,
                gate=gate,
                commit=commit,
                branch=branch,
                event=chosen_event,
                started_at=start,
                ci=ci,
                shard=shard,
            )
        except InputError as err:
            click.echo(f"gate-tracker: error: {err}", err=True)
            failures += 1
            continue
        for warning in warnings:
            log.warning("%s", warning)
        sessions.append((path, session))

    if strict and failures:
        click.echo(
            f"gate-tracker: error: nothing stored: {failures} of {len(paths)} "
            "paths could not be read (--strict)",
            err=True,
        )
        sys.exit(EXIT_ERROR)

    with ctx.open_store(create=True) as store:
        for path, session in sessions:
            click.echo(f"{path}: {_store(store, session)}")

    if failures:
        sys.exit(EXIT_ERROR)


def _gate(ctx: Context, option: str | None) -> str:
    gate = option or os.environ.get(ENV_GATE) or ctx.settings.string("gate")
    if not gate:
        raise ConfigurationError(
            "no gate given: pass --gate NAME, or set gate in [tool.gate-tracker]"
        )
    return gate


def _ci_context(
    ctx: Context,
    run_id: str | None,
    run_attempt: int,
    repository: str | None,
    event: str | None,
) -> CIContext | None:
    if run_id is None:
        if repository:
            raise click.UsageError("--repo only applies with --run-id")
        return None

    repository = repository or ctx.settings.string("repo")
    if not repository:
        raise click.UsageError(
            "--run-id needs the repository: pass --repo OWNER/NAME, or set "
            "repo in [tool.gate-tracker]"
        )
    server = os.environ.get(_SERVER_URL_ENV, _DEFAULT_SERVER_URL).rstrip("/")
    return CIContext(
        provider=CI_PROVIDER,
        repository=repository,
        run_id=run_id,
        run_attempt=run_attempt,
        event=event or CI_DEFAULT_EVENT,
        url=f"{server}/{repository}/actions/runs/{run_id}/attempts/{run_attempt}",
    )


def _shards(paths: tuple[Path, ...], ci: CIContext | None) -> list[str]:
    """Each path's shard name: its own name in a CI run, none otherwise."""
    if ci is None:
        return [""] * len(paths)

    names = [(path.name or path.resolve().name)[:_SHARD_LIMIT] for path in paths]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise click.UsageError(
            "with --run-id each path is a shard named after it, and "
            f"{', '.join(repeated)} names more than one path: pass the folders "
            "that hold them instead, or rename them"
        )
    return names


def _started_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = parse_timestamp(value)
    if moment is None:
        raise click.BadParameter(
            f"{value!r} is not a time: give ISO 8601 (2026-12-03T09:30:00Z) "
            "or epoch seconds",
            param_hint="--started-at",
        )
    return moment


def _store(store: Store, session: SessionRecord) -> str:
    """Store one session in its own transaction; say what happened."""
    with store.writing() as conn:
        if session.ci is not None:
            others = _other_shards(conn, session)
            if any(record_id == session.record_id for _, record_id in others):
                return "already stored, as another shard of this run"
            if any(source == PLUGIN_SOURCE for source, _ in others):
                # The plugin's records of the same tests are richer; storing
                # both would count every test twice.
                return "not stored: the plugin's records of this run are stored"
        outcome = store.store_session(conn, session)

    if not outcome.stored:
        return f"already stored in run {outcome.run_id}"
    return (
        f"{session.gate} {session.verdict}, {_counts(session)}, "
        f"stored as run {outcome.run_id}"
    )


def _other_shards(conn: sa.Connection, session: SessionRecord) -> list[tuple[str, str]]:
    """Source and record id of the run's other shards already stored."""
    rows = conn.execute(
        sa.select(gate_sessions.c.source, gate_sessions.c.record_id)
        .join(gate_runs, gate_runs.c.id == gate_sessions.c.run_id)
        .where(
            gate_runs.c.gate == session.gate,
            gate_runs.c.repository == session.repository,
            gate_runs.c.run_key == session.run_key,
            gate_sessions.c.shard != session.shard,
        )
    )
    return [(row.source, row.record_id) for row in rows]


def _counts(session: SessionRecord) -> str:
    counts = session.counts()
    parts = [f"{counts[outcome]} {outcome}" for outcome in OUTCOMES if counts[outcome]]
    if counts["rerun"]:
        parts.append(f"{counts['rerun']} rerun")
    total = f"{len(session.tests)} tests"
    return f"{total} ({', '.join(parts)})" if parts else total
