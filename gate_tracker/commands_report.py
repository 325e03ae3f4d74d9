"""``gate-tracker report``: write the weekly flake report of a gate."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from gate_tracker.cli import Context
from gate_tracker.commands_flaky import parse_duration
from gate_tracker.commands_status import resolve_scope, scope_options

DEFAULT_SINCE = "7d"
DEFAULT_TREND = "90d"


@click.command()
@scope_options
@click.option(
    "--since",
    "period",
    callback=parse_duration,
    default=DEFAULT_SINCE,
    show_default=True,
    metavar="SPAN",
    help="The period reported on, ending now, e.g. 7d or 2w; it is compared "
    "with the same span before it.",
)
@click.option(
    "--trend",
    callback=parse_duration,
    default=DEFAULT_TREND,
    show_default=True,
    metavar="SPAN",
    help="How far back the trend charts reach (one point per day while the "
    "runs span up to 62 days, per week beyond).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder to write report.md, index.html, summary.json and charts/ into.",
)
@click.option(
    "--required",
    type=click.IntRange(min=1),
    metavar="N",
    help="Consecutive clean passes required (default: as for status).",
)
@click.option(
    "--count-rerun-passes",
    is_flag=True,
    help="Let runs green only thanks to reruns (flaky-pass) count.",
)
@click.option(
    "--github-summary/--no-github-summary",
    default=None,
    help="Append report.md to the GitHub Actions job summary (default: when "
    "GITHUB_ACTIONS=true).",
)
@click.pass_obj
def report(
    ctx: Context,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
    period: timedelta,
    trend: timedelta,
    out: Path,
    required: int | None,
    count_rerun_passes: bool,
    github_summary: bool | None,
) -> None:
    """Write the weekly flake report: objective, forecast, flaky tests, charts.

    The report covers the period given by --since, against the one before it;
    the flaky tests are those `gate-tracker flaky` finds over its window.
    """
    # matplotlib, scipy and jinja2 load only when a report is made.
    from gate_tracker.reporting import ReportScope, build_report, write_report

    now = datetime.now(timezone.utc)
    with ctx.open_store() as store:
        scope = resolve_scope(
            ctx,
            store,
            gate=gate,
            repository=repository,
            branch=branch,
            events=events,
            required=required,
            count_rerun_passes=count_rerun_passes,
        )
        built = build_report(
            store,
            ReportScope(scope.gate, scope.repository, scope.policy),
            ctx.settings,
            now=now,
            period=period,
            trend=trend,
        )

    written = write_report(built, out)
    click.echo(f"report of {scope.gate} written to {out}: " + _listing(written, out))
    _publish(out / "report.md", github_summary)


def _listing(paths: list[Path], base: Path) -> str:
    charts = [path for path in paths if path.suffix == ".png"]
    files = [path.relative_to(base).as_posix() for path in paths if path not in charts]
    return (
        ", ".join(files)
        + f" and {len(charts)} chart"
        + ("" if len(charts) == 1 else "s")
    )


def _publish(markdown: Path, enabled: bool | None) -> None:
    from gate_tracker.github_actions import ENV_ACTIONS, append_step_summary

    environ = dict(os.environ)
    if enabled is False:
        return
    if enabled:
        environ[ENV_ACTIONS] = "true"
    append_step_summary(markdown.read_text(encoding="utf-8"), environ)
