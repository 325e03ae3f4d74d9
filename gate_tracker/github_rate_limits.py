"""GitHub's rate limits, waited for within a bound or turned into a clean stop.

``BoundedRetry`` is PyGithub's retry policy with every wait bounded; a wait
past the bound becomes ``RateLimitStop``, which says when to try again.
GitHub's rules: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from github import GithubException, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3.util.retry import Retry

from gate_tracker.exceptions import CollectionError

RATE_LIMITED = (403, 429)


class RateLimitStop(CollectionError):
    """GitHub's rate limit would need a longer wait than allowed.

    ``resume_at`` says when a new attempt can expect to succeed.
    """

    def __init__(self, message: str, resume_at: datetime) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class BoundedRetry(GithubRetry):
    """PyGithub's retry policy, with every rate-limit wait bounded.

    ``GithubRetry`` (https://github.com/PyGithub/PyGithub/pull/2387) bounds
    the wait it computes for a 403, but leaves a ``Retry-After`` header to
    urllib3, which sleeps up to six hours, and does not retry a 429 that has
    none. Here both are bounded by ``max_rate_limit_wait``, and a bare 429
    waits for the rate limit reset, or a minute when none is announced, as
    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    advises.
    """

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        wait: float | None = None
        try:
            if response is not None and response.status in RATE_LIMITED:
                wait = self._bounded_wait(response)
            retry: Retry = super().increment(
                method, url, response, error, _pool, _stacktrace
            )
        except GithubException:
            # urllib3 gives the connection back only for its own errors: an
            # exception raised here would leave it open.
            if response is not None:
                response.drain_conn()
                response.release_conn()
            raise

        if wait is not None and response.status == 429:
            # urllib3 sleeps a Retry-After itself; otherwise it sleeps this.
            backoff: float = wait
            retry.get_backoff_time = lambda: backoff  # type: ignore[method-assign]
        return retry

    def _bounded_wait(self, response: Any) -> float | None:
        wait = _announced_wait(response.headers)
        if wait is None and response.status == 429:
            wait = self.secondary_rate_wait
        if wait is not None and wait > (self.max_rate_limit_wait or 0):
            raise RateLimitExceededExceedsMaxWait(
                response.status, None, dict(response.headers), wait=wait
            )
        return wait


def _announced_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds GitHub asks to wait, from ``Retry-After`` or the limit reset."""
    retry_after = headers.get("Retry-After")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after)

    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if remaining == "0" and reset and reset.isdigit():
        return max(int(reset) - time.time(), 0.0) + 1
    return None


def rate_limit_stop(
    what: str, wait: float | None, headers: Mapping[str, Any] | None
) -> RateLimitStop:
    """The stop for a rate limit hit reading ``what``, resuming after ``wait``
    seconds or at the reset GitHub announced."""
    now = datetime.now(timezone.utc)
    reset = (headers or {}).get("x-ratelimit-reset") or (headers or {}).get(
        "X-RateLimit-Reset"
    )
    if wait is not None:
        resume = now + timedelta(seconds=wait)
    elif reset and str(reset).isdigit():
        resume = datetime.fromtimestamp(int(reset), timezone.utc)
    else:
        resume = now + timedelta(minutes=1)
    return RateLimitStop(
        f"GitHub's rate limit was reached while reading {what}; stopped, what is "
        f"stored stays. Run the same command again after {clock(resume)}",
        resume,
    )


def clock(moment: datetime) -> str:
    """A moment as people read it: ``2026-12-03 14:05 UTC``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
