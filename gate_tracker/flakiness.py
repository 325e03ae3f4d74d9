"""Flaky and broken tests: evidence, state, cost to the streak, and groups.

A test is *flaky* when it both passes and fails on the same code. The evidence,
strongest first (``docs/analysis.md`` has the exact rules):

- ``rerun``: it failed and then passed on rerun inside one run;
- ``same_commit``: it passed and failed on one commit, across runs or attempts;
- ``flips``: its outcome flips often over the window (flip rate = outcome
  changes / (runs - 1) at or above a threshold), with a pass between two
  failures, so that a regression (PPPFF) is never called flaky.

A test that has failed in every run since some commit, a streak too long to be
its old flakiness, is *broken*, and reported apart with the commit it broke at.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from gate_tracker.exceptions import ConfigurationError
from gate_tracker.failure_groups import (
    CoFailureGroup,
    SignatureGroup,
    co_failure_groups,
    signature_groups,
)
from gate_tracker.forecast import count_setting, jeffreys_interval
from gate_tracker.history import GateHistory, HistoryScope, Observation, RunInfo
from gate_tracker.records import FAILED_OUTCOMES
from gate_tracker.verdicts import CLEAN_VERDICTS

if TYPE_CHECKING:
    from gate_tracker.config import Settings

FLAKY_FORMAT = "gate-tracker-flaky"
FLAKY_VERSION = 1

EVIDENCE_KINDS = ("rerun", "same_commit", "flips")
STATES = ("new", "ongoing", "fixed", "broken")

_DECISIVE = frozenset({"passed", *FAILED_OUTCOMES})
_PASS, _FAIL = "P", "F"


@dataclass(frozen=True)
class FlakePolicy:
    """Thresholds and windows of the analysis, from ``[tool.gate-tracker]``.

    The keys and their defaults: ``flaky_window_days`` (30),
    ``flip_rate_threshold`` (0.05), ``fixed_after_runs`` (20),
    ``new_within_days`` (7), ``broken_after_runs`` (2),
    ``broken_significance`` (0.05), ``fixed_significance`` (0.05),
    ``cofailure_threshold`` (0.5) and ``cofailure_min_runs`` (2).
    """

    window_days: int = 30
    flip_rate_threshold: float = 0.05
    fixed_after_runs: int = 20
    new_within_days: int = 7
    broken_after_runs: int = 2
    broken_significance: float = 0.05
    fixed_significance: float = 0.05
    cofailure_threshold: float = 0.5
    cofailure_min_runs: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> FlakePolicy:
        """The policy from ``settings``, every key checked for type and range."""
        default = cls()
        return cls(
            window_days=count_setting(
                settings, "flaky_window_days", default.window_days
            ),
            flip_rate_threshold=fraction_setting(
                settings, "flip_rate_threshold", default.flip_rate_threshold
            ),
            fixed_after_runs=count_setting(
                settings, "fixed_after_runs", default.fixed_after_runs
            ),
            new_within_days=count_setting(
                settings, "new_within_days", default.new_within_days
            ),
            broken_after_runs=count_setting(
                settings, "broken_after_runs", default.broken_after_runs
            ),
            broken_significance=fraction_setting(
                settings, "broken_significance", default.broken_significance
            ),
            fixed_significance=fraction_setting(
                settings, "fixed_significance", default.fixed_significance
            ),
            cofailure_threshold=fraction_setting(
                settings, "cofailure_threshold", default.cofailure_threshold
            ),
            cofailure_min_runs=count_setting(
                settings, "cofailure_min_runs", default.cofailure_min_runs
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "flaky_window_days": self.window_days,
            "flip_rate_threshold": self.flip_rate_threshold,
            "fixed_after_runs": self.fixed_after_runs,
            "new_within_days": self.new_within_days,
            "broken_after_runs": self.broken_after_runs,
            "broken_significance": self.broken_significance,
            "fixed_significance": self.fixed_significance,
            "cofailure_threshold": self.cofailure_threshold,
            "cofailure_min_runs": self.cofailure_min_runs,
        }


@dataclass(frozen=True)
class BreakPoint:
    """Where a broken test started failing for good."""

    commit: str | None
    run_id: int
    started_at: datetime
    failing_runs: int
    """Runs it has failed in since, every one of them."""


@dataclass
class TestFinding:
    """One flaky or broken test, with its evidence and what it cost.

    ``runs`` counts the runs in the window where the test passed or failed;
    ``failures`` those where some attempt of it failed (a rerun that then
    passed included). ``runs_broken`` counts trials that were not clean passes
    with this test among the reasons (it failed or needed a rerun), and
    ``runs_broken_alone`` those where it was the only reason. ``impact`` shares
    each such trial among its reasons: the trials fixing this test alone would
    have saved, on average.
    """

    __test__ = False  # not a pytest test class, despite the name

    test_id: str
    state: str
    evidence: dict[str, int]
    runs: int
    failures: int
    final_failures: int
    failure_rate: float
    failure_low: float
    failure_high: float
    flip_rate: float
    first_seen: datetime
    last_seen: datetime
    runs_broken: int = 0
    runs_broken_alone: int = 0
    impact: float = 0.0
    signatures: list[tuple[str, int]] = field(default_factory=list)
    broken_at: BreakPoint | None = None
    group: int | None = None

    @property
    def is_flaky(self) -> bool:
        return any(self.evidence.values())

    def to_dict(self) -> dict[str, Any]:
        broken = self.broken_at
        return {
            "test_id": self.test_id,
            "state": self.state,
            "evidence": dict(self.evidence),
            "runs": self.runs,
            "failures": self.failures,
            "final_failures": self.final_failures,
            "failure_rate": {
                "estimate": round(self.failure_rate, 6),
                "low": round(self.failure_low, 6),
                "high": round(self.failure_high, 6),
                "interval": "jeffreys",
            },
            "flip_rate": round(self.flip_rate, 6),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "runs_broken": self.runs_broken,
            "runs_broken_alone": self.runs_broken_alone,
            "impact": round(self.impact, 6),
            "signatures": [
                {"signature": text, "count": count} for text, count in self.signatures
            ],
            "broken_at": None
            if broken is None
            else {
                "commit": broken.commit,
                "run_id": broken.run_id,
                "started_at": broken.started_at.isoformat(),
                "failing_runs": broken.failing_runs,
            },
            "group": self.group,
        }


@dataclass
class FlakeAnalysis:
    """The flaky and broken tests of a gate over a window, ranked by impact.

    ``flaky`` is ordered: tests still flaky (new or ongoing) by impact, then
    fixed ones; ``broken`` by impact.
    """

    scope: HistoryScope
    since: datetime
    until: datetime
    runs: int
    trials: int
    unclean_trials: int
    policy: FlakePolicy
    flaky: list[TestFinding] = field(default_factory=list)
    broken: list[TestFinding] = field(default_factory=list)
    groups: list[CoFailureGroup] = field(default_factory=list)
    signatures: list[SignatureGroup] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The documented ``flaky --json`` object (``docs/analysis.md``)."""
        return {
            "format": FLAKY_FORMAT,
            "version": FLAKY_VERSION,
            "gate": self.scope.gate,
            "repository": self.scope.repository,
            "scope": {
                "branch": self.scope.branch,
                "events": list(self.scope.events),
            },
            "window": {
                "days": self.policy.window_days,
                "since": self.since.isoformat(),
                "until": self.until.isoformat(),
                "runs": self.runs,
                "trials": self.trials,
                "unclean_trials": self.unclean_trials,
            },
            "policy": self.policy.to_dict(),
            "flaky": [finding.to_dict() for finding in self.flaky],
            "broken": [finding.to_dict() for finding in self.broken],
            "groups": [group.to_dict() for group in self.groups],
            "signatures": [group.to_dict() for group in self.signatures],
        }


# -- the analysis --------------------------------------------------------------


def analyze(
    history: GateHistory,
    policy: FlakePolicy | None = None,
    *,
    now: datetime | None = None,
) -> FlakeAnalysis:
    """Find the flaky and broken tests of ``history``.

    ``now`` (default: the end of the history) decides which tests are new:
    those first seen failing within ``policy.new_within_days`` of it.
    """
    policy = policy or FlakePolicy()
    now = now or history.until
    runs = {run.id: run for run in history.runs}
    trials = [run for run in history.runs if run.is_trial]
    unclean = [run for run in trials if run.verdict not in CLEAN_VERDICTS]
    analysis = FlakeAnalysis(
        scope=history.scope,
        since=history.since,
        until=history.until,
        runs=len(history.runs),
        trials=len(trials),
        unclean_trials=len(unclean),
        policy=policy,
    )

    reasons = _reasons(history.tests, {run.id for run in unclean})
    for test_id, observations in history.tests.items():
        finding = assess(test_id, observations, runs, policy, now=now)
        if finding is None:
            continue
        _charge(finding, reasons)
        if finding.state == "broken":
            analysis.broken.append(finding)
        else:
            analysis.flaky.append(finding)

    analysis.flaky.sort(key=_rank)
    analysis.broken.sort(key=_rank)
    analysis.groups = co_failure_groups(
        analysis.flaky + analysis.broken,
        history.tests,
        threshold=policy.cofailure_threshold,
        min_runs=policy.cofailure_min_runs,
    )
    analysis.signatures = signature_groups(history.tests, runs)
    return analysis


def assess(
    test_id: str,
    observations: Sequence[Observation],
    runs: dict[int, RunInfo],
    policy: FlakePolicy,
    *,
    now: datetime,
) -> TestFinding | None:
    """The finding for one test from its observations (in run order), or None.

    None when the test is neither flaky nor broken: it never failed, or its
    failures fit neither (one failure so far, or a regression that was fixed).
    """
    decisive = [seen for seen in observations if seen.outcome in _DECISIVE]
    failing = [seen for seen in decisive if seen.failed_attempt]
    if not failing:
        return None

    sequence = "".join(_FAIL if s.final_failure else _PASS for s in decisive)
    broke = _break_point(sequence, decisive, runs, policy)
    evidence = {
        "rerun": sum(seen.passed_on_rerun for seen in decisive),
        "same_commit": _same_commit_failures(decisive, runs),
        "flips": _flip_evidence(sequence, policy),
    }
    if broke is None and not any(evidence.values()):
        return None

    low, high = jeffreys_interval(len(failing), len(decisive))
    first_seen = runs[failing[0].run_id].started_at
    finding = TestFinding(
        test_id=test_id,
        state="broken",
        evidence=evidence,
        runs=len(decisive),
        failures=len(failing),
        final_failures=sequence.count(_FAIL),
        failure_rate=len(failing) / len(decisive),
        failure_low=low,
        failure_high=high,
        flip_rate=flip_rate(sequence),
        first_seen=first_seen,
        last_seen=runs[failing[-1].run_id].started_at,
        signatures=_signatures(failing),
        broken_at=broke,
    )
    if broke is None:
        finding.state = _flaky_state(decisive, first_seen, policy, now)
    return finding


def flip_rate(sequence: str) -> float:
    """Outcome changes / (runs - 1) over a sequence of ``P`` and ``F``."""
    if len(sequence) < 2:
        return 0.0
    flips = sum(a != b for a, b in itertools.pairwise(sequence))
    return flips / (len(sequence) - 1)


def _flip_evidence(sequence: str, policy: FlakePolicy) -> int:
    # Only a pass between two failures makes flips evidence: PPPFF flips once
    # and is a regression, PFPFP flips four times and is flaky.
    first, last = sequence.find(_FAIL), sequence.rfind(_FAIL)
    if _PASS not in sequence[first:last]:
        return 0
    if flip_rate(sequence) < policy.flip_rate_threshold:
        return 0
    return sum(a != b for a, b in itertools.pairwise(sequence))


def _same_commit_failures(
    decisive: Sequence[Observation], runs: dict[int, RunInfo]
) -> int:
    passed_on: set[str] = set()
    failed_on: Counter[str] = Counter()
    for seen in decisive:
        commit = runs[seen.run_id].commit
        if commit is None:
            continue
        if seen.final_failure:
            failed_on[commit] += 1
        else:
            passed_on.add(commit)
    return sum(count for commit, count in failed_on.items() if commit in passed_on)


def _break_point(
    sequence: str,
    decisive: Sequence[Observation],
    runs: dict[int, RunInfo],
    policy: FlakePolicy,
) -> BreakPoint | None:
    streak = len(sequence) - len(sequence.rstrip(_FAIL))
    if streak < policy.broken_after_runs:
        return None

    # A flaky test fails several times in a row now and then: the streak must
    # be unlikely under the final-failure rate it had before the streak.
    before = sequence[:-streak]
    rate_before = before.count(_FAIL) / len(before) if before else 0.0
    if rate_before**streak >= policy.broken_significance:
        return None

    first = runs[decisive[-streak].run_id]
    return BreakPoint(
        commit=first.commit,
        run_id=first.id,
        started_at=first.started_at,
        failing_runs=streak,
    )


def _flaky_state(
    decisive: Sequence[Observation],
    first_seen: datetime,
    policy: FlakePolicy,
    now: datetime,
) -> str:
    quiet = 0
    for seen in reversed(decisive):
        if seen.failed_attempt:
            break
        quiet += 1
    if _quiet_long_enough(decisive, quiet, policy):
        return "fixed"
    if first_seen >= now - timedelta(days=policy.new_within_days):
        return "new"
    return "ongoing"


def _quiet_long_enough(
    decisive: Sequence[Observation], quiet: int, policy: FlakePolicy
) -> bool:
    if quiet < policy.fixed_after_runs:
        return False

    # A test failing 4 % of runs passes 20 in a row almost half the time: the
    # quiet stretch must also be unlikely under its failure rate before it.
    before = decisive[: len(decisive) - quiet]
    rate_before = sum(seen.failed_attempt for seen in before) / len(before)
    return bool((1 - rate_before) ** quiet < policy.fixed_significance)


def _reasons(
    tests: dict[str, list[Observation]], unclean: set[int]
) -> dict[int, set[str]]:
    reasons: dict[int, set[str]] = {run_id: set() for run_id in unclean}
    for test_id, observations in tests.items():
        for seen in observations:
            if seen.run_id in reasons and seen.failed_attempt:
                reasons[seen.run_id].add(test_id)
    return reasons


def _charge(finding: TestFinding, reasons: dict[int, set[str]]) -> None:
    for culprits in reasons.values():
        if finding.test_id not in culprits:
            continue
        finding.runs_broken += 1
        finding.runs_broken_alone += len(culprits) == 1
        finding.impact += 1 / len(culprits)


def _rank(finding: TestFinding) -> tuple[bool, float, int, int, str]:
    return (
        finding.state == "fixed",
        -finding.impact,
        -finding.runs_broken,
        -finding.failures,
        finding.test_id,
    )


def _signatures(failing: Iterable[Observation]) -> list[tuple[str, int]]:
    counts = Counter(seen.signature for seen in failing if seen.signature)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def fraction_setting(settings: Settings, key: str, default: float) -> float:
    """A number between 0 (excluded) and 1 from ``[tool.gate-tracker]``."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{settings.source}: [tool.gate-tracker] {key} must be a number, "
            f"not {value!r}"
        )
    if not 0 < value <= 1:
        raise ConfigurationError(
            f"{settings.source}: [tool.gate-tracker] {key} must be above 0 and at "
            f"most 1, not {value}"
        )
    return float(value)
