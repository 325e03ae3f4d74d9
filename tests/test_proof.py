"""What a streak proves: the one-sided bounds against their closed forms."""

from __future__ import annotations

import pytest

from gate_tracker.proof import PROOF_RATES, lower_bound, proof, streak_to_show


def test_20_of_20_proves_only_a_rate_above_0861_at_95_percent() -> None:
    bound = lower_bound(20, 20)

    assert bound == pytest.approx(0.05 ** (1 / 20), rel=1e-9)
    assert round(bound, 3) == 0.861


def test_the_lower_bound_is_one_sided_not_two_sided() -> None:
    """A two-sided 95 % bound would be 0.025^(1/n); ours must be 0.05^(1/n)."""
    assert lower_bound(59, 59) == pytest.approx(0.05 ** (1 / 59), rel=1e-9)
    assert lower_bound(59, 59) > 0.025 ** (1 / 59)


def test_59_straight_passes_show_095_and_299_show_099() -> None:
    assert streak_to_show(0.95) == 59
    assert streak_to_show(0.99) == 299
    assert lower_bound(58, 58) < 0.95 <= lower_bound(59, 59)
    assert lower_bound(298, 298) < 0.99 <= lower_bound(299, 299)


def test_proof_of_the_objective_gathers_the_bound_and_the_streaks() -> None:
    shown = proof(20)

    assert (shown.required, shown.confidence) == (20, 0.95)
    assert shown.lower_bound == pytest.approx(0.05 ** (1 / 20), rel=1e-9)
    assert shown.streak_to_show == {0.95: 59, 0.99: 299}
    assert tuple(shown.streak_to_show) == PROOF_RATES


def test_a_stricter_confidence_needs_a_longer_streak() -> None:
    """At 99 % confidence: 0.01^(1/n) >= 0.95 first at n = 90."""
    assert streak_to_show(0.95, 0.99) == 90
    assert lower_bound(90, 90, 0.99) == pytest.approx(0.01 ** (1 / 90), rel=1e-9)
