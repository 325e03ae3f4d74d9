"""What a streak of clean passes proves about the pass rate, and what it does not.

``n`` clean passes out of ``n`` trials show, with 95 % confidence, only that the
per-trial rate is above ``0.05 ** (1 / n)``: 0.861 for 20/20. The bounds are
one-sided exact (Clopper-Pearson) bounds from scipy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
PROOF_RATES = (0.95, 0.99)
"""The rates ``Proof.streak_to_show`` gives the streaks for."""

_MAX_PROOF_STREAK = 10_000_000


@dataclass(frozen=True)
class Proof:
    """What a streak would prove about the pass rate.

    ``lower_bound`` is the one-sided lower confidence bound on the rate that
    ``required`` clean passes out of ``required`` trials imply;
    ``streak_to_show`` maps a rate to the streak needed to show it.
    """

    required: int
    confidence: float
    lower_bound: float
    streak_to_show: dict[float, int]


def lower_bound(passes: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided exact (Clopper-Pearson) lower confidence bound on the rate.

    For ``n`` passes out of ``n`` trials it is ``(1 - confidence) ** (1 / n)``:
    0.861 for 20 out of 20 at 95 %.
    """
    test = stats.binomtest(passes, trials, alternative="greater")
    return float(test.proportion_ci(confidence_level=confidence, method="exact").low)


@functools.lru_cache(maxsize=64)
def streak_to_show(rate: float, confidence: float = CONFIDENCE) -> int:
    """The shortest streak of clean passes whose lower bound reaches ``rate``.

    59 to show 0.95 and 299 to show 0.99, at 95 % confidence.
    """
    low, high = 1, 1
    while lower_bound(high, high, confidence) < rate:
        if high >= _MAX_PROOF_STREAK:
            raise ValueError(f"no streak up to {high} shows a rate of {rate}")
        low, high = high, high * 2

    # Bisect for the first streak that reaches the rate.
    while low < high:
        middle = (low + high) // 2
        if lower_bound(middle, middle, confidence) >= rate:
            high = middle
        else:
            low = middle + 1
    return high


def proof(required: int, confidence: float = CONFIDENCE) -> Proof:
    """What ``required`` clean passes in a row would prove (and would not)."""
    return Proof(
        required=required,
        confidence=confidence,
        lower_bound=lower_bound(required, required, confidence),
        streak_to_show={rate: streak_to_show(rate, confidence) for rate in PROOF_RATES},
    )
