"""The rules that turn test results into a run's verdict.

A verdict comes from the per-test records plus a completeness check, never
from an exit status alone:

- ``fail``: some test's final outcome is failed or error (a strict xpass is a
  failure; a crashed worker's test that was not rescheduled is failed);
- ``incomplete``: an internal error, collection errors, no tests, a selection
  narrowed beyond the gate's definition, or collected tests never reported;
- ``cancelled``: the session was interrupted before any test failed;
- ``flaky-pass``: everything passed, but some test needed another attempt;
- ``pass``: every expected test passed (or skipped) on its first attempt;
- ``timeout``: only CI data can tell (the job hit its time limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gate_tracker.records import TestRecord

# Worst first: a gate run made of several shards takes the worst verdict.
_SEVERITY = ("fail", "timeout", "incomplete", "cancelled", "flaky-pass", "pass")

CLEAN_VERDICTS = frozenset({"pass"})
CI_GREEN_VERDICTS = frozenset({"pass", "flaky-pass"})
NEUTRAL_VERDICTS = frozenset({"cancelled"})
"""Verdicts that neither add to nor reset a streak."""


@dataclass
class Completeness:
    """What a session was expected to run, and what stopped it short."""

    expected: set[str] | None = None
    collection_errors: int = 0
    internal_error: bool = False
    interrupted: str | None = None
    aborted: str | None = None
    """Why a test or fixture stopped the session with ``pytest.exit()``."""
    narrowed_by: list[str] = field(default_factory=list)


def counted_verdicts(count_rerun_passes: bool) -> frozenset[str]:
    """The verdicts that add to the streak: ``pass``, or any green run."""
    return CI_GREEN_VERDICTS if count_rerun_passes else CLEAN_VERDICTS


def session_verdict(
    tests: Sequence[TestRecord], completeness: Completeness
) -> tuple[str, str]:
    """The verdict of one session and a one-line reason for it."""
    failed = [t.test_id for t in tests if t.outcome == "failed"]
    errored = [t.test_id for t in tests if t.outcome == "error"]
    if failed or errored:
        return "fail", _failure_reason(failed, errored)

    if completeness.internal_error:
        return "incomplete", "pytest stopped with an internal error"

    if completeness.collection_errors:
        return "incomplete", _plural(completeness.collection_errors, "collection error")

    if completeness.aborted:
        return "incomplete", f"stopped by pytest.exit(): {completeness.aborted}"

    if completeness.interrupted:
        reason = f"interrupted ({completeness.interrupted}) before any failure"
        return "cancelled", reason

    problem = _incompleteness(tests, completeness)
    if problem:
        return "incomplete", problem

    rerun = [t.test_id for t in tests if t.was_rerun]
    if rerun:
        reason = _plural(len(rerun), "test") + " passed on rerun: " + _sample(rerun)
        return "flaky-pass", reason

    return "pass", f"{_plural(len(tests), 'test')}, none failed or needed a rerun"


def _incompleteness(tests: Sequence[TestRecord], completeness: Completeness) -> str:
    if completeness.narrowed_by:
        return "selection narrowed by " + ", ".join(completeness.narrowed_by)

    if not tests:
        return "no tests ran"

    if all(t.outcome == "skipped" for t in tests):
        return f"no test ran: all {_plural(len(tests), 'test')} were skipped"

    if completeness.expected is not None:
        missing = completeness.expected - {t.test_id for t in tests}
        if missing:
            return (
                _plural(len(missing), "collected test")
                + " never reported: "
                + _sample(sorted(missing))
            )

    return ""


def _failure_reason(failed: list[str], errored: list[str]) -> str:
    parts = []
    if failed:
        parts.append(_plural(len(failed), "test") + " failed")
    if errored:
        parts.append(_plural(len(errored), "test") + " errored")
    return " and ".join(parts) + ": " + _sample(failed + errored)


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """The verdict of a gate run whose parts (shards, CI jobs) have ``verdicts``.

    A gate run passes only when every part passes; otherwise the worst part's
    verdict stands. A run with no parts is ``incomplete``.
    """
    present = set(verdicts)
    for verdict in _SEVERITY:
        if verdict in present:
            return verdict
    return "incomplete"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _sample(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown
