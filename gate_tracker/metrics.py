"""OpenMetrics text for dashboards and alerts, written with prometheus_client.

``gate-tracker metrics`` turns each gate's state (``GateMetrics``) into one
OpenMetrics exposition: a fresh ``CollectorRegistry`` with a collector that
yields the families below, each labelled with ``gate`` and ``repository``. The
names are documented, with alert rules, in ``docs/report.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector

from gate_tracker.config import Settings
from gate_tracker.flakiness import FlakePolicy, analyze
from gate_tracker.forecast import ForecastPolicy
from gate_tracker.history import HistoryScope, load_history, load_outlook
from gate_tracker.objective import Objective
from gate_tracker.records import VERDICTS
from gate_tracker.rows import aware
from gate_tracker.schema import gate_runs
from gate_tracker.storage import Store
from gate_tracker.verdicts import NEUTRAL_VERDICTS

PREFIX = "gate_tracker"
LABELS = ("gate", "repository")
DURATION_QUANTILES = (0.5, 0.95)
"""Quantiles of the gate run duration that are exported."""

ACTIVE_STATES = frozenset({"new", "ongoing"})
"""States of a flaky test that count in ``gate_tracker_flaky_tests``."""

FAILING_VERDICTS = ("fail", "timeout", "incomplete")
"""Verdicts that set ``gate_tracker_last_failure_timestamp_seconds``."""


@dataclass
class GateMetrics:
    """One gate's figures, as of now, for one repository.

    ``clean_pass_rate`` and its interval are the forecast's; the duration
    figures cover recent runs (see ``gate_metrics``). Timestamps are seconds
    since the epoch, None when no such run is stored.
    """

    gate: str
    repository: str
    streak: int
    ci_streak: int
    required: int
    runs_by_verdict: dict[str, int]
    clean_pass_rate: float | None
    clean_pass_interval: tuple[float, float] | None
    flaky_tests: int
    last_run_timestamp: float | None
    last_run_verdict: str | None
    last_failure_timestamp: float | None = None
    duration_quantiles_s: dict[float, float] = field(default_factory=dict)
    duration_count: int = 0
    duration_sum_s: float = 0.0

    @property
    def met(self) -> bool:
        return self.streak >= self.required


def render_metrics(gates: Sequence[GateMetrics]) -> bytes:
    """The OpenMetrics exposition of ``gates``, ending in ``# EOF``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GateCollector(gates))
    # prometheus_client leaves this function unannotated.
    return bytes(generate_latest(registry))  # type: ignore[no-untyped-call]


class _GateCollector(Collector):
    """Yields every family, one sample per gate, from figures already computed."""

    def __init__(self, gates: Sequence[GateMetrics]) -> None:
        self.gates = list(gates)

    def collect(self) -> Iterator[Metric]:
        yield from _objective_families(self.gates)
        yield from _run_families(self.gates)
        yield from _rate_families(self.gates)
        yield _duration_family(self.gates)


def _objective_families(gates: Sequence[GateMetrics]) -> Iterator[Metric]:
    streak = GaugeMetricFamily(
        f"{PREFIX}_streak",
        "Consecutive passing trials, newest first: strict counts clean passes "
        "only, ci counts runs green with reruns.",
        labels=[*LABELS, "policy"],
    )
    required = GaugeMetricFamily(
        f"{PREFIX}_streak_required",
        "Consecutive clean passes the release objective needs.",
        labels=LABELS,
    )
    met = GaugeMetricFamily(
        f"{PREFIX}_objective_met",
        "1 when the strict streak reaches the required number, else 0.",
        labels=LABELS,
    )
    for gate in gates:
        labels = [gate.gate, gate.repository]
        streak.add_metric([*labels, "strict"], gate.streak)
        streak.add_metric([*labels, "ci"], gate.ci_streak)
        required.add_metric(labels, gate.required)
        met.add_metric(labels, 1 if gate.met else 0)
    yield from (streak, required, met)


def _run_families(gates: Sequence[GateMetrics]) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        f"{PREFIX}_runs",
        "Gate runs stored in scope, by verdict.",
        labels=[*LABELS, "verdict"],
    )
    last_time = GaugeMetricFamily(
        f"{PREFIX}_last_run_timestamp_seconds",
        "When the newest run in scope started, in seconds since the epoch.",
        labels=LABELS,
        unit="seconds",
    )
    last_verdict = StateSetMetricFamily(
        f"{PREFIX}_last_run_verdict",
        "The verdict of the newest run in scope.",
        labels=LABELS,
    )
    last_failure = GaugeMetricFamily(
        f"{PREFIX}_last_failure_timestamp_seconds",
        "When the newest run in scope whose verdict was fail, timeout or "
        "incomplete started, in seconds since the epoch.",
        labels=LABELS,
        unit="seconds",
    )
    for gate in gates:
        labels = [gate.gate, gate.repository]
        for verdict in VERDICTS:
            runs.add_metric([*labels, verdict], gate.runs_by_verdict.get(verdict, 0))
        if gate.last_failure_timestamp is not None:
            last_failure.add_metric(labels, gate.last_failure_timestamp)
        if gate.last_run_timestamp is None:
            continue
        last_time.add_metric(labels, gate.last_run_timestamp)
        states = {verdict: verdict == gate.last_run_verdict for verdict in VERDICTS}
        last_verdict.add_metric(labels, states)
    yield from (runs, last_time, last_verdict, last_failure)


def _rate_families(gates: Sequence[GateMetrics]) -> Iterator[Metric]:
    names = ("clean_pass_ratio", "clean_pass_ratio_lower", "clean_pass_ratio_upper")
    helps = (
        "Estimated probability that one run is a clean pass, over recent runs.",
        "Lower end of the 95% interval of the clean-pass ratio.",
        "Upper end of the 95% interval of the clean-pass ratio.",
    )
    families = [
        GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=LABELS)
        for name, text in zip(names, helps, strict=True)
    ]
    flaky = GaugeMetricFamily(
        f"{PREFIX}_flaky_tests",
        "Tests flagged flaky (new or ongoing) in the flaky-test window.",
        labels=LABELS,
    )
    for gate in gates:
        labels = [gate.gate, gate.repository]
        flaky.add_metric(labels, gate.flaky_tests)
        if gate.clean_pass_rate is None or gate.clean_pass_interval is None:
            continue
        values = (gate.clean_pass_rate, *gate.clean_pass_interval)
        for family, value in zip(families, values, strict=True):
            family.add_metric(labels, value)
    yield from (*families, flaky)


def _duration_family(gates: Sequence[GateMetrics]) -> Metric:
    # prometheus_client's SummaryMetricFamily cannot carry quantiles, so the
    # samples are added by hand in the OpenMetrics summary layout.
    name = f"{PREFIX}_run_duration_seconds"
    family = Metric(
        name,
        "Duration of recent gate runs: quantiles, count and sum.",
        "summary",
        unit="seconds",
    )
    for gate in gates:
        labels = {"gate": gate.gate, "repository": gate.repository}
        if not gate.duration_count:
            continue
        for quantile in DURATION_QUANTILES:
            value = gate.duration_quantiles_s[quantile]
            family.add_sample(name, {**labels, "quantile": str(quantile)}, value)
        family.add_sample(f"{name}_count", labels, gate.duration_count)
        family.add_sample(f"{name}_sum", labels, gate.duration_sum_s)
    return family


# -- gathering from the database --------------------------------------------------


def gate_metrics(
    store: Store,
    objective: Objective,
    settings: Settings,
    *,
    now: datetime,
) -> GateMetrics:
    """The figures of ``objective``'s gate and repository, read from ``store``.

    Runs by verdict count every run in scope; the clean-pass ratio is the
    forecast's (``status`` shows the same), the flaky count that of
    ``gate-tracker flaky`` over its window, and the duration quantiles cover
    the newest ``forecast_window_runs`` runs that were not cancelled.
    """
    policy = objective.policy
    scope = HistoryScope(
        objective.gate, objective.repository, policy.branch, policy.events
    )
    rate = load_outlook(store, objective, settings).forecast.rate
    flake_policy = FlakePolicy.from_settings(settings)
    history = load_history(
        store, scope, since=now - timedelta(days=flake_policy.window_days), until=now
    )
    flaky = analyze(history, flake_policy, now=now).flaky

    window = ForecastPolicy.from_settings(settings).window_runs
    recent = store.runs(
        objective.gate,
        repository=objective.repository,
        branch=policy.branch,
        events=policy.events,
        limit=window * 2,
    )
    durations = [
        run.duration_s
        for run in recent
        if run.duration_s is not None and run.verdict not in NEUTRAL_VERDICTS
    ][:window]
    last = recent[0] if recent else None
    counts, newest = verdict_counts(store, scope)
    failed_at = [newest[v] for v in FAILING_VERDICTS if v in newest]

    return GateMetrics(
        gate=objective.gate,
        repository=objective.repository or "",
        streak=objective.streak,
        ci_streak=objective.ci_streak,
        required=objective.required,
        runs_by_verdict=counts,
        clean_pass_rate=rate.estimate,
        clean_pass_interval=None
        if rate.low is None or rate.high is None
        else (rate.low, rate.high),
        flaky_tests=sum(finding.state in ACTIVE_STATES for finding in flaky),
        last_run_timestamp=last.started_at.timestamp() if last else None,
        last_run_verdict=last.verdict if last else None,
        last_failure_timestamp=max(failed_at).timestamp() if failed_at else None,
        duration_quantiles_s={
            q: float(np.quantile(durations, q)) for q in DURATION_QUANTILES
        }
        if durations
        else {},
        duration_count=len(durations),
        duration_sum_s=float(sum(durations)),
    )


def verdict_counts(
    store: Store, scope: HistoryScope
) -> tuple[dict[str, int], dict[str, datetime]]:
    """Runs in ``scope`` per verdict, and the newest start of each verdict.

    One aggregate query over ``gate_runs``.
    """
    newest = sa.func.max(gate_runs.c.started_at)
    query = sa.select(gate_runs.c.verdict, sa.func.count(), newest).where(
        gate_runs.c.gate == scope.gate
    )
    if scope.repository is not None:
        query = query.where(gate_runs.c.repository == scope.repository)
    if scope.branch is not None:
        query = query.where(gate_runs.c.branch == scope.branch)
    if scope.events:
        query = query.where(gate_runs.c.event.in_(list(scope.events)))

    with store.reading() as conn:
        rows = conn.execute(query.group_by(gate_runs.c.verdict)).all()
    counts = {row[0]: int(row[1]) for row in rows}
    return counts, {row[0]: aware(row[2]) for row in rows}
