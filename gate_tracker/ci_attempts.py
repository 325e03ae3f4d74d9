"""One attempt of a CI run as a gate run: its gate jobs, verdict and key.

GitHub reports a job stopped by its ``timeout-minutes`` as ``cancelled``: a
cancelled job that ran to within ``TIMEOUT_TOLERANCE`` of the timeout is a
``timeout``. ``skipped`` jobs (their ``if:`` was false) are not counted, and
an attempt whose run ended without starting any job is ``incomplete``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from gate_tracker.github_client import CIJob, CIRun
from gate_tracker.records import CIContext
from gate_tracker.verdicts import combine_verdicts

PROVIDER = "github-actions"

DEFAULT_TIMEOUT_MINUTES = 360
"""GitHub's default ``timeout-minutes`` for a job."""

TIMEOUT_TOLERANCE = 0.03
"""A cancelled job that ran within 3 % of its timeout counts as timed out."""

IGNORE = "ignore"
PENDING = "pending"
NO_JOBS = "no-jobs"

_WILDCARDS = frozenset("*?[")
_NAME_CUT = 97
"""GitHub cuts job names near 100 characters."""


@dataclass
class GateAttempt:
    """The gate's part of one run attempt: its jobs and what they say."""

    number: int
    jobs: list[CIJob]
    verdict: str
    reason: str
    conclusion: str | None
    started_at: datetime
    finished_at: datetime | None


def run_key(repository: str, run_id: int, attempt: int) -> str:
    """The gate run key of a CI attempt, as ``SessionRecord.run_key`` gives it
    for a session the plugin recorded in that attempt."""
    return f"ci:{PROVIDER}:{repository}:{run_id}:{attempt}"


def attempt_url(run: CIRun, number: int) -> str | None:
    """The web page of one attempt of ``run``."""
    return f"{run.url}/attempts/{number}" if run.url else None


def ci_context(run: CIRun, number: int, *, repository: str, job: str) -> CIContext:
    """The CI context of one attempt of ``run``, as the plugin records it."""
    return CIContext(
        provider=PROVIDER,
        repository=repository,
        workflow=run.workflow_name,
        job=job,
        run_id=str(run.id),
        run_attempt=number,
        event=run.event,
        url=attempt_url(run, number),
    )


def job_matches(name: str, pattern: str) -> bool:
    """Whether the job ``name`` is the gate job ``pattern``.

    The last ``/`` segment counts, so ``release / e2e-gate`` (a reusable
    workflow) and ``e2e-gate (2/4)`` (a matrix shard) match ``e2e-gate``.
    A pattern with ``*``, ``?`` or ``[`` is a glob. A name GitHub cut near 100
    characters matches when its last segment begins the pattern.
    """
    segment = _last_segment(name)
    if _WILDCARDS & set(pattern):
        return fnmatchcase(segment, pattern) or fnmatchcase(segment, pattern + " (*)")
    if segment == pattern or segment.startswith(pattern + " ("):
        return True

    cut = segment.rstrip(".… ")
    return (
        len(name) >= _NAME_CUT
        and len(cut) >= min(len(pattern), 3)
        and (pattern + " (").startswith(cut)
    )


def _last_segment(name: str) -> str:
    # A matrix value can hold a slash, as in "e2e-gate (2/4)": look for the
    # caller's slash before the matrix parentheses only.
    head, paren, tail = name.partition(" (")
    return head.rsplit("/", 1)[-1].strip() + paren + tail


def job_verdict(job: CIJob, timeout_minutes: int) -> tuple[str, str] | None:
    """The verdict of one finished gate job and why; None when not counted."""
    conclusion = job.conclusion
    if conclusion == "skipped":
        return None
    if conclusion == "success":
        return "pass", f"{job.name} succeeded"
    if conclusion == "failure":
        return "fail", f"{job.name} failed"
    if conclusion == "timed_out":
        return "timeout", f"{job.name} timed out"
    if conclusion == "cancelled":
        return _cancelled(job, timeout_minutes)
    return "incomplete", f"{job.name} ended {conclusion or 'without a conclusion'}"


def _cancelled(job: CIJob, timeout_minutes: int) -> tuple[str, str]:
    if job.started_at is None or job.completed_at is None:
        return "cancelled", f"{job.name} was cancelled"

    minutes = (job.completed_at - job.started_at).total_seconds() / 60
    if minutes >= timeout_minutes * (1 - TIMEOUT_TOLERANCE):
        return (
            "timeout",
            f"{job.name} was cancelled after {minutes:.0f} min, at its "
            f"{timeout_minutes} min timeout",
        )
    return "cancelled", f"{job.name} was cancelled after {minutes:.0f} min"


def decide_attempt(
    number: int, jobs: Sequence[CIJob], pattern: str, timeout_minutes: int
) -> GateAttempt | str:
    """The gate attempt ``number`` made of ``jobs``, or why there is none.

    Gives ``NO_JOBS`` when the attempt has no job at all, ``IGNORE`` when no
    gate job counts (none matches ``pattern``, or all were skipped) and
    ``PENDING`` while a gate job is still running.
    """
    if not jobs:
        return NO_JOBS

    # A job kept from an earlier attempt is no new trial of the gate.
    own = [job for job in jobs if job.attempt in (None, number)]
    matched = [job for job in own if job_matches(job.name, pattern)]
    if not matched:
        return IGNORE
    if any(job.status != "completed" for job in matched):
        return PENDING

    verdicts = [
        (job, verdict)
        for job in matched
        if (verdict := job_verdict(job, timeout_minutes)) is not None
    ]
    if not verdicts:
        return IGNORE
    return _gate_attempt(number, verdicts)


def _gate_attempt(
    number: int, verdicts: Sequence[tuple[CIJob, tuple[str, str]]]
) -> GateAttempt:
    # Shards form one gate run: it passes only if every shard passes.
    verdict = combine_verdicts(v for _, (v, _) in verdicts)
    deciding = [(job, reason) for job, (v, reason) in verdicts if v == verdict]
    jobs = [job for job, _ in verdicts]
    starts = [job.started_at for job in jobs if job.started_at is not None]
    ends = [job.completed_at for job in jobs if job.completed_at is not None]
    return GateAttempt(
        number=number,
        jobs=jobs,
        verdict=verdict,
        reason="CI: " + "; ".join(reason for _, reason in deciding),
        conclusion=deciding[0][0].conclusion,
        started_at=min(starts or ends),
        finished_at=max(ends, default=None),
    )


def no_jobs_attempt(run: CIRun, number: int) -> GateAttempt:
    """The gate attempt of a run that ended without starting any job."""
    conclusion = run.conclusion if number == run.attempt else None
    return GateAttempt(
        number=number,
        jobs=[],
        verdict="incomplete",
        reason=f"CI: the run ended {conclusion or 'without a conclusion'} "
        "without starting any job",
        conclusion=conclusion,
        started_at=run.created_at,
        finished_at=None,
    )
