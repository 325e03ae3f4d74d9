"""Turning one pytest session's reports into a ``SessionRecord``.

The plugin keeps every final test report as it arrives (one list append: the
terminal reporter keeps the same objects anyway) and does the rest once, when
the session ends: grouping reports into attempts, deciding each test's
outcome, checking completeness, and deriving the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate_tracker.records import TestRecord
from gate_tracker.redaction import Redactor, failure_signature, storable

MESSAGE_LIMIT = 500
"""Characters kept of a failure's short message."""

LONGREPR_LIMIT = 8000
"""Characters kept of a failure's long text; the end, where the error is."""

CRASH_PHASE = "???"
"""The ``when`` of the report xdist makes for a test whose worker crashed."""

_FAILING = ("failed", "rerun")
_XDIST_GROUP_SUFFIX = re.compile(r"@[^@\[\]/:]+$")


def stable_test_id(nodeid: str) -> str:
    """``nodeid`` without xdist's ``@group`` suffix, so history never splits.

    pytest-xdist's ``--dist loadgroup`` appended the suffix before pytest 9.2
    (https://github.com/pytest-dev/pytest-xdist/issues/1386).
    """
    if "@" not in nodeid:
        return nodeid
    return _XDIST_GROUP_SUFFIX.sub("", nodeid)


@dataclass
class _Attempt:
    phases: list[Any] = field(default_factory=list)

    def has(self, when: str) -> bool:
        return any(report.when == when for report in self.phases)

    def phase(self, when: str) -> Any:
        for report in self.phases:
            if report.when == when:
                return report
        return None

    def outcome(self) -> str | None:
        """This attempt's outcome, or None when it never finished its call."""
        if self.has(CRASH_PHASE):
            return "crashed"

        setup = self.phase("setup")
        if setup is not None and setup.outcome in _FAILING:
            return "error"
        if setup is not None and setup.outcome == "skipped":
            return "xfailed" if hasattr(setup, "wasxfail") else "skipped"

        outcome = _call_outcome(self.phase("call"))
        teardown = self.phase("teardown")
        if (
            teardown is not None
            and teardown.outcome in _FAILING
            and outcome != "failed"
        ):
            return "error"
        return outcome

    def failure(self) -> Any:
        """The last failing report of this attempt, if any."""
        failing = [r for r in self.phases if r.outcome in _FAILING]
        return failing[-1] if failing else None


def _call_outcome(call: Any) -> str | None:
    if call is None:
        return None
    if call.outcome in _FAILING:
        return "failed"
    if call.outcome == "skipped":
        return "xfailed" if hasattr(call, "wasxfail") else "skipped"
    return "xpassed" if hasattr(call, "wasxfail") else "passed"


def build_tests(
    reports: Iterable[Any], redactor: Redactor | None = None
) -> list[TestRecord]:
    """One ``TestRecord`` per test, in the order tests first reported.

    A test's reports are split into attempts: a new attempt starts at each
    setup report, and a crash report ends one. Tests whose last attempt never
    finished (an interrupted session) are left out, so completeness checks
    see them as missing. Test ids and failure texts are redacted.
    """
    redactor = redactor or Redactor()
    by_test: dict[str, list[Any]] = {}
    for report in reports:
        nodeid = report.nodeid
        same_test = by_test.get(nodeid)
        if same_test is None:
            by_test[nodeid] = [report]
        else:
            same_test.append(report)

    tests = []
    for nodeid, test_reports in by_test.items():
        record = _plain_pass(nodeid, test_reports, redactor)
        if record is None:
            record = _test_record(nodeid, _attempts(test_reports), redactor)
        if record is not None:
            tests.append(record)
    return tests


def _plain_pass(
    nodeid: str, reports: list[Any], redactor: Redactor
) -> TestRecord | None:
    """The record of a test that passed at once, the bulk of any run, or None.

    This is the common case made cheap; anything else takes the full path.
    """
    if len(reports) != 3:
        return None
    setup, call, teardown = reports
    if (
        setup.outcome != "passed"
        or call.outcome != "passed"
        or teardown.outcome != "passed"
        or setup.when != "setup"
        # Looked up in the instance's own attributes: a failed hasattr() costs
        # an exception, once per test.
        or "wasxfail" in vars(call)
    ):
        return None

    duration = (
        (setup.duration or 0.0) + (call.duration or 0.0) + (teardown.duration or 0.0)
    )
    test_file, line = _location(setup)
    return TestRecord(
        _test_id(nodeid, redactor),
        "passed",
        ["passed"],
        round(duration, 6),
        _worker(teardown),
        file=test_file,
        line=line,
    )


def _attempts(reports: list[Any]) -> list[_Attempt]:
    attempts: list[_Attempt] = []
    for report in reports:
        if not attempts or (report.when == "setup" and attempts[-1].phases):
            attempts.append(_Attempt())
        attempts[-1].phases.append(report)
        if report.when == CRASH_PHASE:
            attempts.append(_Attempt())
    return [attempt for attempt in attempts if attempt.phases]


def _test_id(nodeid: str, redactor: Redactor) -> str:
    return redact_test_id(stable_test_id(nodeid), redactor)


def redact_test_id(test_id: str, redactor: Redactor) -> str:
    """``test_id`` with any secret in its parameter ids redacted.

    A path that was not valid UTF-8 keeps its undecodable bytes as escapes.
    """
    # Paths and function names are code; only parameter ids can carry data,
    # and so a secret.
    if "[" not in test_id:
        return storable(test_id)
    return redactor.redact(test_id)


def _test_record(
    nodeid: str, attempts: Sequence[_Attempt], redactor: Redactor
) -> TestRecord | None:
    outcomes = [attempt.outcome() for attempt in attempts]
    finished = [outcome for outcome in outcomes if outcome is not None]
    if not finished or outcomes[-1] is None:
        return None

    final = "failed" if finished[-1] == "crashed" else finished[-1]
    reports = [report for attempt in attempts for report in attempt.phases]
    test_file, line = _location(reports[0])
    record = TestRecord(
        test_id=_test_id(nodeid, redactor),
        outcome=final,
        attempts=finished,
        duration_s=round(sum(r.duration or 0.0 for r in reports), 6),
        worker=_worker(reports[-1]),
        file=test_file,
        line=line,
    )

    failures = [a.failure() for a in attempts if a.failure() is not None]
    if failures:
        _describe_failure(record, failures[-1], redactor)
    return record


def _worker(report: Any) -> str | None:
    attributes = vars(report)
    node = attributes.get("node")
    if node is not None:
        gateway = getattr(node, "gateway", None)
        if gateway is not None:
            return str(gateway.id)
    worker_id = attributes.get("worker_id")
    return str(worker_id) if worker_id else None


def _location(report: Any) -> tuple[str | None, int | None]:
    """The test's file and 1-based line, as far as the report knows them."""
    location = vars(report).get("location")
    if not location:
        return None, None
    line = location[1]
    return storable(location[0]), None if line is None else int(line) + 1


def _describe_failure(record: TestRecord, report: Any, redactor: Redactor) -> None:
    text = report.longreprtext or ""
    message = _short_message(report.longrepr, text)

    record.message = redactor.redact(message)[:MESSAGE_LIMIT]
    record.signature = failure_signature(record.message)
    record.longrepr = _cut(redactor.redact(text))


def _short_message(longrepr: Any, text: str) -> str:
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message).splitlines()[0] if crash.message.strip() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    if errors:
        return errors[0][1:].strip()
    return lines[-1].strip() if lines else ""


def _cut(text: str) -> str:
    if len(text) <= LONGREPR_LIMIT:
        return text
    dropped = len(text) - LONGREPR_LIMIT
    return f"[... {dropped} characters cut ...]\n" + text[-LONGREPR_LIMIT:]
