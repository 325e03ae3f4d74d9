"""Forecasts of the consecutive-pass objective: pass rate, streak odds, burn-in.

Every figure works on *trials*: first attempts of gate runs in scope, without
cancelled runs (they neither add to nor reset a streak). A trial is clean when
its verdict is ``pass`` (or ``flaky-pass`` too, when reruns count). The
definitions and defaults are written down in ``docs/analysis.md``.

The pass rate is estimated on recent, homogeneous trials: the last
``window_runs`` trials, or fewer when a change in the rate was detected inside
that window. Its interval is the Jeffreys interval, and the forecasts integrate
over the Jeffreys posterior ``Beta(passes + 1/2, failures + 1/2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from gate_tracker.exceptions import ConfigurationError
from gate_tracker.proof import CONFIDENCE, Proof, lower_bound, proof
from gate_tracker.verdicts import (
    CLEAN_VERDICTS,
    NEUTRAL_VERDICTS,
    counted_verdicts,
)

if TYPE_CHECKING:
    from gate_tracker.config import Settings
    from gate_tracker.records import StoredRun

DEFAULT_WINDOW_RUNS = 50
DEFAULT_HORIZON_RUNS = 1000
HISTORY_FACTOR = 4
"""The change-point search looks at this many windows of trials."""

CHANGE_ALPHA = 0.01
"""Family-wise significance of a change point (Bonferroni over the splits)."""

MIN_SEGMENT = 10
"""Fewest trials on each side of a change point."""

QUADRATURE_NODES = 256
"""Equal-probability nodes of the posterior used to integrate over the rate."""


@dataclass(frozen=True)
class TrialOutcome:
    """A trial of the gate (a first attempt, not cancelled) and whether it was clean."""

    run_id: int
    started_at: datetime
    clean: bool


@dataclass(frozen=True)
class ForecastPolicy:
    """How much history the forecast uses; see ``from_settings`` for the keys."""

    window_runs: int = DEFAULT_WINDOW_RUNS
    horizon_runs: int = DEFAULT_HORIZON_RUNS
    confidence: float = CONFIDENCE

    @property
    def history_runs(self) -> int:
        """How many trials to load: the change-point search looks this far."""
        return self.window_runs * HISTORY_FACTOR

    @classmethod
    def from_settings(cls, settings: Settings) -> ForecastPolicy:
        """The policy from ``[tool.gate-tracker]``.

        Keys: ``forecast_window_runs`` (default 50) and
        ``forecast_horizon_runs`` (default 1000).
        """
        return cls(
            window_runs=count_setting(
                settings, "forecast_window_runs", DEFAULT_WINDOW_RUNS
            ),
            horizon_runs=count_setting(
                settings, "forecast_horizon_runs", DEFAULT_HORIZON_RUNS
            ),
        )


@dataclass(frozen=True)
class PassRate:
    """The clean-pass rate per trial, estimated on recent homogeneous trials.

    ``basis`` says which trials: ``"window"`` (the last ``window_runs``),
    ``"change-point"`` (those since a detected change in the rate) or
    ``"all"`` (every trial, when there are fewer than a window). ``since`` is
    the start of the first trial used. With no trials the estimate and the
    interval are None.
    """

    trials: int
    clean_passes: int
    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    basis: str
    since: datetime | None
    change_point: datetime | None


@dataclass(frozen=True)
class RunsNeeded:
    """How many more trials it takes to complete the objective.

    ``median`` and ``p90`` are None when the objective is not expected within
    ``horizon`` trials at that probability; ``within_horizon`` is the
    probability of completing it within ``horizon`` trials.
    """

    median: int | None
    p90: int | None
    horizon: int
    within_horizon: float


@dataclass(frozen=True)
class Forecast:
    """The objective's outlook: rate, odds of completing it, runs still needed."""

    required: int
    streak: int
    rate: PassRate
    complete_probability: float | None
    """Probability that the next ``remaining`` trials are all clean passes."""

    runs_needed: RunsNeeded | None
    proof: Proof

    @property
    def remaining(self) -> int:
        return max(self.required - self.streak, 0)

    def to_dict(self) -> dict[str, Any]:
        """The ``forecast`` object of ``status --json`` (``docs/analysis.md``)."""
        rate = self.rate
        needed = self.runs_needed
        return {
            "required": self.required,
            "streak": self.streak,
            "remaining": self.remaining,
            "pass_rate": {
                "trials": rate.trials,
                "clean_passes": rate.clean_passes,
                "estimate": _rounded(rate.estimate),
                "low": _rounded(rate.low),
                "high": _rounded(rate.high),
                "confidence": rate.confidence,
                "interval": "jeffreys",
                "basis": rate.basis,
                "since": _iso(rate.since),
                "change_point": _iso(rate.change_point),
            },
            "complete_probability": _rounded(self.complete_probability),
            "runs_needed": None
            if needed is None
            else {
                "median": needed.median,
                "p90": needed.p90,
                "horizon": needed.horizon,
                "within_horizon": _rounded(needed.within_horizon),
            },
            "proof": {
                "confidence": self.proof.confidence,
                "lower_bound": _rounded(self.proof.lower_bound),
                "streak_to_show": {
                    f"{rate:g}": streak
                    for rate, streak in self.proof.streak_to_show.items()
                },
            },
        }


@dataclass(frozen=True)
class BurnIn:
    """The burn-in of one commit: its trials and the pass rate they imply.

    ``lower_bound`` is the one-sided exact (Clopper-Pearson) lower confidence
    bound on the clean-pass rate; None without trials.
    """

    commit: str
    trials: int
    clean_passes: int
    rerun_passes: int
    failures: int
    """Trials that were neither clean nor passed on rerun (fail, timeout, ...)."""

    confidence: float
    lower_bound: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "trials": self.trials,
            "clean_passes": self.clean_passes,
            "rerun_passes": self.rerun_passes,
            "failures": self.failures,
            "confidence": self.confidence,
            "lower_bound": _rounded(self.lower_bound),
        }


# -- trials --------------------------------------------------------------------


def is_trial(run: StoredRun) -> bool:
    """True when ``run`` is a trial: a first attempt that was not cancelled."""
    return run.attempt == 1 and run.verdict not in NEUTRAL_VERDICTS


def trials_of(
    runs: Sequence[StoredRun], *, count_rerun_passes: bool = False
) -> list[TrialOutcome]:
    """The trials among ``runs`` (in any order), oldest first.

    With ``count_rerun_passes`` a ``flaky-pass`` counts as clean, as in the
    CI streak.
    """
    clean = counted_verdicts(count_rerun_passes)
    chosen = sorted(
        (run for run in runs if is_trial(run)), key=lambda r: (r.started_at, r.id)
    )
    return [TrialOutcome(r.id, r.started_at, r.verdict in clean) for r in chosen]


# -- the pass rate -------------------------------------------------------------


def jeffreys_interval(
    passes: int, trials: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The Jeffreys interval for a binomial proportion.

    The equal-tailed interval of the posterior ``Beta(passes + 1/2, trials -
    passes + 1/2)``, with the lower end 0 when ``passes`` is 0 and the upper
    end 1 when every trial passed (Brown, Cai and DasGupta, 2001).
    """
    if trials <= 0:
        raise ValueError("an interval needs at least one trial")

    tail = (1 - confidence) / 2
    low, high = posterior(passes, trials).ppf([tail, 1 - tail])
    if passes == 0:
        low = 0.0
    if passes == trials:
        high = 1.0
    return float(low), float(high)


def posterior(passes: int, trials: int) -> Any:
    """The Jeffreys posterior of the pass rate: a frozen ``scipy.stats.beta``."""
    return stats.beta(passes + 0.5, trials - passes + 0.5)


def change_point(
    outcomes: Sequence[bool],
    *,
    alpha: float = CHANGE_ALPHA,
    min_segment: int = MIN_SEGMENT,
) -> int | None:
    """The index where the last change in the pass rate begins, or None.

    Binary segmentation with a likelihood-ratio (G) test: every split leaving
    ``min_segment`` outcomes on each side is tested for a different rate before
    and after it; the best split counts when its p-value times the number of
    splits tried (Bonferroni) is below ``alpha``. The search then continues
    after that split, so the change found is the last one.
    """
    found: int | None = None
    start = 0
    while True:
        split = _best_split(outcomes[start:], alpha=alpha, min_segment=min_segment)
        if split is None:
            return found
        start += split
        found = start


def _best_split(
    outcomes: Sequence[bool], *, alpha: float, min_segment: int
) -> int | None:
    n = len(outcomes)
    passes = int(sum(outcomes))
    if n < 2 * min_segment or passes in (0, n):
        return None

    # Every split at once: a 2x2 table of (passes, failures) before and after.
    cumulative = np.cumsum(np.asarray(outcomes, dtype=float))
    split = np.arange(min_segment, n - min_segment + 1)
    before_n = split.astype(float)
    after_n = n - before_n
    before_pass = cumulative[split - 1]
    after_pass = passes - before_pass
    observed = np.stack(
        [before_pass, before_n - before_pass, after_pass, after_n - after_pass],
        axis=1,
    )

    # Expected counts under one common rate, from the table's margins.
    rate = passes / n
    expected = np.stack(
        [before_n * rate, before_n * (1 - rate), after_n * rate, after_n * (1 - rate)],
        axis=1,
    )
    test = stats.power_divergence(
        observed, expected, ddof=2, axis=1, lambda_="log-likelihood"
    )

    best = int(np.argmin(test.pvalue))
    if test.pvalue[best] * len(split) >= alpha:
        return None
    return int(split[best])


def pass_rate(
    trials: Sequence[TrialOutcome],
    *,
    window_runs: int = DEFAULT_WINDOW_RUNS,
    confidence: float = CONFIDENCE,
) -> PassRate:
    """The clean-pass rate over recent homogeneous ``trials`` (oldest first).

    The sample is the last ``window_runs`` trials, cut further to those after
    the last change point found among all ``trials``.
    """
    outcomes = [trial.clean for trial in trials]
    change = change_point(outcomes)
    start = max(len(trials) - window_runs, 0)
    basis = "window" if start > 0 else "all"
    if change is not None and change >= start:
        start, basis = change, "change-point"

    sample = trials[start:]
    if not sample:
        return PassRate(0, 0, None, None, None, confidence, basis, None, None)

    passes = sum(trial.clean for trial in sample)
    low, high = jeffreys_interval(passes, len(sample), confidence)
    return PassRate(
        trials=len(sample),
        clean_passes=passes,
        estimate=passes / len(sample),
        low=low,
        high=high,
        confidence=confidence,
        basis=basis,
        since=sample[0].started_at,
        change_point=trials[change].started_at if change is not None else None,
    )


# -- the streak forecast -------------------------------------------------------


def all_pass_probability(runs: int, passes: int, trials: int) -> float:
    """Probability that the next ``runs`` trials all pass, given the history.

    The beta-binomial posterior predictive under the Jeffreys prior; for a
    known rate p it tends to ``p ** runs``.
    """
    if runs <= 0:
        return 1.0
    prior_a, prior_b = passes + 0.5, trials - passes + 0.5
    return float(stats.betabinom.pmf(runs, runs, prior_a, prior_b))


def streak_cdf(
    rates: float | Sequence[float] | np.ndarray,
    required: int,
    streak: int,
    horizon: int,
) -> np.ndarray:
    """P(the streak reaches ``required`` within t more trials), t = 0..horizon.

    A Markov chain with states 0..required-1 (the current streak) and an
    absorbing state ``required``: a clean pass moves one state up, anything
    else back to 0. ``rates`` may be one rate or several; the result has one
    row per rate.
    """
    p = np.atleast_1d(np.asarray(rates, dtype=float))
    cdf = np.ones((len(p), horizon + 1))
    if streak >= required:
        return cdf

    state = np.zeros((len(p), required))
    state[:, streak] = 1.0
    absorbed = np.zeros(len(p))
    cdf[:, 0] = 0.0
    for step in range(1, horizon + 1):
        moved = state * p[:, None]
        reset = state.sum(axis=1) * (1 - p)
        absorbed += moved[:, -1]
        state[:, 1:] = moved[:, :-1]
        state[:, 0] = reset
        cdf[:, step] = absorbed
    return cdf


def expected_runs(rate: float, required: int, streak: int = 0) -> float:
    """Mean number of trials to reach ``required`` from ``streak`` at ``rate``.

    Solved from the chain's fundamental matrix; from a streak of 0 it equals
    ``(1 - p**k) / ((1 - p) * p**k)``.
    """
    if streak >= required:
        return 0.0

    transient = np.zeros((required, required))
    for state in range(required):
        transient[state, 0] += 1 - rate
        if state + 1 < required:
            transient[state, state + 1] = rate
    steps = np.linalg.solve(np.eye(required) - transient, np.ones(required))
    return float(steps[streak])


def runs_needed(
    passes: int,
    trials: int,
    *,
    required: int,
    streak: int,
    horizon: int = DEFAULT_HORIZON_RUNS,
) -> RunsNeeded:
    """Median and 90th percentile of the trials still needed, over the posterior.

    The chain's distribution is averaged over ``QUADRATURE_NODES``
    equal-probability quantiles of the Jeffreys posterior, so the answer is
    deterministic. A quantile not reached within ``horizon`` trials is None.
    """
    nodes = (np.arange(QUADRATURE_NODES) + 0.5) / QUADRATURE_NODES
    rates = posterior(passes, trials).ppf(nodes)
    cdf = streak_cdf(rates, required, streak, horizon).mean(axis=0)
    return RunsNeeded(
        median=_quantile(cdf, 0.5),
        p90=_quantile(cdf, 0.9),
        horizon=horizon,
        within_horizon=float(cdf[-1]),
    )


def _quantile(cdf: np.ndarray, level: float) -> int | None:
    # A tiny tolerance keeps a CDF that reaches the level exactly from being
    # pushed one step later by rounding in the mixture.
    reached = np.nonzero(cdf >= level - 1e-12)[0]
    return int(reached[0]) if len(reached) else None


# -- putting it together -------------------------------------------------------


def forecast(
    trials: Sequence[TrialOutcome],
    *,
    required: int,
    streak: int,
    policy: ForecastPolicy | None = None,
) -> Forecast:
    """The objective's forecast from ``trials`` (oldest first) and the streak.

    ``streak`` is the current streak as the objective counts it. Without
    trials there is no rate, and so no odds and no runs needed.
    """
    policy = policy or ForecastPolicy()
    rate = pass_rate(
        trials, window_runs=policy.window_runs, confidence=policy.confidence
    )
    remaining = max(required - streak, 0)

    probability: float | None = None
    needed: RunsNeeded | None = None
    if rate.trials:
        probability = all_pass_probability(remaining, rate.clean_passes, rate.trials)
        needed = runs_needed(
            rate.clean_passes,
            rate.trials,
            required=required,
            streak=min(streak, required),
            horizon=policy.horizon_runs,
        )
    return Forecast(
        required=required,
        streak=streak,
        rate=rate,
        complete_probability=probability,
        runs_needed=needed,
        proof=proof(required, policy.confidence),
    )


def burn_in(
    commit: str,
    runs: Sequence[StoredRun],
    *,
    confidence: float = CONFIDENCE,
) -> BurnIn:
    """The burn-in of ``commit`` from its gate ``runs`` (a release candidate)."""
    chosen = [run for run in runs if is_trial(run)]
    clean = sum(run.verdict in CLEAN_VERDICTS for run in chosen)
    rerun = sum(run.verdict == "flaky-pass" for run in chosen)
    bound = lower_bound(clean, len(chosen), confidence) if chosen else None
    return BurnIn(
        commit=commit,
        trials=len(chosen),
        clean_passes=clean,
        rerun_passes=rerun,
        failures=len(chosen) - clean - rerun,
        confidence=confidence,
        lower_bound=bound,
    )


def burn_in_lines(result: BurnIn) -> list[str]:
    """Readable lines for ``status --commit``: the trials and the bound."""
    head = (
        f"Burn-in of {result.commit[:12]}: {_plural(result.trials, 'trial')}, "
        f"{_plural(result.clean_passes, 'clean pass', 'clean passes')}, "
        f"{result.rerun_passes} passed on rerun, {result.failures} failed"
    )
    if result.lower_bound is None:
        return [head + ": no trials of this commit in scope."]
    return [
        f"{head}: the clean-pass rate is above {result.lower_bound:.3f} "
        f"({result.confidence:.0%} confidence)."
    ]


def describe(result: Forecast) -> list[str]:
    """Readable lines for ``status``: the rate, the odds and what 20/20 proves."""
    rate = result.rate
    if rate.estimate is None or rate.low is None or rate.high is None:
        return ["Forecast: no trials in scope yet, so no pass rate to forecast from."]

    basis = {
        "window": f"the last {rate.trials} trials",
        "all": "the only trial" if rate.trials == 1 else f"all {rate.trials} trials",
        "change-point": f"the {rate.trials} trials since the rate changed",
    }[rate.basis]
    lines = [
        f"Clean-pass rate: {rate.estimate:.1%} "
        f"({rate.confidence:.0%} interval {rate.low:.1%}-{rate.high:.1%}) "
        f"over {basis}",
    ]
    lines.append(_outlook(result))

    shown = result.proof
    targets = ", ".join(
        f"{streak} show {target:g}" for target, streak in shown.streak_to_show.items()
    )
    lines.append(
        f"{shown.required}/{shown.required} would show only that the rate is above "
        f"{shown.lower_bound:.3f} ({shown.confidence:.0%} confidence); {targets}."
    )
    return lines


def _outlook(result: Forecast) -> str:
    needed = result.runs_needed
    if result.remaining == 0 or needed is None:
        return "Forecast: the objective is met."

    odds = result.complete_probability or 0.0
    head = (
        f"Forecast: {odds:.0%} chance the next {result.remaining} trials "
        f"complete {result.required}/{result.required}"
    )
    if needed.median is None:
        return f"{head}; not expected within {needed.horizon} runs."
    if needed.p90 is None:
        return (
            f"{head}; runs needed: median {needed.median}, 90th percentile "
            f"beyond {needed.horizon}."
        )
    return f"{head}; runs needed: median {needed.median}, 90th percentile {needed.p90}."


def count_setting(settings: Settings, key: str, default: int) -> int:
    """A whole number of at least 1 from ``[tool.gate-tracker]``."""
    value = settings.integer(key, default)
    if value < 1:
        raise ConfigurationError(
            f"{settings.source}: [tool.gate-tracker] {key} must be at least 1, "
            f"not {value}"
        )
    return value


def _plural(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
