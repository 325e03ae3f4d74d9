"""Fixtures shared by the test suite: databases and hand-built sessions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from databases import new_pg_database
from fake_github import fake_github  # noqa: F401  (the fake GitHub fixture)
from github_clients import client  # noqa: F401  (a client of the fake GitHub)

from gate_tracker.records import CIContext, SessionRecord, TestRecord
from gate_tracker.storage import Store

PG_ENV = "GATE_TRACKER_TEST_PG"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'gate.db'}"


def _pg_base_url() -> str:
    return os.environ.get(PG_ENV, PG_DEFAULT)


def _pg_unavailable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as err:  # any failure to connect means "no server"
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The base URL of the test PostgreSQL server, or a skip saying how to get one.

    Under CI (``CI=true``) a missing server is a failure, not a skip.
    """
    url = _pg_base_url()
    problem = _pg_unavailable(url)
    if problem is None:
        return url
    message = (
        f"no PostgreSQL server at {url} ({problem}); start one, or set {PG_ENV} "
        "to a URL of a database the tests may create databases from"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    with new_pg_database(pg_server) as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    with Store(sqlite_url) as opened:
        yield opened


SessionFactory = Callable[..., SessionRecord]


@pytest.fixture
def make_session() -> SessionFactory:
    """Build a ``SessionRecord`` with sensible defaults; see ``build_session``."""
    return build_session


def build_session(
    index: int = 0,
    *,
    gate: str = "e2e-gate",
    verdict: str = "pass",
    tests: list[TestRecord] | None = None,
    event: str = "push",
    branch: str = "main",
    commit: str | None = None,
    run_id: str | None = None,
    attempt: int = 1,
    repository: str = "acme/shop",
    shard: str = "",
    started_at: datetime | None = None,
    duration_s: float = 60.0,
    source: str = "plugin",
) -> SessionRecord:
    """A session of run number ``index``: one hour after ``T0`` per index.

    With ``run_id`` left out, CI runs get ``str(1000 + index)``; pass
    ``event="local"`` for a session outside CI.
    """
    start = started_at or T0 + timedelta(hours=index)
    ci = None
    ci_run = run_id or str(1000 + index)
    if event != "local":
        ci = CIContext(
            provider="github-actions",
            repository=repository,
            workflow="e2e",
            job="e2e-gate",
            run_id=ci_run,
            run_attempt=attempt,
            event=event,
            url=f"https://github.com/{repository}/actions/runs/{ci_run}",
        )
    if tests is None:
        tests = [TestRecord("tests/test_a.py::test_ok", "passed", ["passed"], 0.5)]
    return SessionRecord(
        gate=gate,
        record_id=uuid.uuid4().hex,
        started_at=start,
        finished_at=start + timedelta(seconds=duration_s),
        verdict=verdict,
        source=source,
        shard=shard,
        exit_status=0 if verdict in ("pass", "flaky-pass") else 1,
        commit=commit or f"{index:07x}" + "0" * 33,
        branch=branch,
        event=event,
        ci=ci,
        tests=tests,
    )
