"""gate-tracker: make an end-to-end release gate trustworthy.

The pytest plugin records every gate run, ``gate-tracker status`` checks the
N-consecutive-pass objective, and the other commands collect history, find
flaky tests and write reports.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
