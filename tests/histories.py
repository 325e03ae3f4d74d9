"""Hand-built gate histories, recorded through the real Store.

A history is written as one pattern per test, one mark per run:

- ``P`` passed, ``F`` failed, ``E`` error, ``S`` skipped, ``-`` did not run;
- ``R`` failed, then passed on rerun; ``C`` its worker crashed, then it passed.

Run ``i`` starts ``i`` hours after ``start``; its verdict follows the real
verdict rules from the tests in it. ``analysis_of`` analyses what was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from gate_tracker.flakiness import FlakeAnalysis, FlakePolicy, TestFinding, analyze
from gate_tracker.history import HistoryScope, load_history
from gate_tracker.records import TestRecord
from gate_tracker.redaction import failure_signature
from gate_tracker.storage import Store
from gate_tracker.verdicts import Completeness, session_verdict
from tests.conftest import T0, build_session

LATER = T0 + timedelta(days=30)
"""When the analyses look at a history: a month after it began."""

_MARKS = {
    "P": ("passed", ["passed"]),
    "F": ("failed", ["failed"]),
    "E": ("error", ["error"]),
    "S": ("skipped", ["skipped"]),
    "R": ("passed", ["failed", "passed"]),
    "C": ("passed", ["crashed", "passed"]),
}


def make_record(test_id: str, mark: str, index: int, message: str | None) -> TestRecord:
    """The record of ``test_id`` with ``mark`` in run ``index``."""
    outcome, attempts = _MARKS[mark]
    record = TestRecord(test_id, outcome, list(attempts), 0.25)
    if mark in "FERC":
        text = message or f"AssertionError: {test_id.rsplit('::')[-1]} got {index}"
        record.message = text
        record.signature = failure_signature(text)
    return record


def record_history(
    store: Store,
    patterns: Mapping[str, str],
    *,
    start: datetime = T0,
    commits: Mapping[int, str] | None = None,
    reruns_of: Mapping[int, int] | None = None,
    messages: Mapping[str, str] | None = None,
    first_run: int = 1000,
    **session: object,
) -> list[int]:
    """Record one run per pattern position; return the stored run ids.

    ``commits`` gives run positions their own commit (others get one each).
    ``reruns_of`` makes a position a CI re-run (attempt 2) of an earlier
    position: same CI run id and commit. ``messages`` gives a test one failure
    message for all its failures, so they share a signature. CI run ids count
    from ``first_run``: give histories in one database distinct ranges.
    """
    commits = dict(commits or {})
    reruns_of = reruns_of or {}
    messages = messages or {}
    length = max(len(pattern) for pattern in patterns.values())

    run_ids = []
    for index in range(length):
        tests = [
            make_record(test_id, pattern[index], index, messages.get(test_id))
            for test_id, pattern in patterns.items()
            if index < len(pattern) and pattern[index] != "-"
        ]
        verdict, _ = session_verdict(tests, Completeness())

        # A re-run shares the CI run id and the commit of the run it retries.
        trial = reruns_of.get(index, index)
        recorded = store.record_session(
            build_session(
                index,
                tests=tests,
                verdict=verdict,
                started_at=start + timedelta(hours=index),
                commit=commits.get(trial, f"{trial:07x}" + "0" * 33),
                run_id=str(first_run + trial),
                attempt=1 if trial == index else 2,
                **session,  # type: ignore[arg-type]
            )
        )
        run_ids.append(recorded.run_id)
    return run_ids


def analysis_of(
    store: Store, policy: FlakePolicy | None = None, *, now: datetime = LATER
) -> FlakeAnalysis:
    """Analyse every run of the default gate recorded in ``store``."""
    history = load_history(
        store, HistoryScope("e2e-gate"), since=T0 - timedelta(days=1), until=now
    )
    return analyze(history, policy, now=now)


def finding(analysis: FlakeAnalysis, test_id: str) -> TestFinding:
    """The one finding (flaky or broken) of ``test_id``."""
    matches = [f for f in analysis.flaky + analysis.broken if f.test_id == test_id]
    assert len(matches) == 1, f"{test_id} is not flagged"
    return matches[0]


def flagged(analysis: FlakeAnalysis) -> dict[str, str]:
    """Every flagged test and its state."""
    return {f.test_id: f.state for f in analysis.flaky + analysis.broken}
