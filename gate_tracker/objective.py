"""The N-consecutive-pass objective: streaks over a gate's recent runs.

A *trial* is one try of the gate: a local session, or a CI run with all its
attempts. Attempt 1 is the trial; a later attempt retries it.

- The strict streak counts trials, newest first, whose first attempt was a
  clean ``pass``. A ``flaky-pass`` (green only thanks to reruns) ends it
  unless reruns are allowed by the policy; a later attempt never adds to it.
- The CI streak counts trials whose latest attempt was green (``pass`` or
  ``flaky-pass``), as the CI dashboard would show them.
- ``cancelled`` runs neither add to nor end a streak; every other verdict
  (``fail``, ``incomplete``, ``timeout``) ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gate_tracker.config import DEFAULT_BRANCH, DEFAULT_EVENTS, DEFAULT_REQUIRED
from gate_tracker.records import StoredRun
from gate_tracker.verdicts import (
    CI_GREEN_VERDICTS,
    NEUTRAL_VERDICTS,
    counted_verdicts,
)

ANY_BRANCH = "*"


@dataclass(frozen=True)
class Policy:
    """What counts towards the objective, and how many runs it needs."""

    required: int = DEFAULT_REQUIRED
    count_rerun_passes: bool = False
    branch: str | None = DEFAULT_BRANCH
    events: tuple[str, ...] = DEFAULT_EVENTS

    @property
    def counted_verdicts(self) -> frozenset[str]:
        return counted_verdicts(self.count_rerun_passes)


@dataclass
class Trial:
    """One try of the gate, with its attempts in attempt order."""

    key: str
    attempts: list[StoredRun]

    @property
    def first(self) -> StoredRun:
        return self.attempts[0]

    @property
    def latest(self) -> StoredRun:
        return self.attempts[-1]

    @property
    def rescued_by_rerun(self) -> bool:
        """Attempt 1 failed, and a later attempt of the same run went green."""
        return (
            len(self.attempts) > 1
            and self.first.verdict not in CI_GREEN_VERDICTS | NEUTRAL_VERDICTS
            and self.latest.verdict in CI_GREEN_VERDICTS
        )


@dataclass
class Objective:
    """Where a gate stands against its objective."""

    gate: str
    repository: str | None
    policy: Policy
    streak: int
    ci_streak: int
    trials: list[Trial]
    broken_by: StoredRun | None = None
    broken_reason: str = ""
    complete: bool = True
    """False when the history ran out before the streak ended."""
    ci_broken_by: StoredRun | None = None

    @property
    def required(self) -> int:
        return self.policy.required

    @property
    def met(self) -> bool:
        return self.streak >= self.policy.required

    @property
    def runs(self) -> list[StoredRun]:
        """Every run in scope that was looked at, newest first."""
        return sorted(
            (run for trial in self.trials for run in trial.attempts),
            key=lambda run: (run.started_at, run.attempt, run.id),
            reverse=True,
        )


def group_trials(runs: Sequence[StoredRun]) -> list[Trial]:
    """Group runs into trials, newest trial first (by its first attempt)."""
    grouped: dict[str, list[StoredRun]] = {}
    for run in runs:
        grouped.setdefault(run.trial_key, []).append(run)

    trials = [
        Trial(key, sorted(attempts, key=lambda run: (run.attempt, run.started_at)))
        for key, attempts in grouped.items()
    ]
    trials.sort(
        key=lambda trial: (trial.first.started_at, trial.first.id), reverse=True
    )
    return trials


def evaluate(
    runs: Sequence[StoredRun],
    policy: Policy,
    *,
    gate: str,
    repository: str | None = None,
) -> Objective:
    """The objective's state from ``runs`` (any order) under ``policy``."""
    trials = group_trials(runs)
    objective = Objective(
        gate=gate,
        repository=repository,
        policy=policy,
        streak=0,
        ci_streak=0,
        trials=trials,
    )
    _count_strict(objective)
    _count_ci(objective)
    return objective


def _count_strict(objective: Objective) -> None:
    counted = objective.policy.counted_verdicts
    for trial in objective.trials:
        first = trial.first
        if first.verdict in NEUTRAL_VERDICTS:
            continue

        if first.attempt != 1:
            objective.broken_by = first
            objective.broken_reason = (
                f"only re-run attempt {first.attempt} of CI run {first.ci_run_id} is "
                "recorded; a re-run never adds to the strict streak"
            )
            return

        if first.verdict in counted:
            objective.streak += 1
            continue

        objective.broken_by = first
        objective.broken_reason = _why_not_counted(trial, objective.policy)
        return
    objective.complete = False


def _count_ci(objective: Objective) -> None:
    for trial in objective.trials:
        decisive = [
            run for run in trial.attempts if run.verdict not in NEUTRAL_VERDICTS
        ]
        if not decisive:
            continue
        if decisive[-1].verdict in CI_GREEN_VERDICTS:
            objective.ci_streak += 1
            continue
        objective.ci_broken_by = decisive[-1]
        return


def _why_not_counted(trial: Trial, policy: Policy) -> str:
    first = trial.first
    if first.verdict == "flaky-pass":
        why = "passed only thanks to reruns (flaky-pass); strict policy"
    else:
        why = f"verdict {first.verdict}"
    if first.reason:
        why += f": {first.reason}"
    if trial.rescued_by_rerun:
        why += (
            f" (rescued by re-run attempt {trial.latest.attempt}, which never counts)"
        )
    return why
