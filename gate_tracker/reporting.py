"""The weekly flake report: its model, built from the database, and its files.

``build_report`` reads a gate's runs and asks the analysis modules
(``objective``, ``forecast``, ``flakiness``) what they mean; ``write_report``
renders the model as ``report.md`` (GitHub-flavoured, fit for a job summary),
``index.html`` (one self-contained file), ``summary.json`` (documented in
``docs/report.md``) and ``charts/*.png`` (drawn by ``report_charts``, rendered
by ``report_rendering``). Everything from the database passes through
``redact`` again on its way out, and is escaped for the format.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from markupsafe import Markup

from gate_tracker import __version__
from gate_tracker.config import Settings
from gate_tracker.exceptions import StorageError
from gate_tracker.flakiness import FlakeAnalysis, FlakePolicy, TestFinding, analyze
from gate_tracker.forecast import Forecast, jeffreys_interval
from gate_tracker.history import (
    GateHistory,
    HistoryScope,
    load_history,
    load_outlook,
)
from gate_tracker.objective import Objective, Policy, Trial, evaluate, group_trials
from gate_tracker.records import FAILED_OUTCOMES, VERDICTS, StoredRun
from gate_tracker.redaction import redact
from gate_tracker.schema import test_results
from gate_tracker.storage import Store
from gate_tracker.verdicts import NEUTRAL_VERDICTS

log = logging.getLogger(__name__)

REPORT_FORMAT = "gate-tracker-report"
REPORT_VERSION = 1
DEFAULT_PERIOD = timedelta(days=7)
DEFAULT_TREND = timedelta(days=90)
DEFAULT_REPORT_DIR = Path("reports")
CHART_DIR = "charts"
REPORT_FILES = ("report.md", "index.html", "summary.json")

DAILY_BINS_UNTIL = timedelta(days=62)
"""Runs of the trend spanning up to this long are binned by day, else by week."""

SLOWEST_SHOWN = 10
DURATION_RUNS = 50
"""Newest runs of a period whose test durations rank the slowest tests."""

SIGNATURES_SHOWN = 8
FIX_FIRST_SHOWN = 5
_UNEXPLAINED_VERDICTS = ("incomplete", "timeout")
_SKIPPED_OUTCOMES = ("skipped", "xfailed")


@dataclass(frozen=True)
class ReportScope:
    """The gate, repository and objective policy a report is about."""

    gate: str
    repository: str | None
    policy: Policy


@dataclass
class PeriodFigures:
    """The runs of one period (this week, the week before) in numbers."""

    since: datetime
    until: datetime
    runs: int
    by_verdict: dict[str, int]
    trials: int
    clean_passes: int
    clean_interval: tuple[float, float] | None
    median_duration_s: float | None
    p95_duration_s: float | None

    @property
    def clean_rate(self) -> float | None:
        return self.clean_passes / self.trials if self.trials else None


@dataclass
class SlowTest:
    """One of the slowest tests of the period, against the period before."""

    test_id: str
    runs: int
    mean_s: float
    max_s: float
    previous_mean_s: float | None

    @property
    def change(self) -> float | None:
        """Relative change of the mean duration, or None without a baseline."""
        if not self.previous_mean_s:
            return None
        return self.mean_s / self.previous_mean_s - 1


@dataclass
class FixItem:
    """One entry of "what to fix first": what, why, and what it cost."""

    kind: str
    """``broken``, ``group``, ``flaky`` or ``unexplained``."""

    subject: str
    detail: str
    cost: float
    """Trials it kept from being clean passes (shared among causes)."""


@dataclass
class Chart:
    """One chart of the report: its file name, a caption and the PNG bytes."""

    name: str
    caption: str
    png: bytes

    @property
    def path(self) -> str:
        return f"{CHART_DIR}/{self.name}.png"

    @property
    def data_uri(self) -> Markup:
        """The PNG as a ``data:`` URI, for embedding (safe: base64 only)."""
        encoded = base64.b64encode(self.png).decode("ascii")
        return Markup("data:image/png;base64," + encoded)


@dataclass
class Report:
    """Everything the report shows, ready to render."""

    scope: ReportScope
    generated_at: datetime
    period: PeriodFigures
    previous: PeriodFigures
    objective: Objective
    forecast: Forecast
    flakes: FlakeAnalysis
    slowest: list[SlowTest]
    fix_first: list[FixItem]
    trend_since: datetime
    trend_per: str
    charts: list[Chart] = field(default_factory=list)

    @property
    def days(self) -> int:
        return max(round((self.period.until - self.period.since).days), 1)


@dataclass(frozen=True)
class TrialStep:
    """What one trial did to each streak: ``+1``, ``reset`` or ``keep``."""

    trial: Trial
    strict: str
    ci: str


# -- building the model ---------------------------------------------------------


def build_report(
    store: Store,
    scope: ReportScope,
    settings: Settings,
    *,
    now: datetime | None = None,
    period: timedelta = DEFAULT_PERIOD,
    trend: timedelta = DEFAULT_TREND,
    charts: bool = True,
) -> Report:
    """The report of ``scope`` for the ``period`` ending ``now``.

    The objective and its forecast are as ``status`` shows them, the flaky
    tests as ``flaky`` lists them (over its own window), and the charts cover
    the ``trend`` ending ``now``. ``charts=False`` leaves the charts out.
    """
    now = now or datetime.now(timezone.utc)
    since = now - period
    policy = scope.policy
    history_scope = HistoryScope(
        gate=scope.gate,
        repository=scope.repository,
        branch=policy.branch,
        events=policy.events,
    )

    # Every run in scope: a streak can reach back past any window.
    runs = store.runs(
        scope.gate,
        repository=scope.repository,
        branch=policy.branch,
        events=policy.events,
    )
    runs.reverse()
    objective = evaluate(runs, policy, gate=scope.gate, repository=scope.repository)
    outlook = load_outlook(store, objective, settings).forecast

    # The flaky tests over the analysis window, as `gate-tracker flaky` has them.
    flake_policy = FlakePolicy.from_settings(settings)
    history = load_history(
        store,
        history_scope,
        since=now - timedelta(days=flake_policy.window_days),
        until=now,
    )
    flakes = analyze(history, flake_policy, now=now)

    steps = trial_steps(runs, scope)
    report = Report(
        scope=scope,
        generated_at=now,
        period=period_figures(runs, steps, since, now),
        previous=period_figures(runs, steps, since - period, since),
        objective=objective,
        forecast=outlook,
        flakes=flakes,
        slowest=slowest_tests(store, runs, since, now, period),
        fix_first=fix_first(flakes, history),
        trend_since=now - trend,
        trend_per=_bin_width(runs, now - trend),
    )
    if charts:
        # matplotlib loads only here: nothing else in gate-tracker needs it.
        from gate_tracker.report_charts import draw_charts

        report.charts = draw_charts(report, runs, steps, history)
    log.info(
        "report: %d runs in scope, %d in the period, %d flaky and %d broken tests",
        len(runs),
        report.period.runs,
        len(flakes.flaky),
        len(flakes.broken),
        extra={"gate": scope.gate, "repository": scope.repository},
    )
    return report


def _bin_width(runs: Sequence[StoredRun], since: datetime) -> str:
    # Bins follow the data, not the option: a few days of runs in a 90-day
    # trend still get one point per day.
    shown = [run.started_at for run in runs if run.started_at >= since]
    span = shown[-1] - shown[0] if shown else timedelta(0)
    return "day" if span <= DAILY_BINS_UNTIL else "week"


def trial_steps(runs: Sequence[StoredRun], scope: ReportScope) -> list[TrialStep]:
    """Each trial, oldest first, with what it did to the strict and CI streaks.

    Every trial is judged alone by ``objective.evaluate``, so the streaks over
    time follow exactly the rules ``status`` applies to the current one.
    """
    steps = []
    for trial in reversed(group_trials(runs)):
        alone = evaluate(
            trial.attempts, scope.policy, gate=scope.gate, repository=scope.repository
        )
        steps.append(
            TrialStep(
                trial,
                strict=_step(alone.streak, alone.broken_by),
                ci=_step(alone.ci_streak, alone.ci_broken_by),
            )
        )
    return steps


def _step(streak: int, broken_by: StoredRun | None) -> str:
    if streak:
        return "+1"
    return "reset" if broken_by is not None else "keep"


def period_figures(
    runs: Sequence[StoredRun],
    steps: Sequence[TrialStep],
    since: datetime,
    until: datetime,
) -> PeriodFigures:
    """The figures of the runs (and trials) started in ``[since, until)``."""
    chosen = [run for run in runs if since <= run.started_at < until]
    counts = Counter(run.verdict for run in chosen)
    judged = [
        step
        for step in steps
        if step.strict != "keep" and since <= step.trial.first.started_at < until
    ]
    clean = sum(step.strict == "+1" for step in judged)
    durations = run_durations(chosen)
    return PeriodFigures(
        since=since,
        until=until,
        runs=len(chosen),
        by_verdict={verdict: counts.get(verdict, 0) for verdict in VERDICTS},
        trials=len(judged),
        clean_passes=clean,
        clean_interval=jeffreys_interval(clean, len(judged)) if judged else None,
        median_duration_s=float(np.median(durations)) if durations else None,
        p95_duration_s=float(np.percentile(durations, 95)) if durations else None,
    )


def run_durations(runs: Sequence[StoredRun]) -> list[float]:
    # A cancelled run stopped early: its duration says nothing about the gate.
    return [
        run.duration_s
        for run in runs
        if run.duration_s is not None and run.verdict not in NEUTRAL_VERDICTS
    ]


def slowest_tests(
    store: Store,
    runs: Sequence[StoredRun],
    since: datetime,
    until: datetime,
    period: timedelta,
    *,
    limit: int = SLOWEST_SHOWN,
) -> list[SlowTest]:
    """The tests with the longest mean duration in the period, slowest first.

    The mean covers the newest ``DURATION_RUNS`` runs of the period (every
    run of a weekly report, unless the gate runs more than 7 times a day);
    skipped tests are left out. Each test's mean over the newest runs of the
    period before is given beside it.
    """
    # runs is oldest first: the newest runs of a period are at its end.
    current = [run.id for run in runs if since <= run.started_at < until]
    before = [run.id for run in runs if since - period <= run.started_at < since]
    current, before = current[-DURATION_RUNS:], before[-DURATION_RUNS:]
    if not current:
        return []

    with store.reading() as conn:
        rows = conn.execute(_duration_query(current).limit(limit)).all()
        names = [row.test_id for row in rows]
        earlier = {}
        if before and names:
            query = _duration_query(before).where(test_results.c.test_id.in_(names))
            earlier = {row.test_id: row.mean_s for row in conn.execute(query)}
    return [
        SlowTest(
            test_id=row.test_id,
            runs=row.runs,
            mean_s=float(row.mean_s),
            max_s=float(row.max_s),
            previous_mean_s=earlier.get(row.test_id),
        )
        for row in rows
    ]


def _duration_query(run_ids: Sequence[int]) -> sa.Select[Any]:
    mean = sa.func.avg(test_results.c.duration_s)
    return (
        sa.select(
            test_results.c.test_id,
            sa.func.count().label("runs"),
            mean.label("mean_s"),
            sa.func.max(test_results.c.duration_s).label("max_s"),
        )
        .where(
            test_results.c.run_id.in_(run_ids),
            test_results.c.outcome.not_in(_SKIPPED_OUTCOMES),
        )
        .group_by(test_results.c.test_id)
        .order_by(mean.desc(), test_results.c.test_id)
    )


def fix_first(
    flakes: FlakeAnalysis, history: GateHistory, *, limit: int = FIX_FIRST_SHOWN
) -> list[FixItem]:
    """What to fix first, costliest first, derived from the analysis.

    A co-failure group stands for its tests (one cause, one fix); broken tests
    come with the commit they broke at; trials that were not clean with no
    test to blame (incomplete, timed out) are one entry of their own.
    """
    items: list[FixItem] = []
    grouped: set[str] = set()
    findings = {finding.test_id: finding for finding in flakes.flaky + flakes.broken}
    for group in flakes.groups:
        members = [findings[test_id] for test_id in group.tests]
        if all(member.state == "fixed" for member in members):
            continue
        grouped.update(group.tests)
        items.append(_group_item(group.tests, group.shared_runs, members))

    for finding in flakes.broken + flakes.flaky:
        if finding.test_id in grouped or finding.state == "fixed":
            continue
        items.append(_finding_item(finding))

    unexplained = _unexplained_trials(history)
    if unexplained:
        counts = Counter(unexplained)
        detail = ", ".join(
            f"{counts[v]} {v}" for v in _UNEXPLAINED_VERDICTS if counts[v]
        )
        items.append(
            FixItem(
                kind="unexplained",
                subject="runs that ended with no failing test to blame",
                detail=f"{detail} in the last {flakes.policy.window_days} days: "
                "check the job's time limit, collection errors and crashed workers",
                cost=float(len(unexplained)),
            )
        )

    items.sort(key=lambda item: (-item.cost, item.kind, item.subject))
    return items[:limit]


def _group_item(
    tests: Sequence[str], shared: int, members: Sequence[TestFinding]
) -> FixItem:
    signatures: Counter[str] = Counter()
    for member in members:
        signatures.update(dict(member.signatures))
    cause = signatures.most_common(1)[0][0] if signatures else "no failure message"
    return FixItem(
        kind="group",
        subject=", ".join(tests),
        detail=f"{len(tests)} tests fail in the same runs ({_runs(shared)} together): "
        f"likely one shared cause; most common failure: {cause}",
        cost=sum(member.impact for member in members),
    )


def _finding_item(finding: TestFinding) -> FixItem:
    cause = finding.signatures[0][0] if finding.signatures else "no failure message"
    if finding.broken_at is not None:
        broke = finding.broken_at
        commit = (broke.commit or "an unknown commit")[:12]
        return FixItem(
            kind="broken",
            subject=finding.test_id,
            detail=f"fails every run since commit {commit} "
            f"({_runs(broke.failing_runs)} since {broke.started_at:%Y-%m-%d}): "
            "a regression, not flakiness; "
            f"failure: {cause}",
            cost=finding.impact,
        )
    return FixItem(
        kind="flaky",
        subject=finding.test_id,
        detail=f"{finding.state} flaky test: cost {_runs(finding.runs_broken)} "
        f"({finding.runs_broken_alone} alone), fails {finding.failure_rate:.0%} "
        f"of {_runs(finding.runs)}; most common failure: {cause}",
        cost=finding.impact,
    )


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _unexplained_trials(history: GateHistory) -> list[str]:
    # Trials that failed some test are explained by the flaky or broken list.
    failing = {
        seen.run_id
        for observations in history.tests.values()
        for seen in observations
        if seen.outcome in FAILED_OUTCOMES
    }
    return [
        run.verdict
        for run in history.runs
        if run.is_trial
        and run.verdict in _UNEXPLAINED_VERDICTS
        and run.id not in failing
    ]


# -- writing ----------------------------------------------------------------------


def write_report(report: Report, directory: Path) -> list[Path]:
    """Write the report's files into ``directory``; the paths written.

    Each file is written whole to a temporary name, then renamed, so a reader
    never sees half a report.
    """
    from gate_tracker.report_rendering import render_html, render_markdown

    try:
        (directory / CHART_DIR).mkdir(parents=True, exist_ok=True)
        written = [_write(directory / chart.path, chart.png) for chart in report.charts]
        written.append(
            _write(directory / "report.md", render_markdown(report).encode())
        )
        written.append(_write(directory / "index.html", render_html(report).encode()))
        summary = json.dumps(summary_document(report), indent=2, ensure_ascii=False)
        written.append(_write(directory / "summary.json", (summary + "\n").encode()))
    except OSError as err:
        raise StorageError(
            f"cannot write the report into {directory}: {err.strerror or err}. "
            "Choose a writable folder with --out"
        ) from err
    log.info("report written to %s (%d files)", directory, len(written))
    return written


def _write(path: Path, data: bytes) -> Path:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def summary_document(report: Report) -> dict[str, Any]:
    """The ``summary.json`` object (``docs/report.md``), every string redacted."""
    from gate_tracker.report_rendering import summary_body

    document = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": report.generated_at.isoformat(),
        "gate_tracker_version": __version__,
        **summary_body(report),
    }
    redacted: dict[str, Any] = _redacted(document)
    return redacted


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value
