"""Tests for gate_tracker.github_rate_limits: bounded waits, clean stops.

The waits are exercised through the client against the fake GitHub, which
answers 403 and 429 with GitHub's messages and headers.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from fake_github import FakeGitHub, rate_limited, secondary_limit
from github_clients import add_runs, listing

from gate_tracker.github_client import ClientLimits, GitHubClient
from gate_tracker.github_rate_limits import RateLimitStop, clock, rate_limit_stop


def test_a_stop_resumes_after_the_wait_or_at_the_announced_reset() -> None:
    now = datetime.now(timezone.utc)
    reset = int((now + timedelta(minutes=42)).timestamp())

    waited = rate_limit_stop("the runs", 600, None)
    announced = rate_limit_stop("the runs", None, {"x-ratelimit-reset": str(reset)})

    assert abs((waited.resume_at - now).total_seconds() - 600) < 30
    assert announced.resume_at == datetime.fromtimestamp(reset, timezone.utc)
    assert str(announced) == (
        "GitHub's rate limit was reached while reading the runs; stopped, what is "
        f"stored stays. Run the same command again after {clock(announced.resume_at)}"
    )


def test_a_moment_is_shown_in_utc_to_the_minute() -> None:
    moment = datetime(2026, 12, 3, 15, 5, 59, tzinfo=timezone(timedelta(hours=1)))

    assert clock(moment) == "2026-12-03 14:05 UTC"


def test_a_primary_rate_limit_far_off_stops_at_once_with_the_reset_time(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(403, times=None, **rate_limited(reset_in=3600))
    started, started_at = time.monotonic(), datetime.now(timezone.utc)

    with pytest.raises(RateLimitStop) as caught:
        listing(client)

    assert time.monotonic() - started < 2
    assert abs((caught.value.resume_at - started_at).total_seconds() - 3600) < 60
    assert "Run the same command again after" in str(caught.value)
    assert fake_github.count("") == 1


def test_a_primary_rate_limit_resetting_soon_is_waited_for(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 1)
    fake_github.fail(403, **rate_limited(reset_in=2))
    started = time.monotonic()

    assert len(listing(client)) == 1
    assert 1 < time.monotonic() - started < 5
    assert [r.status for r in fake_github.requests] == [403, 200]


def test_a_secondary_limit_with_retry_after_is_waited_for(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 1)
    fake_github.fail(403, **secondary_limit(retry_after=1))

    assert len(listing(client)) == 1
    assert [r.status for r in fake_github.requests] == [403, 200]


def test_a_retry_after_longer_than_the_bound_stops_at_once(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(429, headers={"Retry-After": "3600"})
    started, started_at = time.monotonic(), datetime.now(timezone.utc)

    with pytest.raises(RateLimitStop) as caught:
        listing(client)

    assert time.monotonic() - started < 2
    assert (caught.value.resume_at - started_at).total_seconds() > 3000


def test_a_429_without_retry_after_waits_and_retries(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 1)
    fake_github.fail(429, times=2, body={"message": "Too Many Requests"})

    assert len(listing(client)) == 1
    assert [r.status for r in fake_github.requests] == [429, 429, 200]


def test_a_429_without_retry_after_and_a_long_wait_stops(
    fake_github: FakeGitHub,
) -> None:
    patient = ClientLimits(
        seconds_between_requests=0, secondary_wait_s=60, max_wait_s=1
    )
    fake_github.fail(429, body={"message": "Too Many Requests"})

    with (
        GitHubClient(
            "acme/shop",
            fake_github.token,
            base_url=fake_github.base_url,
            limits=patient,
        ) as opened,
        pytest.raises(RateLimitStop, match="rate limit was reached"),
    ):
        listing(opened)
