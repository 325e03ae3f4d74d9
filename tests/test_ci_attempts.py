"""Tests for gate_tracker.ci_attempts: gate jobs, their verdicts, run keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import build_session

from gate_tracker.ci_attempts import (
    IGNORE,
    NO_JOBS,
    PENDING,
    GateAttempt,
    decide_attempt,
    job_matches,
    job_verdict,
    no_jobs_attempt,
    run_key,
)
from gate_tracker.github_client import CIJob, CIRun

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def job(
    name: str = "e2e-gate",
    conclusion: str | None = "success",
    *,
    minutes: float = 12,
    status: str = "completed",
    attempt: int | None = 1,
    offset: float = 0,
) -> CIJob:
    started = START + timedelta(minutes=offset)
    return CIJob(
        id=abs(hash((name, offset))) % 10**9,
        name=name,
        status=status,
        conclusion=conclusion,
        started_at=started,
        completed_at=started + timedelta(minutes=minutes),
        attempt=attempt,
        url=None,
    )


@pytest.mark.parametrize(
    "name",
    [
        "e2e-gate",
        "e2e-gate (2/4)",
        "e2e-gate (shard 1)",
        "release / e2e-gate",
        "release / e2e-gate (1/2)",
        "nightly / release / e2e-gate",
    ],
)
def test_gate_job_names_that_match(name: str) -> None:
    assert job_matches(name, "e2e-gate")


@pytest.mark.parametrize(
    "name",
    ["e2e-gate-extra", "lint", "e2e-gate / lint", "pre-e2e-gate", "e2e"],
)
def test_job_names_that_do_not_match(name: str) -> None:
    assert not job_matches(name, "e2e-gate")


def test_a_name_cut_near_100_characters_matches_by_its_start() -> None:
    caller = "deploy-and-verify-" * 5 + "ok"
    cut = (caller + " / e2e-gate (3/8)")[:100]

    assert len(cut) == 100
    assert cut.endswith("/ e2e-g")
    assert job_matches(cut, "e2e-gate")
    assert not job_matches(cut[:-3] + "xy", "e2e-gate")


def test_a_short_name_ending_like_the_start_of_the_pattern_does_not_match() -> None:
    assert not job_matches("build / e2e-", "e2e-gate")


def test_a_glob_pattern_matches_the_last_segment_and_shards() -> None:
    assert job_matches("release / e2e-gate-linux", "e2e-gate-*")
    assert job_matches("e2e-gate-linux (1/2)", "e2e-gate-*")
    assert not job_matches("unit-linux", "e2e-gate-*")


@pytest.mark.parametrize(
    ("conclusion", "minutes", "verdict"),
    [
        ("success", 12, "pass"),
        ("failure", 12, "fail"),
        ("timed_out", 360, "timeout"),
        ("cancelled", 360.5, "timeout"),
        ("cancelled", 350, "timeout"),
        ("cancelled", 340, "cancelled"),
        ("cancelled", 5, "cancelled"),
        ("startup_failure", 0, "incomplete"),
        ("action_required", 0, "incomplete"),
        ("neutral", 1, "incomplete"),
        (None, 1, "incomplete"),
    ],
)
def test_conclusions_map_to_verdicts(
    conclusion: str | None, minutes: float, verdict: str
) -> None:
    result = job_verdict(job(conclusion=conclusion, minutes=minutes), 360)

    assert result is not None
    assert result[0] == verdict


def test_a_skipped_job_has_no_verdict() -> None:
    assert job_verdict(job(conclusion="skipped"), 360) is None


def test_the_timeout_is_the_one_given() -> None:
    near = job(conclusion="cancelled", minutes=29.5)

    assert job_verdict(near, 30) == (
        "timeout",
        "e2e-gate was cancelled after 30 min, at its 30 min timeout",
    )
    assert job_verdict(near, 360) == (
        "cancelled",
        "e2e-gate was cancelled after 30 min",
    )


def test_shards_form_one_gate_run_that_fails_when_one_shard_fails() -> None:
    shards = [
        job("e2e-gate (1/3)", offset=0, minutes=10),
        job("e2e-gate (2/3)", "failure", offset=1, minutes=20),
        job("e2e-gate (3/3)", offset=2, minutes=5),
        job("lint", "failure", offset=0, minutes=1),
    ]

    attempt = decide_attempt(1, shards, "e2e-gate", 360)

    assert isinstance(attempt, GateAttempt)
    assert attempt.verdict == "fail"
    assert attempt.conclusion == "failure"
    assert attempt.reason == "CI: e2e-gate (2/3) failed"
    assert [j.name for j in attempt.jobs] == [
        "e2e-gate (1/3)",
        "e2e-gate (2/3)",
        "e2e-gate (3/3)",
    ]
    assert attempt.started_at == START
    assert attempt.finished_at == START + timedelta(minutes=21)


def test_all_shards_passing_make_a_pass() -> None:
    shards = [job("e2e-gate (1/2)"), job("e2e-gate (2/2)", offset=1)]

    attempt = decide_attempt(1, shards, "e2e-gate", 360)

    assert isinstance(attempt, GateAttempt)
    assert attempt.verdict == "pass"
    assert attempt.reason == "CI: e2e-gate (1/2) succeeded; e2e-gate (2/2) succeeded"


def test_skipped_shards_are_left_out_and_all_skipped_is_ignored() -> None:
    mixed = [job("e2e-gate (1/2)"), job("e2e-gate (2/2)", "skipped")]
    skipped = [job("e2e-gate", "skipped")]

    attempt = decide_attempt(1, mixed, "e2e-gate", 360)

    assert isinstance(attempt, GateAttempt)
    assert [j.name for j in attempt.jobs] == ["e2e-gate (1/2)"]
    assert decide_attempt(1, skipped, "e2e-gate", 360) == IGNORE


def test_attempts_without_a_counted_gate_job() -> None:
    assert decide_attempt(1, [], "e2e-gate", 360) == NO_JOBS
    assert decide_attempt(1, [job("lint")], "e2e-gate", 360) == IGNORE
    running = [job(status="in_progress", conclusion=None)]
    assert decide_attempt(1, running, "e2e-gate", 360) == PENDING


def test_a_gate_job_kept_from_an_earlier_attempt_is_no_new_trial() -> None:
    jobs = [job("e2e-gate", attempt=1), job("lint", attempt=2)]

    assert decide_attempt(2, jobs, "e2e-gate", 360) == IGNORE


def test_a_run_without_jobs_is_an_incomplete_gate_run() -> None:
    run = CIRun(
        id=5,
        attempt=1,
        status="completed",
        conclusion="startup_failure",
        event="push",
        branch="main",
        commit="abc",
        created_at=START,
        workflow_id=1,
        workflow_name="E2E",
        url="https://github.com/acme/shop/actions/runs/5",
    )

    attempt = no_jobs_attempt(run, 1)

    assert attempt.verdict == "incomplete"
    assert attempt.reason == (
        "CI: the run ended startup_failure without starting any job"
    )
    assert attempt.started_at == START
    assert attempt.finished_at is None


def test_the_run_key_is_the_one_the_plugin_gives_a_session_in_ci() -> None:
    session = build_session(run_id="4242", attempt=3, repository="acme/shop")

    assert run_key("acme/shop", 4242, 3) == session.run_key
