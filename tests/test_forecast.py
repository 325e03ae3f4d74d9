"""The forecast's figures against closed forms, published values and simulation."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

from gate_tracker import forecast
from gate_tracker.config import Settings
from gate_tracker.exceptions import ConfigurationError
from gate_tracker.forecast import (
    ForecastPolicy,
    TrialOutcome,
    all_pass_probability,
    burn_in,
    change_point,
    describe,
    expected_runs,
    jeffreys_interval,
    pass_rate,
    posterior,
    runs_needed,
    streak_cdf,
    trials_of,
)
from gate_tracker.storage import Store
from tests.conftest import T0, build_session


def outcomes(pattern: str) -> list[TrialOutcome]:
    """Trials one hour apart from ``T0``: ``P`` a clean pass, anything else not."""
    return [
        TrialOutcome(index + 1, T0 + timedelta(hours=index), mark == "P")
        for index, mark in enumerate(pattern)
    ]


def simulated_runs_needed(
    passes: int, trials: int, *, required: int, streak: int, seed: int
) -> np.ndarray:
    """Trials until the streak reaches ``required``, by direct simulation.

    Each path draws its own rate from the Jeffreys posterior, then runs trials
    until the streak is complete; paths not done within 1000 trials get inf.
    """
    rng = np.random.default_rng(seed)
    paths = 20_000
    rate = rng.beta(passes + 0.5, trials - passes + 0.5, size=paths)
    current = np.full(paths, streak)
    done = np.full(paths, np.inf)
    for step in range(1, 1001):
        current = np.where(rng.random(paths) < rate, current + 1, 0)
        done[(current >= required) & np.isinf(done)] = step
    return done


# -- closed forms and published values -----------------------------------------


def test_expected_runs_to_a_streak_of_20_at_095_is_the_closed_form_358() -> None:
    closed_form = (1 - 0.95**20) / ((1 - 0.95) * 0.95**20)

    mean = expected_runs(0.95, 20)

    assert mean == pytest.approx(closed_form, rel=1e-12)
    assert round(mean, 1) == 35.8


def test_expected_runs_from_a_partial_streak_matches_the_chain_distribution() -> None:
    """The mean from the fundamental matrix equals the mean of the CDF's law."""
    cdf = streak_cdf(0.9, 10, 4, 5000)[0]

    mean_from_cdf = float(np.sum(1 - cdf[:-1]))

    assert mean_from_cdf == pytest.approx(expected_runs(0.9, 10, 4), rel=1e-9)


def test_reaching_20_within_20_runs_needs_all_to_pass_0358_at_095() -> None:
    cdf = streak_cdf(0.95, 20, 0, 40)[0]

    assert cdf[19] == 0.0
    assert cdf[20] == pytest.approx(0.95**20, rel=1e-12)
    assert round(cdf[20], 3) == 0.358


def test_predictive_for_the_next_20_tends_to_p_to_the_20_for_a_known_rate() -> None:
    """With 95,000 passes out of 100,000 the rate is all but known: 0.358."""
    probability = all_pass_probability(20, 95_000, 100_000)

    assert probability == pytest.approx(0.95**20, abs=5e-4)
    assert round(probability, 3) == 0.358


def test_predictive_equals_scipy_betabinom_and_the_beta_integral() -> None:
    """Beta-binomial predictive against the integral of p^k over the posterior."""
    passes, trials, runs = 46, 50, 14
    a, b = passes + 0.5, trials - passes + 0.5
    integral, _ = integrate.quad(
        lambda p: p**runs * stats.beta.pdf(p, a, b), 0, 1, epsabs=1e-13
    )

    probability = all_pass_probability(runs, passes, trials)

    assert probability == pytest.approx(stats.betabinom.pmf(runs, runs, a, b))
    assert probability == pytest.approx(integral, rel=1e-8)
    assert probability == pytest.approx(special.beta(a + runs, b) / special.beta(a, b))


def test_jeffreys_interval_matches_the_published_34_of_120_example() -> None:
    """34 of 120 at 95 %: 0.208569 to 0.368406 (codingace.net's method table)."""
    low, high = jeffreys_interval(34, 120)

    assert low == pytest.approx(0.208569, abs=1e-6)
    assert high == pytest.approx(0.368406, abs=1e-6)


def test_jeffreys_interval_pins_the_ends_at_zero_and_all_passes() -> None:
    low_none, high_none = jeffreys_interval(0, 10)
    low_all, high_all = jeffreys_interval(10, 10)

    assert low_none == 0.0
    assert high_none == pytest.approx(stats.beta.ppf(0.975, 0.5, 10.5))
    assert low_all == pytest.approx(stats.beta.ppf(0.025, 10.5, 0.5))
    assert high_all == 1.0


def test_the_posterior_without_data_is_the_arcsine_law() -> None:
    """Beta(1/2, 1/2) has the closed-form quantile sin^2(pi q / 2)."""
    prior = posterior(0, 0)

    for level in (0.1, 0.25, 0.5, 0.9):
        assert prior.ppf(level) == pytest.approx(math.sin(math.pi * level / 2) ** 2)


def test_an_interval_needs_a_trial() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        jeffreys_interval(0, 0)


# -- the runs still needed -----------------------------------------------------


def test_runs_needed_quantiles_match_a_seeded_simulation() -> None:
    needed = runs_needed(46, 50, required=20, streak=6)
    simulated = simulated_runs_needed(46, 50, required=20, streak=6, seed=7)

    assert needed.median == pytest.approx(np.quantile(simulated, 0.5), rel=0.08)
    assert needed.p90 == pytest.approx(np.quantile(simulated, 0.9), rel=0.08)
    assert needed.within_horizon == pytest.approx(
        np.mean(np.isfinite(simulated)), abs=0.01
    )


def test_runs_needed_is_deterministic() -> None:
    first = runs_needed(40, 50, required=20, streak=0)
    second = runs_needed(40, 50, required=20, streak=0)

    assert first == second


def test_a_low_rate_is_not_expected_within_the_horizon() -> None:
    """At about 20 % the objective is out of reach: no huge numbers, a horizon."""
    needed = runs_needed(10, 50, required=20, streak=0, horizon=1000)

    assert needed.median is None
    assert needed.p90 is None
    assert needed.within_horizon < 0.01


def test_a_met_objective_needs_no_more_runs() -> None:
    result = forecast.forecast(outcomes("P" * 30), required=20, streak=30)

    assert result.remaining == 0
    assert result.complete_probability == 1.0
    assert result.runs_needed is not None
    assert result.runs_needed.median == 0
    assert "the objective is met" in describe(result)[1]


# -- the pass rate and its change point ----------------------------------------


def test_a_drop_in_the_rate_is_found_as_a_change_point() -> None:
    """40 clean passes, then every other trial fails: the change is at 40."""
    history = "P" * 40 + "FP" * 10

    assert change_point([mark == "P" for mark in history]) == 40


def test_a_steady_rate_has_no_change_point() -> None:
    """One failure in every ten, for 100 trials: homogeneous."""
    history = "PPPPFPPPPP" * 10

    assert change_point([mark == "P" for mark in history]) is None


def test_the_rate_is_estimated_since_the_last_change() -> None:
    trials = outcomes("P" * 40 + "FP" * 10)

    rate = pass_rate(trials)

    assert rate.basis == "change-point"
    assert (rate.trials, rate.clean_passes, rate.estimate) == (20, 10, 0.5)
    assert rate.since == trials[40].started_at
    assert rate.change_point == trials[40].started_at
    assert (rate.low, rate.high) == pytest.approx(jeffreys_interval(10, 20))


def test_the_rate_uses_the_last_50_trials_of_a_long_steady_history() -> None:
    trials = outcomes("PPPPFPPPPP" * 8)

    rate = pass_rate(trials)

    assert rate.basis == "window"
    assert (rate.trials, rate.clean_passes) == (50, 45)
    assert rate.since == trials[30].started_at
    assert rate.change_point is None


def test_a_short_history_uses_all_its_trials() -> None:
    rate = pass_rate(outcomes("PPFPP"))

    assert (rate.basis, rate.trials, rate.clean_passes) == ("all", 5, 4)


def test_without_trials_there_is_nothing_to_forecast() -> None:
    result = forecast.forecast([], required=20, streak=0)

    assert result.rate.estimate is None
    assert result.complete_probability is None
    assert result.runs_needed is None
    assert describe(result) == [
        "Forecast: no trials in scope yet, so no pass rate to forecast from."
    ]


def test_forecast_figures_and_their_json_shape() -> None:
    """9 of 10 recent trials clean, streak 14 of 20: odds of the next 6."""
    result = forecast.forecast(outcomes("PPFPPPPPPP"), required=20, streak=14)
    document = result.to_dict()

    assert document["remaining"] == 6
    assert document["complete_probability"] == pytest.approx(
        stats.betabinom.pmf(6, 6, 9.5, 1.5), abs=1e-6
    )
    assert document["pass_rate"]["interval"] == "jeffreys"
    assert document["pass_rate"]["estimate"] == 0.9
    assert document["proof"] == {
        "confidence": 0.95,
        "lower_bound": 0.860892,
        "streak_to_show": {"0.95": 59, "0.99": 299},
    }
    assert set(document["runs_needed"]) == {
        "median",
        "p90",
        "horizon",
        "within_horizon",
    }


def test_described_lines_name_the_rate_odds_and_the_proof() -> None:
    result = forecast.forecast(outcomes("PPFPPPPPPP"), required=20, streak=14)

    lines = describe(result)

    assert lines[0].startswith("Clean-pass rate: 90.0% (95% interval ")
    assert lines[0].endswith("over all 10 trials")
    assert lines[1].startswith("Forecast: ")
    assert "chance the next 6 trials complete 20/20" in lines[1]
    assert lines[2] == (
        "20/20 would show only that the rate is above 0.861 (95% confidence); "
        "59 show 0.95, 299 show 0.99."
    )


# -- trials and burn-in from stored runs ---------------------------------------


def test_trials_leave_out_cancelled_runs_and_rerun_attempts(store: Store) -> None:
    for index, verdict in enumerate(["pass", "cancelled", "flaky-pass", "fail"]):
        store.record_session(build_session(index, verdict=verdict))
    store.record_session(build_session(3, verdict="pass", run_id="1003", attempt=2))
    runs = store.runs("e2e-gate")

    strict = trials_of(runs)
    lenient = trials_of(runs, count_rerun_passes=True)

    assert [trial.clean for trial in strict] == [True, False, False]
    assert [trial.clean for trial in lenient] == [True, True, False]


def test_burn_in_of_a_commit_counts_its_trials_and_bounds_the_rate(
    store: Store,
) -> None:
    commit = "c0ffee" + "0" * 34
    verdicts = ["pass"] * 18 + ["flaky-pass", "fail", "cancelled"]
    for index, verdict in enumerate(verdicts):
        store.record_session(
            build_session(
                index, verdict=verdict, commit=commit, event="workflow_dispatch"
            )
        )
    store.record_session(build_session(30, verdict="pass"))

    result = burn_in(commit, store.runs("e2e-gate", commit=commit))

    assert (result.trials, result.clean_passes) == (20, 18)
    assert (result.rerun_passes, result.failures) == (1, 1)
    assert result.lower_bound == pytest.approx(stats.beta.ppf(0.05, 18, 3))


def test_burn_in_of_twenty_clean_runs_proves_0861(store: Store) -> None:
    commit = "5eed" + "0" * 36
    for index in range(20):
        store.record_session(build_session(index, commit=commit))

    result = burn_in(commit, store.runs("e2e-gate", commit=commit))

    assert result.to_dict() == {
        "commit": commit,
        "trials": 20,
        "clean_passes": 20,
        "rerun_passes": 0,
        "failures": 0,
        "confidence": 0.95,
        "lower_bound": 0.860892,
    }


def test_burn_in_without_runs_has_no_bound() -> None:
    result = burn_in("abc", [])

    assert (result.trials, result.lower_bound) == (0, None)


# -- settings ------------------------------------------------------------------


def test_policy_reads_its_keys_from_settings() -> None:
    settings = Settings(
        source=Path("pyproject.toml"),
        values={"forecast_window_runs": 30, "forecast_horizon_runs": 200},
    )

    policy = ForecastPolicy.from_settings(settings)

    assert (policy.window_runs, policy.horizon_runs, policy.history_runs) == (
        30,
        200,
        120,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be at least 1, not 0"), ("50", "must be a whole number")],
)
def test_a_bad_window_setting_names_the_key_and_the_file(
    value: object, message: str
) -> None:
    settings = Settings(
        source=Path("pyproject.toml"), values={"forecast_window_runs": value}
    )

    with pytest.raises(ConfigurationError, match=message) as caught:
        ForecastPolicy.from_settings(settings)

    assert "pyproject.toml: [tool.gate-tracker] forecast_window_runs" in str(
        caught.value
    )
