"""``gate-tracker collect github``: bring a gate's GitHub Actions history in."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from gate_tracker.artifacts import DEFAULT_ARTIFACTS
from gate_tracker.ci_attempts import DEFAULT_TIMEOUT_MINUTES
from gate_tracker.cli import Context
from gate_tracker.collection import (
    DEFAULT_HISTORY_DAYS,
    DEFAULT_REVISIT_DAYS,
    CollectionInterrupted,
    CollectOptions,
    CollectProgress,
    CollectResult,
    collect_github,
)
from gate_tracker.config import DEFAULT_BRANCH, DEFAULT_EVENTS, Settings
from gate_tracker.exceptions import ConfigurationError
from gate_tracker.github_client import (
    DEFAULT_BASE_URL,
    ClientLimits,
    GitHubClient,
    token_from_environment,
)

ANY = "*"
DEFAULT_MAX_WAIT_S = 300.0
DEFAULT_INTERVAL_S = 0.1
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_PLAIN_EVERY = 100
"""Plain progress prints a line every this many runs listed."""


@click.group("collect")
def collect_group() -> None:
    """Bring a gate's history from CI into the database."""


@collect_group.command("github")
@click.option(
    "--repo",
    "repository",
    metavar="OWNER/NAME",
    help="Repository. Default: setting repo, then $GITHUB_REPOSITORY.",
)
@click.option(
    "--job",
    metavar="NAME",
    help="The gate job's name (the last '/' part; matrix shards count). "
    "Default: setting job, then the gate.",
)
@click.option(
    "--workflow",
    metavar="FILE|ID|NAME",
    help="Only this workflow's runs (recommended). Default: setting workflow.",
)
@click.option(
    "--gate", metavar="NAME", help="Gate to store runs under. Default: setting gate."
)
@click.option(
    "--branch",
    metavar="BRANCH",
    help=f"Branch (default: setting branch, then {DEFAULT_BRANCH}; '{ANY}' for any).",
)
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="EVENT",
    help="Triggering event, repeatable (default: setting events, then "
    + ", ".join(DEFAULT_EVENTS)
    + f"; '{ANY}' for any).",
)
@click.option("--since", metavar="DATE", help="Collect runs created since DATE.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help=f"Collect the last N days (a first sync defaults to {DEFAULT_HISTORY_DAYS}).",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="REST root; https://HOST/api/v3 for GitHub Enterprise Server. Default: "
    f"setting base_url, then $GITHUB_API_URL, then {DEFAULT_BASE_URL}.",
)
@click.option(
    "--artifacts",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Artifact names to read per-test data from, repeatable (default: "
    "setting artifacts, then " + ", ".join(DEFAULT_ARTIFACTS) + ").",
)
@click.option("--no-artifacts", is_flag=True, help="Read no artifacts at all.")
@click.option(
    "--timeout-minutes",
    type=click.IntRange(min=1),
    help="The gate job's timeout-minutes: a job cancelled near it timed out "
    f"(default: setting timeout_minutes, then {DEFAULT_TIMEOUT_MINUTES}).",
)
@click.option(
    "--revisit-days",
    type=click.IntRange(min=1),
    help="List this many recent days again for re-runs and runs in progress "
    f"(default: setting revisit_days, then {DEFAULT_REVISIT_DAYS}).",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Longest wait for a rate limit; past it, stop and say when to resume "
    f"(default: setting max_wait, then {DEFAULT_MAX_WAIT_S:.0f}).",
)
@click.option(
    "--request-interval",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Pause between requests, which keeps GitHub's secondary rate limits "
    f"away (default: setting request_interval, then {DEFAULT_INTERVAL_S}).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar (default on a terminal outside CI), else plain lines.",
)
@click.pass_obj
def github(ctx: Context, /, **given: Any) -> None:
    """Collect the gate job's runs from GitHub Actions: every attempt of every
    run, with per-test data from the runs' artifacts.

    The token comes from GITHUB_TOKEN or GH_TOKEN and needs actions: read. A
    second collect fetches only what changed. Settings in [tool.gate-tracker]
    give the defaults: repo, job, workflow, gate, branch, events, artifacts,
    base_url, timeout_minutes, revisit_days, max_wait, request_interval.
    """
    _route_pygithub_logs()
    options = collect_options(ctx.settings, given, os.environ)
    token = token_from_environment(os.environ)
    base_url = _base_url(ctx.settings, given["base_url"], os.environ)
    limits = ClientLimits(
        max_wait_s=_seconds(ctx.settings, "max_wait", given, DEFAULT_MAX_WAIT_S),
        seconds_between_requests=_seconds(
            ctx.settings, "request_interval", given, DEFAULT_INTERVAL_S
        ),
    )

    with (
        ctx.open_store(create=True) as store,
        GitHubClient(
            options.repository, token, base_url=base_url, limits=limits
        ) as client,
        _progress_reporter(given["progress"]) as report,
    ):
        try:
            result = collect_github(store, client, options, progress=report)
        except CollectionInterrupted as err:
            click.echo(summary(options, err.result, stopped=True))
            raise
    click.echo(summary(options, result))


def collect_options(
    settings: Settings, given: Mapping[str, Any], environ: Mapping[str, str]
) -> CollectOptions:
    """The collect options from command-line values, settings and environment."""
    repository = (
        given.get("repository")
        or settings.string("repo")
        or environ.get("GITHUB_REPOSITORY")
    )
    if not repository:
        raise ConfigurationError(
            "no repository: give --repo OWNER/NAME or set repo in [tool.gate-tracker]"
        )
    if not _REPOSITORY.fullmatch(repository):
        raise ConfigurationError(
            f"--repo must be OWNER/NAME, like acme/shop, not {repository!r}"
        )

    gate = given.get("gate") or settings.string("gate")
    job = given.get("job") or settings.string("job") or gate
    if not job:
        raise ConfigurationError(
            "no gate job: give --job NAME (the CI job that runs the gate) or set "
            "job in [tool.gate-tracker]"
        )
    return CollectOptions(
        repository=repository,
        job=job,
        gate=gate or job,
        workflow=given.get("workflow") or settings.string("workflow"),
        branch=_branch(given.get("branch") or settings.string("branch")),
        events=_events(given.get("events") or settings.strings("events", ())),
        since=_since(given.get("since"), given.get("days")),
        artifacts=_artifacts(settings, given),
        timeout_minutes=given.get("timeout_minutes")
        or settings.integer("timeout_minutes", DEFAULT_TIMEOUT_MINUTES),
        revisit_days=given.get("revisit_days")
        or settings.integer("revisit_days", DEFAULT_REVISIT_DAYS),
    )


def summary(
    options: CollectOptions, result: CollectResult, *, stopped: bool = False
) -> str:
    """What a sync did, in a few lines for people."""
    head = "stopped early after" if stopped else "collected"
    lines = [
        f"{options.repository} {options.gate}: {head} {_n(result.runs, 'run')} "
        f"listed; {_n(result.attempts_stored, 'gate run')} stored, "
        f"{result.attempts_known} already stored, {result.pending} in progress",
        f"  {_n(result.artifacts, 'artifact')} read, "
        f"{result.artifacts_missing} expired or missing; "
        f"{_n(result.sessions, 'session')} with per-test data, "
        f"{_n(result.without_test_data, 'gate run')} without",
    ]
    if result.covered_from and result.covered_to:
        lines.append(
            f"  history complete from {result.covered_from:%Y-%m-%d %H:%M} to "
            f"{result.covered_to:%Y-%m-%d %H:%M} UTC"
        )
    return "\n".join(lines)


def _branch(value: str | None) -> str | None:
    branch = value or DEFAULT_BRANCH
    return None if branch == ANY else branch


def _events(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    events = tuple(values) or DEFAULT_EVENTS
    return () if ANY in events else events


def _since(text: str | None, days: int | None) -> datetime | None:
    if text and days:
        raise ConfigurationError("give --since or --days, not both")
    if days:
        return datetime.now(timezone.utc) - timedelta(days=days)
    if not text:
        return None

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise ConfigurationError(
            f"--since must be a date like 2026-11-01 or a time like "
            f"2026-11-01T09:00:00Z, not {text!r}"
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment > datetime.now(timezone.utc):
        raise ConfigurationError(f"--since {text} is in the future")
    return moment


def _artifacts(settings: Settings, given: Mapping[str, Any]) -> tuple[str, ...]:
    if given.get("no_artifacts"):
        return ()
    return tuple(given.get("patterns") or ()) or settings.strings(
        "artifacts", DEFAULT_ARTIFACTS
    )


def _base_url(settings: Settings, given: str | None, environ: Mapping[str, str]) -> str:
    url = given or settings.string("base_url") or environ.get("GITHUB_API_URL")
    url = url or DEFAULT_BASE_URL
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"--base-url must be an http(s) URL such as "
            f"https://github.example.com/api/v3, not {url!r}"
        )
    return url.rstrip("/")


def _seconds(
    settings: Settings, key: str, given: Mapping[str, Any], default: float
) -> float:
    if given.get(key) is not None:
        return float(given[key])
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(
            f"{settings.source}: [tool.gate-tracker] {key} must be a number of "
            f"seconds, not {value!r}"
        )
    return float(value)


def _route_pygithub_logs() -> None:
    """Send PyGithub's log records through gate-tracker's own handler.

    PyGithub installs a stderr handler at INFO level when imported
    (https://github.com/PyGithub/PyGithub/issues/3561), which would print
    its retry notes unredacted, unformatted and ignoring -q. Its records now
    follow -v and -q like ours, never down to DEBUG, where it logs every
    request and answer.
    """
    ours = logging.getLogger("gate_tracker")
    theirs = logging.getLogger("github")
    theirs.handlers = list(ours.handlers)
    theirs.setLevel(max(ours.getEffectiveLevel(), logging.INFO))
    theirs.propagate = False


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


# -- progress --------------------------------------------------------------------


@contextmanager
def _progress_reporter(
    wanted: bool | None,
) -> Iterator[Callable[[CollectProgress], None]]:
    """A progress callback: a rich bar on a terminal, plain lines elsewhere."""
    in_ci = os.environ.get("CI", "").lower() == "true"
    if wanted is None:
        wanted = sys.stderr.isatty() and not in_ci
    if not wanted:
        yield _PlainProgress()
        return

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("collecting"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} runs"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("runs", total=1, counts="")

    def report(update: CollectProgress) -> None:
        progress.update(
            task,
            completed=update.runs,
            total=max(update.runs_expected, 1),
            counts=f"{update.attempts:,} gate runs, {update.artifacts:,} artifacts",
        )

    with progress:
        yield report


class _PlainProgress:
    """Progress for CI logs: a line every hundred runs, or after 10 s quiet."""

    def __init__(self) -> None:
        self._next = _PLAIN_EVERY
        self._last = time.monotonic()

    def __call__(self, update: CollectProgress) -> None:
        if update.runs < self._next and time.monotonic() - self._last < 10:
            return
        self._next = (update.runs // _PLAIN_EVERY + 1) * _PLAIN_EVERY
        self._last = time.monotonic()
        click.echo(
            f"collect: {update.runs:,}/{update.runs_expected:,} runs looked at, "
            f"{update.attempts:,} gate runs found, "
            f"{update.artifacts:,} artifacts read",
            err=True,
        )
