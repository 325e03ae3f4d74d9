"""Flaky and broken tests on hand-built histories: exact flags, states and costs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gate_tracker.config import Settings
from gate_tracker.exceptions import ConfigurationError
from gate_tracker.flakiness import (
    FLAKY_FORMAT,
    FLAKY_VERSION,
    FlakePolicy,
    flip_rate,
)
from gate_tracker.forecast import jeffreys_interval
from gate_tracker.storage import Store
from tests.conftest import T0
from tests.histories import analysis_of, finding, flagged, record_history

A, B, C, D = (f"tests/test_shop.py::test_{name}" for name in "abcd")


# -- what is flaky and what is not ---------------------------------------------


def test_a_regression_pppff_is_broken_not_flaky(store: Store) -> None:
    run_ids = record_history(store, {A: "PPPFF", B: "PPPPP"})

    analysis = analysis_of(store)

    assert analysis.flaky == []
    broken = finding(analysis, A)
    assert broken.state == "broken"
    assert broken.evidence == {"rerun": 0, "same_commit": 0, "flips": 0}
    assert broken.broken_at is not None
    assert broken.broken_at.run_id == run_ids[3]
    assert broken.broken_at.commit == f"{3:07x}" + "0" * 33
    assert broken.broken_at.started_at == T0 + timedelta(hours=3)
    assert broken.broken_at.failing_runs == 2


def test_alternating_pfpfp_is_flaky_by_flips(store: Store) -> None:
    record_history(store, {A: "PFPFP"})

    analysis = analysis_of(store)

    flaky = finding(analysis, A)
    assert flaky.evidence == {"rerun": 0, "same_commit": 0, "flips": 4}
    assert flaky.flip_rate == 1.0
    assert (flaky.runs, flaky.failures, flaky.final_failures) == (5, 2, 2)
    assert flaky.failure_rate == 0.4
    assert (flaky.failure_low, flaky.failure_high) == pytest.approx(
        jeffreys_interval(2, 5)
    )
    assert flaky.first_seen == T0 + timedelta(hours=1)
    assert flaky.last_seen == T0 + timedelta(hours=3)
    assert analysis.broken == []


def test_a_pass_on_rerun_inside_one_run_is_flaky_evidence(store: Store) -> None:
    record_history(store, {A: "PPRPP", B: "PCPPP"})

    analysis = analysis_of(store)

    assert finding(analysis, A).evidence == {"rerun": 1, "same_commit": 0, "flips": 0}
    assert finding(analysis, B).evidence == {"rerun": 1, "same_commit": 0, "flips": 0}
    assert finding(analysis, A).final_failures == 0
    assert finding(analysis, A).failures == 1


def test_a_test_flaky_only_across_ci_rerun_attempts(store: Store) -> None:
    """Attempt 1 of run 2 failed, attempt 2 (same commit) passed: flaky."""
    record_history(store, {A: "PPFPPP"}, reruns_of={3: 2})

    analysis = analysis_of(store)

    flaky = finding(analysis, A)
    assert flaky.evidence == {"rerun": 0, "same_commit": 1, "flips": 0}
    assert flaky.state == "ongoing"
    assert (flaky.runs, flaky.failures) == (6, 1)


def test_one_failure_so_far_flags_nothing(store: Store) -> None:
    record_history(store, {A: "PPPPF", B: "FPPPP"})

    assert flagged(analysis_of(store)) == {}


def test_a_regression_that_was_fixed_is_not_flaky(store: Store) -> None:
    """PPFFPP: failures on two commits, then fixed; no pass between failures."""
    record_history(store, {A: "PPFFPP"})

    assert flagged(analysis_of(store)) == {}


def test_rare_isolated_failures_are_flaky_when_they_flip_often_enough(
    store: Store,
) -> None:
    """Two failures in 21 runs flip at 0.2: flaky; in 81 runs at 0.025: not."""
    record_history(store, {A: "PPPPPFPPPPPPPPPPFPPPP", B: "F" + "P" * 79 + "F"})

    analysis = analysis_of(store)

    assert finding(analysis, A).evidence["flips"] == 4
    assert flip_rate("F" + "P" * 79 + "F") == pytest.approx(2 / 80)
    assert flagged(analysis) == {A: "ongoing"}


def test_skipped_runs_do_not_count(store: Store) -> None:
    """PSFSP reads as PFP: a single failure, flagged by nothing."""
    record_history(store, {A: "PSFSP"})

    assert flagged(analysis_of(store)) == {}


# -- broken or still flaky -----------------------------------------------------


def test_a_flaky_test_failing_three_in_a_row_is_still_flaky(store: Store) -> None:
    """Before the streak it failed 4 runs of 9: FFF has odds 0.088, not rare."""
    record_history(store, {A: "PFPFPFPFPFFF"})

    analysis = analysis_of(store)

    assert flagged(analysis) == {A: "ongoing"}
    assert finding(analysis, A).evidence["flips"] == 9


def test_a_flaky_test_that_then_fails_for_good_is_broken(store: Store) -> None:
    """2 failures in 5 before, then 7 in a row: 0.4^7 is rare, so broken."""
    run_ids = record_history(store, {A: "PFPFP" + "F" * 7})

    analysis = analysis_of(store)

    broken = finding(analysis, A)
    assert broken.state == "broken"
    assert broken.broken_at is not None
    assert broken.broken_at.run_id == run_ids[5]
    assert broken.broken_at.failing_runs == 7
    assert broken.evidence["flips"] == 5


def test_a_test_failing_in_every_run_of_the_window_is_broken(store: Store) -> None:
    run_ids = record_history(store, {A: "FFF", B: "PPP"})

    broken = finding(analysis_of(store), A)

    assert broken.broken_at is not None
    assert broken.broken_at.run_id == run_ids[0]


# -- states --------------------------------------------------------------------


def test_a_fixed_test_unflags_after_quiet_runs(store: Store) -> None:
    record_history(store, {A: "PFPFP" + "P" * 20})

    assert flagged(analysis_of(store)) == {A: "fixed"}


def test_the_unflag_rule_is_configurable(store: Store) -> None:
    """21 quiet runs: fixed after 20 (the default), not after 22."""
    record_history(store, {A: "PFPFP" + "P" * 20})

    analysis = analysis_of(store, FlakePolicy(fixed_after_runs=22))

    assert flagged(analysis) == {A: "ongoing"}


def test_a_rarely_failing_test_needs_a_longer_quiet_stretch(store: Store) -> None:
    """Failing 3 runs in 60, 25 quiet runs prove nothing: 0.95^25 = 0.28."""
    pattern = ("P" * 19 + "F") * 3 + "P" * 25

    record_history(store, {A: pattern})

    assert flagged(analysis_of(store)) == {A: "ongoing"}


def test_a_test_first_seen_failing_this_week_is_new(store: Store) -> None:
    record_history(store, {A: "PFPFP", B: "PPPPP"})

    analysis = analysis_of(store, now=T0 + timedelta(days=3))

    assert flagged(analysis) == {A: "new"}


def test_the_new_window_is_configurable(store: Store) -> None:
    record_history(store, {A: "PFPFP"})

    analysis = analysis_of(
        store, FlakePolicy(new_within_days=1), now=T0 + timedelta(days=3)
    )

    assert flagged(analysis) == {A: "ongoing"}


# -- cost, ranking and groups --------------------------------------------------


def test_cost_counts_trials_the_test_kept_from_clean_passes(store: Store) -> None:
    """Run 1: A alone; run 3: A and B; run 5: B alone (rerun); run 6: B alone."""
    record_history(store, {A: "PFPFPPP", B: "PPPFPRF"})

    analysis = analysis_of(store)

    a, b = finding(analysis, A), finding(analysis, B)
    assert (a.runs_broken, a.runs_broken_alone, a.impact) == (2, 1, 1.5)
    assert (b.runs_broken, b.runs_broken_alone, b.impact) == (3, 2, 2.5)
    assert [f.test_id for f in analysis.flaky] == [B, A]
    assert (analysis.runs, analysis.trials, analysis.unclean_trials) == (7, 7, 4)


def test_rerun_attempts_do_not_add_to_the_cost(store: Store) -> None:
    """Run 2 failed twice (attempts 1 and 2), run 5 once: two trials lost."""
    record_history(store, {A: "PPFFPFP"}, reruns_of={3: 2})

    flaky = finding(analysis_of(store), A)

    assert flaky.evidence == {"rerun": 0, "same_commit": 0, "flips": 4}
    assert (flaky.failures, flaky.runs_broken, flaky.runs_broken_alone) == (3, 2, 2)


def test_fixed_tests_rank_after_those_still_flaky(store: Store) -> None:
    record_history(store, {A: "PFPFPFPF" + "P" * 25, B: "P" * 28 + "RPRPR"})

    analysis = analysis_of(store)

    assert [(f.test_id, f.state) for f in analysis.flaky] == [
        (B, "ongoing"),
        (A, "fixed"),
    ]
    assert finding(analysis, A).impact > finding(analysis, B).impact


# -- the policy and the document -----------------------------------------------


def test_policy_reads_every_key_from_settings() -> None:
    values = {
        "flaky_window_days": 14,
        "flip_rate_threshold": 0.2,
        "fixed_after_runs": 5,
        "new_within_days": 3,
        "broken_after_runs": 3,
        "broken_significance": 0.01,
        "fixed_significance": 0.1,
        "cofailure_threshold": 0.8,
        "cofailure_min_runs": 4,
    }

    policy = FlakePolicy.from_settings(Settings(Path("pyproject.toml"), values))

    assert policy.to_dict() == values


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("flip_rate_threshold", 1.5, "must be above 0 and at most 1, not 1.5"),
        ("cofailure_threshold", "high", "must be a number, not 'high'"),
        ("fixed_after_runs", 0, "must be at least 1, not 0"),
        ("flaky_window_days", 2.5, "must be a whole number"),
    ],
)
def test_a_bad_setting_names_the_file_and_key(
    key: str, value: object, message: str
) -> None:
    settings = Settings(Path("pyproject.toml"), {key: value})

    with pytest.raises(ConfigurationError, match=message) as caught:
        FlakePolicy.from_settings(settings)

    assert f"pyproject.toml: [tool.gate-tracker] {key}" in str(caught.value)


def test_the_document_is_versioned_and_complete(store: Store) -> None:
    record_history(store, {A: "PFPFP", B: "PPPFF"})

    document = analysis_of(store).to_dict()

    assert (document["format"], document["version"]) == (FLAKY_FORMAT, FLAKY_VERSION)
    assert document["window"]["runs"] == 5
    assert [f["test_id"] for f in document["flaky"]] == [A]
    assert document["broken"][0]["broken_at"]["failing_runs"] == 2
    assert set(document["flaky"][0]) == {
        "test_id",
        "state",
        "evidence",
        "runs",
        "failures",
        "final_failures",
        "failure_rate",
        "flip_rate",
        "first_seen",
        "last_seen",
        "runs_broken",
        "runs_broken_alone",
        "impact",
        "signatures",
        "broken_at",
        "group",
    }
