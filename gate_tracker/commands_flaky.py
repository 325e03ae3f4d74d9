"""``gate-tracker flaky``: the flaky and broken tests of a gate, ranked by impact."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import click

from gate_tracker.cli import Context
from gate_tracker.commands_status import resolve_scope, scope_options
from gate_tracker.github_summaries import publish_flaky

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from gate_tracker.flakiness import FlakeAnalysis, FlakePolicy, TestFinding

_DURATION = re.compile(r"^\s*(\d+)\s*([dwh]?)\s*$")
_UNIT = {"d": timedelta(days=1), "w": timedelta(weeks=1), "h": timedelta(hours=1)}
_SIGNATURES_SHOWN = 5
_TEST_WIDTH = 40


def parse_duration(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """A span of time written ``30d``, ``2w`` or ``12h`` (a bare number is days).

    A click callback: a value that is not a positive span is a usage error.
    """
    if value is None:
        return None
    match = _DURATION.match(value)
    if match is None or int(match.group(1)) == 0:
        raise click.BadParameter(
            f"{value!r} is not a duration: write a positive number of days, "
            "weeks or hours, such as 30d, 2w or 12h",
            ctx=ctx,
            param=param,
        )
    return int(match.group(1)) * _UNIT[match.group(2) or "d"]


@click.command()
@scope_options
@click.option(
    "--window",
    callback=parse_duration,
    metavar="SPAN",
    help="How far back to look, e.g. 30d or 2w (default: flaky_window_days, 30).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the documented JSON object instead of tables.",
)
@click.option(
    "--github-summary/--no-github-summary",
    default=None,
    help="Write the job summary and a warning annotation per flaky test in "
    "GitHub Actions (default: when GITHUB_ACTIONS=true).",
)
@click.pass_obj
def flaky(
    ctx: Context,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
    window: timedelta | None,
    as_json: bool,
    github_summary: bool | None,
) -> None:
    """List flaky tests with their evidence, and broken tests apart.

    Tests are ranked by their cost to the objective: the trials they kept
    from being clean passes. Always exits 0 when the analysis ran.
    """
    # The analysis needs scipy: import it only when this command runs.
    from gate_tracker.flakiness import FlakePolicy, analyze
    from gate_tracker.history import HistoryScope, load_history

    policy = FlakePolicy.from_settings(ctx.settings)
    if window is not None:
        policy = _with_window(policy, window)
    until = datetime.now(timezone.utc)

    with ctx.open_store() as store:
        scope = resolve_scope(
            ctx, store, gate=gate, repository=repository, branch=branch, events=events
        )
        history_scope = HistoryScope(
            gate=scope.gate,
            repository=scope.repository,
            branch=scope.policy.branch,
            events=scope.policy.events,
        )
        since = until - (window or timedelta(days=policy.window_days))
        history = load_history(store, history_scope, since=since, until=until)

    analysis = analyze(history, policy, now=until)
    if as_json:
        click.echo(json.dumps(analysis.to_dict(), indent=2))
    else:
        _render(analysis)
    publish_flaky(
        analysis.to_dict(),
        db_url=ctx.db_url,
        enabled=github_summary,
        stream=sys.stderr if as_json else None,
    )


def _with_window(policy: FlakePolicy, window: timedelta) -> FlakePolicy:
    # The policy keeps whole days; the window itself is used as given.
    return replace(policy, window_days=max(window.days, 1))


# -- text output --------------------------------------------------------------


def _render(analysis: FlakeAnalysis) -> None:
    from rich.console import Console

    # Wide enough that a pipe or CI log keeps one test per line.
    console = Console(
        highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160
    )
    console.print(_headline(analysis))
    if analysis.runs == 0:
        console.print(
            "no runs in the window: widen it with --window, or the scope with "
            "--branch '*' or --event local"
        )
        return

    if analysis.flaky:
        console.print(_flaky_table(analysis))
    else:
        console.print("no flaky tests in the window")
    if analysis.broken:
        console.print(_broken_table(analysis))
    for group in analysis.groups:
        console.print(
            f"co-failure group {group.id} (failed together in {group.shared_runs} "
            f"runs): " + ", ".join(group.tests),
            markup=False,
        )
    _render_signatures(console, analysis)


def _headline(analysis: FlakeAnalysis) -> str:
    from rich.markup import escape

    scope = analysis.scope
    where = f" in {scope.repository}" if scope.repository else ""
    fixed = sum(finding.state == "fixed" for finding in analysis.flaky)
    active = len(analysis.flaky) - fixed
    return (
        f"gate {escape(scope.gate)}{escape(where)}: {active} flaky"
        + (f" ({fixed} more fixed)" if fixed else "")
        + ", "
        f"{len(analysis.broken)} broken over {analysis.policy.window_days} days "
        f"({analysis.runs} runs, {analysis.trials} trials, "
        f"{analysis.unclean_trials} not clean)"
    )


def _flaky_table(analysis: FlakeAnalysis) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="flaky tests, by impact", title_justify="left")
    columns = ("#", "test", "state", "evidence", "failure rate", "runs broken")
    for column in (*columns, "impact", "last seen"):
        table.add_column(column, **_column_style(column, analysis.flaky))
    for rank, finding in enumerate(analysis.flaky, start=1):
        table.add_row(
            str(rank),
            escape(finding.test_id),
            finding.state,
            _evidence(finding),
            _rate(finding),
            f"{finding.runs_broken} ({finding.runs_broken_alone} alone)",
            f"{finding.impact:.1f}",
            finding.last_seen.strftime("%m-%d %H:%M"),
        )
    return table


def _broken_table(analysis: FlakeAnalysis) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="broken tests (failing every run since)", title_justify="left")
    columns = ("test", "broke at", "since", "failing runs", "runs broken")
    for column in (*columns, "impact"):
        table.add_column(column, **_column_style(column, analysis.broken))
    for finding in analysis.broken:
        broke = finding.broken_at
        if broke is None:
            continue
        table.add_row(
            escape(finding.test_id),
            (broke.commit or "unknown commit")[:10],
            broke.started_at.strftime("%Y-%m-%d %H:%M"),
            str(broke.failing_runs),
            f"{finding.runs_broken} ({finding.runs_broken_alone} alone)",
            f"{finding.impact:.1f}",
        )
    return table


def _column_style(column: str, findings: list[TestFinding]) -> dict[str, Any]:
    if column != "test":
        return {"overflow": "ellipsis"}
    # Test ids are what a reader looks for: keep them whole up to a point.
    longest = max((len(finding.test_id) for finding in findings), default=10)
    return {"overflow": "fold", "min_width": min(longest, _TEST_WIDTH)}


def _render_signatures(console: Console, analysis: FlakeAnalysis) -> None:
    if not analysis.signatures:
        return
    console.print("top failure signatures:")
    for group in analysis.signatures[:_SIGNATURES_SHOWN]:
        tests = len(group.tests)
        console.print(
            f"  {group.runs} runs, {tests} test{'s' if tests != 1 else ''}: "
            f"{group.signature}",
            markup=False,
        )


def _evidence(finding: TestFinding) -> str:
    labels = {"rerun": "rerun", "same_commit": "same commit", "flips": "flips"}
    shown = [
        f"{labels[kind]} {count}" for kind, count in finding.evidence.items() if count
    ]
    return ", ".join(shown) or "-"


def _rate(finding: TestFinding) -> str:
    return (
        f"{finding.failure_rate:.0%} ({finding.failure_low:.0%}-"
        f"{finding.failure_high:.0%}) of {finding.runs}"
    )
