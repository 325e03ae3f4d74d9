"""A GitHub client pointed at the fake server, tuned for tests, and helpers.

``client`` is a fixture, registered for every test by ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fake_github import FakeGitHub

from gate_tracker.github_client import ClientLimits, GitHubClient

NOW = datetime.now(timezone.utc).replace(microsecond=0)

QUICK = ClientLimits(
    seconds_between_requests=0,
    retries=3,
    backoff_factor=0.01,
    secondary_wait_s=0.2,
    max_wait_s=5,
    timeout_s=2,
)
"""Short waits and retries, so a test of a failure takes no time."""


@pytest.fixture
def client(fake_github: FakeGitHub) -> Iterator[GitHubClient]:
    with GitHubClient(
        "acme/shop", fake_github.token, base_url=fake_github.base_url, limits=QUICK
    ) as opened:
        yield opened


def add_runs(fake: FakeGitHub, count: int) -> None:
    """Add ``count`` runs to acme/shop, one an hour back from ``NOW``."""
    repository = fake.repositories["acme/shop"]
    for index in range(count):
        fake.add_run(repository, NOW - timedelta(hours=index + 1))


def listing(client: GitHubClient) -> list[int]:
    """The run ids a listing of e2e.yml on main returns, page after page."""
    pages = client.run_pages(client.runs_path("e2e.yml"), {"branch": "main"})
    return [run.id for page in pages for run in page.runs]
