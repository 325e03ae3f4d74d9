"""The report's charts: series built from a gate's runs, drawn by ``charts``.

The streaks over time come from ``reporting.trial_steps`` (each trial judged
by ``objective.evaluate``), pass rates and durations are binned by day or week,
and the flaky-test charts show the analysis's top tests. Importing this module
imports matplotlib; ``reporting`` does so only when charts are wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np

from gate_tracker import charts
from gate_tracker.charts import (
    DurationBin,
    FlakyImpact,
    OutcomeGrid,
    RateBin,
    StreakPoint,
)
from gate_tracker.flakiness import TestFinding
from gate_tracker.forecast import jeffreys_interval
from gate_tracker.history import GateHistory, Observation
from gate_tracker.records import FAILED_OUTCOMES, StoredRun
from gate_tracker.redaction import redact
from gate_tracker.reporting import Chart, Report, TrialStep, run_durations

FLAKY_SHOWN = 10
"""Flaky tests in the impact chart and the outcome grid."""

GRID_RUNS = 60
_SKIPPED_OUTCOMES = ("skipped", "xfailed")


def draw_charts(
    report: Report,
    runs: Sequence[StoredRun],
    steps: Sequence[TrialStep],
    history: GateHistory,
) -> list[Chart]:
    """The report's charts; a chart without data is left out."""
    gate = redact(report.scope.gate)
    per = report.trend_per
    trend = [
        step for step in steps if step.trial.first.started_at >= report.trend_since
    ]
    drawn: list[Chart] = []

    rate_bins = _rate_bins(trend, per)
    if rate_bins:
        figure = charts.pass_rate_chart(rate_bins, gate=gate, per=per)
        drawn.append(
            Chart("pass-rate", f"Pass rate per {per}", charts.png_bytes(figure))
        )

    streak = streak_points(steps, report.trend_since)
    if streak:
        figure = charts.streak_chart(
            streak, gate=gate, required=report.objective.required
        )
        drawn.append(Chart("streak", "Streak over time", charts.png_bytes(figure)))

    recent = [run for run in runs if run.started_at >= report.trend_since]
    duration_bins = _duration_bins(recent, per)
    if duration_bins:
        figure = charts.duration_chart(duration_bins, gate=gate, per=per)
        drawn.append(
            Chart("duration", f"Gate run duration per {per}", charts.png_bytes(figure))
        )

    active = [f for f in report.flakes.flaky if f.state != "fixed"][:FLAKY_SHOWN]
    if active:
        impacts = [
            FlakyImpact(
                redact(f.test_id), f.final_failures, f.evidence["rerun"], f.impact
            )
            for f in active
        ]
        figure = charts.flaky_impact_chart(impacts, gate=gate)
        drawn.append(
            Chart("flaky-impact", "Flaky tests by impact", charts.png_bytes(figure))
        )
        figure = charts.outcome_grid_chart(_outcome_grid(active, history), gate=gate)
        drawn.append(
            Chart(
                "outcome-grid",
                "Outcomes of the top flaky tests",
                charts.png_bytes(figure),
            )
        )
    return drawn


def _bin_start(moment: datetime, per: str) -> datetime:
    day = moment.astimezone(timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if per == "week":
        return day - timedelta(days=day.weekday())
    return day


def _rate_bins(steps: Sequence[TrialStep], per: str) -> list[RateBin]:
    binned: dict[datetime, list[TrialStep]] = {}
    for step in steps:
        if step.strict == "keep":
            continue
        binned.setdefault(_bin_start(step.trial.first.started_at, per), []).append(step)

    bins = []
    for start in sorted(binned):
        members = binned[start]
        clean = sum(step.strict == "+1" for step in members)
        green = sum(step.ci == "+1" for step in members)
        bins.append(
            RateBin(
                start=start,
                runs=len(members),
                clean=clean,
                green=green,
                clean_interval=jeffreys_interval(clean, len(members)),
                green_interval=jeffreys_interval(green, len(members)),
            )
        )
    return bins


def streak_points(steps: Sequence[TrialStep], since: datetime) -> list[StreakPoint]:
    points = []
    strict = ci = 0
    for step in steps:
        strict = _advance(strict, step.strict)
        ci = _advance(ci, step.ci)
        if step.trial.first.started_at >= since:
            points.append(StreakPoint(step.trial.first.started_at, strict, ci))
    return points


def _advance(streak: int, step: str) -> int:
    if step == "+1":
        return streak + 1
    return 0 if step == "reset" else streak


def _duration_bins(runs: Sequence[StoredRun], per: str) -> list[DurationBin]:
    binned: dict[datetime, list[float]] = {}
    for run in runs:
        for duration in run_durations([run]):
            binned.setdefault(_bin_start(run.started_at, per), []).append(duration)
    return [
        DurationBin(
            start=start,
            runs=len(binned[start]),
            median_s=float(np.median(binned[start])),
            p95_s=float(np.percentile(binned[start], 95)),
        )
        for start in sorted(binned)
    ]


def _outcome_grid(findings: Sequence[TestFinding], history: GateHistory) -> OutcomeGrid:
    shown = history.runs[-GRID_RUNS:]
    cells = []
    for finding in findings:
        seen = {o.run_id: o for o in history.tests.get(finding.test_id, [])}
        cells.append([_grid_cell(seen.get(run.id)) for run in shown])
    return OutcomeGrid(
        tests=[redact(finding.test_id) for finding in findings],
        runs=[run.started_at for run in shown],
        cells=cells,
    )


def _grid_cell(seen: Observation | None) -> str:
    if seen is None:
        return "absent"
    if seen.outcome in FAILED_OUTCOMES:
        return "failed"
    if seen.outcome in _SKIPPED_OUTCOMES:
        return "skipped"
    if len(seen.attempts) > 1:
        return "rerun"
    return "passed"
