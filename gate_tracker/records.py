"""Plain records of gate runs and their tests, shared by every layer.

A *session* is one pytest session (or one imported report): a shard of a gate
run. A *gate run* is one trial of the gate: a local session, or one attempt of
one CI run, made of one session per shard. The records here carry no behaviour
beyond conversion to and from the JSON record format described in
``docs/record-format.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RECORD_FORMAT = "gate-tracker-record"
RECORD_VERSION = 1

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
"""Final outcomes a test can have, in the order counts are shown."""

ATTEMPT_OUTCOMES = (*OUTCOMES, "crashed")
"""Outcomes one attempt can have: a crashed worker ends an attempt too."""

FAILED_OUTCOMES = ("failed", "error")

VERDICTS = ("pass", "flaky-pass", "fail", "incomplete", "timeout", "cancelled")
"""Verdicts of a gate run; see ``gate_tracker.verdicts`` for the rules."""

LOCAL_EVENT = "local"


@dataclass
class TestRecord:
    """One test's result in one session.

    ``attempts`` lists every attempt's outcome in order; a test that failed
    then passed on rerun has ``["failed", "passed"]`` and final ``outcome``
    ``"passed"``. ``message`` is a short, redacted failure message and
    ``signature`` the same message with volatile parts normalised, so the same
    failure groups across runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    test_id: str
    outcome: str
    attempts: list[str]
    duration_s: float = 0.0
    worker: str | None = None
    message: str | None = None
    signature: str | None = None
    longrepr: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def reruns(self) -> int:
        return max(len(self.attempts) - 1, 0)

    @property
    def was_rerun(self) -> bool:
        """True when the test needed more than one attempt."""
        return len(self.attempts) > 1


@dataclass
class CIContext:
    """Where a session ran in CI; absent for local runs."""

    provider: str
    repository: str | None = None
    workflow: str | None = None
    job: str | None = None
    run_id: str | None = None
    run_attempt: int | None = None
    event: str | None = None
    url: str | None = None


@dataclass
class SessionRecord:
    """One recorded session: everything the JSON record format holds.

    ``record_id`` is unique per session and makes imports idempotent.
    ``selection`` holds the gate's definition as given on the command line
    (``markexpr``, ``paths``) and what narrowed it (``narrowed_by``).
    """

    gate: str
    record_id: str
    started_at: datetime
    finished_at: datetime
    verdict: str
    reason: str = ""
    source: str = "plugin"
    shard: str = ""
    exit_status: int | None = None
    commit: str | None = None
    branch: str | None = None
    event: str = LOCAL_EVENT
    ci: CIContext | None = None
    hostname: str | None = None
    python_version: str | None = None
    pytest_version: str | None = None
    plugin_version: str | None = None
    xdist_workers: int = 0
    reruns: int | None = None
    args: list[str] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    collected: int | None = None
    tests: list[TestRecord] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def repository(self) -> str:
        """The CI repository, or an empty string for runs outside CI."""
        if self.ci is None or self.ci.repository is None:
            return ""
        return self.ci.repository

    @property
    def run_key(self) -> str:
        """The gate run this session belongs to.

        Sessions of one CI run and attempt share a key, so matrix shards form
        one gate run; any other session is a gate run of its own.
        """
        if self.ci is not None and self.ci.run_id:
            attempt = self.ci.run_attempt or 1
            return f"ci:{self.ci.provider}:{self.repository}:{self.ci.run_id}:{attempt}"
        return f"{self.source}:{self.record_id}"

    def counts(self) -> dict[str, int]:
        """Tests per final outcome, plus ``rerun``: tests that needed reruns."""
        counts = dict.fromkeys(OUTCOMES, 0)
        counts["rerun"] = 0
        for test in self.tests:
            counts[test.outcome] += 1
            counts["rerun"] += test.was_rerun
        return counts


def session_to_dict(session: SessionRecord) -> dict[str, Any]:
    """The JSON record document for ``session``."""
    body = dataclasses.asdict(session)
    body["started_at"] = session.started_at.isoformat()
    body["finished_at"] = session.finished_at.isoformat()
    body["duration_s"] = round(session.duration_s, 6)
    body["counts"] = session.counts()
    body["tests"] = [_compact_test(test) for test in body["tests"]]
    return {"format": RECORD_FORMAT, "version": RECORD_VERSION, "session": body}


def _compact_test(test: dict[str, Any]) -> dict[str, Any]:
    # Passing tests are the bulk of a record: leave out their empty fields.
    return {key: value for key, value in test.items() if value is not None}


@dataclass
class StoredRun:
    """A gate run as stored: one trial of a gate, with its verdict."""

    id: int
    gate: str
    repository: str
    run_key: str
    sources: str
    event: str
    branch: str | None
    commit: str | None
    ci_run_id: str | None
    attempt: int
    workflow: str | None
    job: str | None
    url: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    exit_status: int | None
    verdict: str
    reason: str
    ci_status: str | None
    ci_conclusion: str | None
    has_test_data: bool
    sessions: int
    counts: dict[str, int]

    @property
    def trial_key(self) -> str:
        """Attempts of one CI run share this key; other runs have their own."""
        if self.ci_run_id:
            return f"{self.repository}:{self.ci_run_id}"
        return self.run_key
