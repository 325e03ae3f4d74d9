"""Streaks over hand-built histories stored in a real SQLite database."""

from __future__ import annotations

import pytest
from conftest import SessionFactory

from gate_tracker.objective import Policy, evaluate
from gate_tracker.storage import Store


def history(
    store: Store, make_session: SessionFactory, verdicts: str, **kwargs: object
) -> None:
    """Store one CI run per letter, oldest first: P pass, F fail, R flaky-pass,
    C cancelled, I incomplete, T timeout."""
    names = {
        "P": "pass",
        "F": "fail",
        "R": "flaky-pass",
        "C": "cancelled",
        "I": "incomplete",
        "T": "timeout",
    }
    for index, letter in enumerate(verdicts):
        store.record_session(make_session(index, verdict=names[letter], **kwargs))


STRICT = Policy()


def objective_of(store: Store, policy: Policy = STRICT) -> tuple[int, int, bool]:
    result = evaluate(store.runs("e2e-gate"), policy, gate="e2e-gate")
    return result.streak, result.ci_streak, result.met


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ("", (0, 0, False)),
        ("P" * 20, (20, 20, True)),
        ("P" * 19, (19, 19, False)),
        ("F" + "P" * 20, (20, 20, True)),
        ("P" * 25 + "F" + "P" * 14, (14, 14, False)),
        ("PPPPRPP", (2, 7, False)),
        ("PPPCPPC", (5, 5, False)),
        ("PPIPP", (2, 2, False)),
        ("PPTP", (1, 1, False)),
        ("CCCC", (0, 0, False)),
    ],
)
def test_streaks(
    store: Store,
    make_session: SessionFactory,
    verdicts: str,
    expected: tuple[int, int, bool],
) -> None:
    history(store, make_session, verdicts)

    assert objective_of(store) == expected


def test_count_rerun_passes_lets_flaky_passes_count(
    store: Store, make_session: SessionFactory
) -> None:
    history(store, make_session, "F" + "PR" * 10)

    assert objective_of(store, Policy(count_rerun_passes=True)) == (20, 20, True)
    assert objective_of(store) == (0, 20, False)


def test_rescued_by_rerun_never_adds_to_the_strict_streak(
    store: Store, make_session: SessionFactory
) -> None:
    history(store, make_session, "PPP")
    store.record_session(make_session(3, verdict="fail", run_id="555", attempt=1))
    store.record_session(make_session(4, verdict="pass", run_id="555", attempt=2))
    store.record_session(make_session(5, verdict="pass"))

    result = evaluate(store.runs("e2e-gate"), Policy(), gate="e2e-gate")

    assert (result.streak, result.ci_streak) == (1, 5)
    assert result.broken_by is not None
    assert (result.broken_by.ci_run_id, result.broken_by.attempt) == ("555", 1)
    assert "rescued by re-run attempt 2" in result.broken_reason


def test_a_passing_re_run_of_a_passing_run_adds_once(
    store: Store, make_session: SessionFactory
) -> None:
    store.record_session(make_session(0, verdict="pass", run_id="9", attempt=1))
    store.record_session(make_session(1, verdict="pass", run_id="9", attempt=2))

    assert objective_of(store) == (1, 1, False)


def test_only_a_re_run_attempt_recorded_ends_the_strict_streak(
    store: Store, make_session: SessionFactory
) -> None:
    store.record_session(make_session(0, verdict="pass", run_id="9", attempt=3))

    result = evaluate(store.runs("e2e-gate"), Policy(), gate="e2e-gate")

    assert (result.streak, result.ci_streak) == (0, 1)
    assert "only re-run attempt 3" in result.broken_reason


def test_shards_of_one_attempt_pass_only_together(
    store: Store, make_session: SessionFactory
) -> None:
    history(store, make_session, "PP")
    store.record_session(make_session(2, verdict="pass", run_id="77", shard="1"))
    store.record_session(make_session(2, verdict="fail", run_id="77", shard="2"))

    assert objective_of(store) == (0, 0, False)


def test_policy_scope_leaves_out_other_branches_and_events(
    store: Store, make_session: SessionFactory
) -> None:
    history(store, make_session, "PPP")
    store.record_session(make_session(3, verdict="fail", branch="feature"))
    store.record_session(make_session(4, verdict="fail", event="pull_request"))
    store.record_session(make_session(5, verdict="fail", event="local"))

    scoped = store.runs("e2e-gate", branch="main", events=("push", "workflow_dispatch"))

    assert len(scoped) == 3
    assert evaluate(scoped, Policy(), gate="e2e-gate").streak == 3


def test_plugin_sessions_replace_junit_imports_of_the_same_run(
    store: Store, make_session: SessionFactory
) -> None:
    """A gate run never counts a test twice: the plugin's record wins over JUnit."""
    junit = make_session(0, source="junit", run_id="42", verdict="pass")
    recorded = make_session(0, source="plugin", run_id="42", verdict="flaky-pass")

    store.record_session(junit)
    store.record_session(recorded)
    late_junit = store.record_session(
        make_session(0, source="junit", run_id="42", shard="x")
    )

    [run] = store.runs("e2e-gate")
    assert (run.sessions, run.verdict, run.counts["passed"]) == (1, "flaky-pass", 1)
    assert late_junit.stored is False
