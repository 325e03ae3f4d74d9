"""Gate histories read from the database for analysis, in a few narrow queries.

The analysis modules (``forecast``, ``flakiness``) are pure; this module is
where they get their data. It reads only the columns they need, filters in SQL
and streams rows: for flaky-test analysis only the tests that failed or needed
a rerun in the window are loaded (every result of theirs in the window), so the
rows that reach Python are a small share of those the database scans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gate_tracker.forecast import (
    BurnIn,
    Forecast,
    ForecastPolicy,
    TrialOutcome,
    burn_in,
    burn_in_lines,
    describe,
    forecast,
)
from gate_tracker.records import FAILED_OUTCOMES
from gate_tracker.rows import aware
from gate_tracker.schema import gate_runs, test_results
from gate_tracker.storage import Store
from gate_tracker.verdicts import (
    NEUTRAL_VERDICTS,
    counted_verdicts,
)

if TYPE_CHECKING:
    from gate_tracker.config import Settings
    from gate_tracker.objective import Objective

FAILING_ATTEMPTS = frozenset({"failed", "error", "crashed"})
"""Attempt outcomes that count as a failure of that attempt."""

STREAM_ROWS = 5_000
"""Rows fetched per round trip while streaming test results."""


@dataclass(frozen=True)
class HistoryScope:
    """Which runs a history holds: a gate, and optionally one repository,
    one branch and some events (empty ``events`` means any event)."""

    gate: str
    repository: str | None = None
    branch: str | None = None
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """What the analysis needs of one gate run (one attempt)."""

    id: int
    started_at: datetime
    commit: str | None
    trial_key: str
    """Attempts of one CI run share this key (as ``StoredRun.trial_key``)."""

    attempt: int
    verdict: str

    @property
    def is_trial(self) -> bool:
        """A first attempt that was not cancelled: it counts for the streak."""
        return self.attempt == 1 and self.verdict not in NEUTRAL_VERDICTS


@dataclass(frozen=True)
class Observation:
    """One test's result in one gate run."""

    run_id: int
    outcome: str
    attempts: tuple[str, ...]
    signature: str | None = None

    @property
    def final_failure(self) -> bool:
        """The test failed (or errored) in the end."""
        return self.outcome in FAILED_OUTCOMES

    @property
    def failed_attempt(self) -> bool:
        """Some attempt failed: a final failure, or a failure rerun into a pass."""
        return self.final_failure or not FAILING_ATTEMPTS.isdisjoint(self.attempts)

    @property
    def passed_on_rerun(self) -> bool:
        """An attempt failed (or its worker crashed), and a later one passed."""
        return self.outcome == "passed" and not FAILING_ATTEMPTS.isdisjoint(
            self.attempts
        )


@dataclass
class GateHistory:
    """The runs of a scope in a time window, and the tests worth analysing.

    ``runs`` is oldest first. ``tests`` maps each test that failed or needed a
    rerun in some run of the window to all its results in the window, in the
    order of ``runs``; tests that only ever passed are left out.
    """

    scope: HistoryScope
    since: datetime
    until: datetime
    runs: list[RunInfo] = field(default_factory=list)
    tests: dict[str, list[Observation]] = field(default_factory=dict)


def load_history(
    store: Store,
    scope: HistoryScope,
    *,
    since: datetime,
    until: datetime | None = None,
) -> GateHistory:
    """The history of ``scope`` for runs started in ``[since, until)``.

    Two queries in one read transaction: the runs, then the results of the
    tests that failed or needed a rerun in one of them.
    """
    until = until or datetime.now(timezone.utc)
    history = GateHistory(scope=scope, since=since, until=until)
    window = [
        *_run_conditions(scope),
        gate_runs.c.started_at >= since,
        gate_runs.c.started_at < until,
    ]

    with store.reading() as conn:
        history.runs = [_run_info(row) for row in conn.execute(_runs_query(window))]
        if not history.runs:
            return history
        position = {run.id: index for index, run in enumerate(history.runs)}
        for test_id, observation in _notable_results(conn, window):
            history.tests.setdefault(test_id, []).append(observation)

    # Rows arrive in storage order; the analysis wants them in run order.
    for observations in history.tests.values():
        observations.sort(key=lambda seen: position[seen.run_id])
    return history


def load_trials(
    store: Store,
    scope: HistoryScope,
    *,
    limit: int,
    count_rerun_passes: bool = False,
) -> list[TrialOutcome]:
    """The newest ``limit`` trials of ``scope``, oldest first.

    A trial is a first attempt that was not cancelled; it is clean when its
    verdict is ``pass`` (or ``flaky-pass`` too with ``count_rerun_passes``).
    Only three columns of at most ``limit`` runs are read.
    """
    clean = counted_verdicts(count_rerun_passes)
    query = (
        sa.select(gate_runs.c.id, gate_runs.c.started_at, gate_runs.c.verdict)
        .where(
            *_run_conditions(scope),
            gate_runs.c.attempt == 1,
            gate_runs.c.verdict.not_in(sorted(NEUTRAL_VERDICTS)),
        )
        .order_by(gate_runs.c.started_at.desc(), gate_runs.c.id.desc())
        .limit(limit)
    )
    with store.reading() as conn:
        rows = conn.execute(query).all()
    return [
        TrialOutcome(row.id, aware(row.started_at), row.verdict in clean)
        for row in reversed(rows)
    ]


@dataclass
class Outlook:
    """What ``status`` adds to the objective: the forecast and a burn-in."""

    forecast: Forecast
    burn_in: BurnIn | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``forecast`` (and, for one commit, ``burn_in``) of ``status --json``."""
        document: dict[str, Any] = {"forecast": self.forecast.to_dict()}
        if self.burn_in is not None:
            document["burn_in"] = self.burn_in.to_dict()
        return document

    def lines(self) -> list[str]:
        """Readable lines for the text output of ``status``."""
        lines = describe(self.forecast)
        if self.burn_in is not None:
            lines.extend(burn_in_lines(self.burn_in))
        return lines


def load_outlook(
    store: Store,
    objective: Objective,
    settings: Settings,
    *,
    commit: str | None = None,
) -> Outlook:
    """The forecast of ``objective`` and, with ``commit``, that commit's burn-in.

    The forecast reads only the newest trials it needs (``history_runs``);
    the burn-in reads the commit's runs in the objective's events, on any
    branch: the commit, not the branch, names the code under test.
    """
    policy = objective.policy
    scope = HistoryScope(
        objective.gate, objective.repository, policy.branch, policy.events
    )
    forecast_policy = ForecastPolicy.from_settings(settings)
    trials = load_trials(
        store,
        scope,
        limit=forecast_policy.history_runs,
        count_rerun_passes=policy.count_rerun_passes,
    )
    outlook = Outlook(
        forecast(
            trials,
            required=objective.required,
            streak=objective.streak,
            policy=forecast_policy,
        )
    )
    if commit is not None:
        runs = store.runs(
            objective.gate,
            repository=objective.repository,
            events=policy.events,
            commit=commit,
        )
        outlook.burn_in = burn_in(commit, runs, confidence=forecast_policy.confidence)
    return outlook


def _run_conditions(scope: HistoryScope) -> list[Any]:
    conditions: list[Any] = [gate_runs.c.gate == scope.gate]
    if scope.repository is not None:
        conditions.append(gate_runs.c.repository == scope.repository)
    if scope.branch is not None:
        conditions.append(gate_runs.c.branch == scope.branch)
    if scope.events:
        conditions.append(gate_runs.c.event.in_(list(scope.events)))
    return conditions


def _runs_query(conditions: Sequence[Any]) -> sa.Select[Any]:
    return (
        sa.select(
            gate_runs.c.id,
            gate_runs.c.started_at,
            gate_runs.c.commit_sha,
            gate_runs.c.repository,
            gate_runs.c.ci_run_id,
            gate_runs.c.run_key,
            gate_runs.c.attempt,
            gate_runs.c.verdict,
        )
        .where(*conditions)
        .order_by(gate_runs.c.started_at, gate_runs.c.attempt, gate_runs.c.id)
    )


def _notable_results(
    conn: sa.Connection, window: Sequence[Any]
) -> Iterator[tuple[str, Observation]]:
    window_ids = sa.select(gate_runs.c.id).where(*window)

    notable = (
        sa.select(test_results.c.test_id)
        .where(
            test_results.c.run_id.in_(window_ids),
            sa.or_(
                test_results.c.outcome.in_(FAILED_OUTCOMES),
                test_results.c.reruns > 0,
            ),
        )
        .distinct()
    )
    query = sa.select(
        test_results.c.run_id,
        test_results.c.test_id,
        test_results.c.outcome,
        test_results.c.attempts,
        test_results.c.signature,
    ).where(
        test_results.c.run_id.in_(window_ids),
        test_results.c.test_id.in_(notable),
    )
    result = conn.execution_options(yield_per=STREAM_ROWS).execute(query)
    for row in result:
        attempts = tuple(row.attempts.split(",")) if row.attempts else ()
        yield row.test_id, Observation(row.run_id, row.outcome, attempts, row.signature)


def _run_info(row: Any) -> RunInfo:
    trial_key = f"{row.repository}:{row.ci_run_id}" if row.ci_run_id else row.run_key
    return RunInfo(
        id=row.id,
        started_at=aware(row.started_at),
        commit=row.commit_sha,
        trial_key=trial_key,
        attempt=row.attempt,
        verdict=row.verdict,
    )
