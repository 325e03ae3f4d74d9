"""Co-failure and signature groups on hand-built histories."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gate_tracker.flakiness import FlakePolicy
from gate_tracker.redaction import failure_signature
from gate_tracker.storage import Store
from tests.conftest import T0
from tests.histories import analysis_of, finding, record_history

A, B, C, D = (f"tests/test_shop.py::test_{name}" for name in "abcd")


def test_tests_failing_in_the_same_runs_are_grouped(store: Store) -> None:
    record_history(
        store,
        {
            A: "PFPFPPFP",
            B: "PFPFPPFP",
            C: "PFPPPPRP",
            D: "PPPPFPPF",
        },
    )

    analysis = analysis_of(store)

    assert len(analysis.groups) == 1
    group = analysis.groups[0]
    assert group.tests == [A, B, C]
    assert group.shared_runs == 3
    assert group.jaccard == pytest.approx(2 / 3)
    assert [finding(analysis, t).group for t in (A, B, C, D)] == [1, 1, 1, None]


def test_co_failure_needs_the_minimum_of_shared_runs(store: Store) -> None:
    record_history(store, {A: "PFPFP", B: "PFPPP", C: "RPPPP"})

    analysis = analysis_of(store, FlakePolicy(cofailure_min_runs=2))

    assert analysis.groups == []


def test_failures_are_grouped_by_signature(store: Store) -> None:
    shared = "ConnectionError: payments sandbox at 10.0.0.7:8443 refused"
    other = shared.replace("10.0.0.7:8443", "10.0.0.9:8443")
    assert failure_signature(other) == failure_signature(shared)
    record_history(
        store,
        {A: "PFPFP", B: "PRPPF", C: "FPPPP"},
        messages={A: shared, B: other},
    )

    analysis = analysis_of(store)

    top = analysis.signatures[0]
    assert top.signature == failure_signature(shared)
    assert top.tests == [A, B]
    assert (top.failures, top.runs) == (4, 3)
    assert top.first_seen == T0 + timedelta(hours=1)
    assert top.last_seen == T0 + timedelta(hours=4)
    assert finding(analysis, A).signatures == [(top.signature, 2)]
    assert [group.runs for group in analysis.signatures] == [3, 1]


@pytest.mark.parametrize(("threshold", "grouped"), [(0.5, True), (0.6, False)])
def test_the_jaccard_threshold_decides_a_link(
    store: Store, threshold: float, grouped: bool
) -> None:
    """A fails in runs 1, 3, 5, 7 and B in 1, 3: a Jaccard index of 0.5."""
    record_history(store, {A: "PFPFPFPF", B: "PFPFPPPP"})

    analysis = analysis_of(store, FlakePolicy(cofailure_threshold=threshold))

    assert [group.tests for group in analysis.groups] == ([[A, B]] if grouped else [])
