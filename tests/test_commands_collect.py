"""``gate-tracker collect github`` as a user runs it, against the fake GitHub."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_github import FakeGitHub, FakeJob, rate_limited

from gate_tracker.cli import main

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, the working directory of every command."""
    monkeypatch.chdir(tmp_path)
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GATE_TRACKER_DB", raising=False)
    return tmp_path


def gate_tracker(
    *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Result:
    environment = {"CI": "true", **(env or {})}
    if token is not None:
        environment["GITHUB_TOKEN"] = token
    return CliRunner().invoke(main, list(args), env=environment)


def collect(
    fake: FakeGitHub,
    *args: str,
    token: str | None = None,
    options: tuple[str, ...] = (),
) -> Result:
    return gate_tracker(
        *options,
        *fake.collect_args(),
        "--request-interval",
        "0",
        *args,
        token=fake.token if token is None else token,
    )


def add_runs(fake: FakeGitHub, count: int, **job: Any) -> None:
    repository = fake.repositories["acme/shop"]
    for index in range(count):
        fake.add_run(
            repository, NOW - timedelta(hours=1 + index), [FakeJob("e2e-gate", **job)]
        )


def database_text(project: Path) -> str:
    """Everything stored in the project's default database, as one text."""
    connection = sqlite3.connect(project / ".gate-tracker" / "gate.db")
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        return "\n".join(
            repr(row)
            for table in tables
            for row in connection.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        connection.close()


def test_collect_then_status_as_a_user_would(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 3)

    collected = collect(fake_github)
    status = gate_tracker(
        "status", "--gate", "e2e-gate", "--repo", "acme/shop", "--required", "3"
    )

    assert collected.exit_code == 0, collected.output
    assert collected.stdout.splitlines()[0] == (
        "acme/shop e2e-gate: collected 3 runs listed; 3 gate runs stored, "
        "0 already stored, 0 in progress"
    )
    assert status.exit_code == 0, status.output
    assert "3/3 consecutive clean passes - MET" in status.stdout


def test_a_second_collect_says_nothing_new_was_stored(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 2)
    collect(fake_github)

    again = collect(fake_github)

    assert again.exit_code == 0
    assert "0 gate runs stored, 2 already stored" in again.stdout


def test_defaults_come_from_the_projects_settings(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 2)
    (project / "pyproject.toml").write_text(
        "[tool.gate-tracker]\n"
        'gate = "shop-e2e"\n'
        'repo = "acme/shop"\n'
        'job = "e2e-gate"\n'
        'workflow = "E2E gate"\n'
        f'base_url = "{fake_github.base_url}"\n'
        'events = ["push"]\n'
        'artifacts = ["gate-record*"]\n'
        "request_interval = 0\n"
        "max_wait = 1\n",
        encoding="utf-8",
    )

    result = gate_tracker("collect", "github", token=fake_github.token)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("acme/shop shop-e2e: collected 2 runs listed")
    assert fake_github.requests[1].query["event"] == "push"


def test_without_a_token_it_says_where_the_token_goes(
    project: Path, fake_github: FakeGitHub
) -> None:
    result = collect(fake_github, token="")

    assert result.exit_code == 2
    assert "set GITHUB_TOKEN or GH_TOKEN" in result.stderr
    assert fake_github.requests == []


def test_the_token_never_reaches_output_logs_or_the_database(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 2, conclusion="failure")
    wrong = "ghp_" + "Z" * 36

    ok = gate_tracker(
        "-vv",
        "--log-format",
        "json",
        "collect",
        "github",
        "--repo",
        "acme/shop",
        "--job",
        "e2e-gate",
        "--base-url",
        fake_github.base_url,
        "--request-interval",
        "0",
        token=fake_github.token,
    )
    refused = collect(fake_github, token=wrong, options=("-vv",))

    assert ok.exit_code == 0, ok.output
    assert refused.exit_code == 2
    assert "rejected the token (401 Bad credentials)" in refused.stderr
    for secret in (fake_github.token, wrong):
        assert secret not in ok.output + refused.output
        assert secret not in database_text(project)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2026-11-01", "--days", "3"), "give --since or --days, not both"),
        (("--since", "last tuesday"), "--since must be a date like 2026-11-01"),
        (("--since", "2999-01-01"), "--since 2999-01-01 is in the future"),
        (("--repo", "shop"), "--repo must be OWNER/NAME, like acme/shop, not 'shop'"),
        (("--base-url", "api.github.com"), "--base-url must be an http(s) URL"),
    ],
)
def test_wrong_options_are_refused_before_any_request(
    project: Path, fake_github: FakeGitHub, args: tuple[str, ...], message: str
) -> None:
    result = collect(fake_github, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert fake_github.requests == []


def test_a_rate_limit_stop_shows_what_was_stored_and_when_to_resume(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 120)
    fake_github.fail(403, times=None, after=110, **rate_limited(reset_in=3600))

    result = collect(fake_github, "--no-artifacts")

    # The first page, its jobs, the second page and 8 more jobs got through.
    assert result.exit_code == 2
    assert "stopped early after 120 runs listed; 108 gate runs stored" in result.stdout
    assert "rate limit was reached" in result.stderr
    assert "Run the same command again after" in result.stderr


def test_an_unknown_repository_is_named(project: Path, fake_github: FakeGitHub) -> None:
    result = gate_tracker(
        "collect",
        "github",
        "--repo",
        "acme/nothing",
        "--job",
        "e2e-gate",
        "--base-url",
        fake_github.base_url,
        "--request-interval",
        "0",
        token=fake_github.token,
    )

    assert result.exit_code == 2
    assert "has no repository acme/nothing that this token can see" in result.stderr


def test_ci_gets_plain_progress_lines(project: Path, fake_github: FakeGitHub) -> None:
    add_runs(fake_github, 150)

    result = collect(fake_github, "--no-artifacts")

    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("collect:")]
    assert lines == [
        "collect: 100/150 runs looked at, 100 gate runs found, 0 artifacts read"
    ]


def test_a_progress_bar_can_be_asked_for(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 5)

    result = collect(fake_github, "--progress")

    assert result.exit_code == 0, result.output
    assert "collect:" not in result.stderr
    assert "5 gate runs stored" in result.stdout


def test_expired_artifacts_are_said(project: Path, fake_github: FakeGitHub) -> None:
    run = fake_github.add_run(fake_github.repositories["acme/shop"], NOW)
    fake_github.add_artifact(run, f"gate-record-{run.id}-1", {}, expired=True)

    result = collect(fake_github)

    assert result.exit_code == 0
    assert f"artifact 'gate-record-{run.id}-1' of run {run.id} has expired" in (
        result.stderr
    )
    assert "0 artifacts read, 1 expired or missing" in result.stdout


def test_a_sync_state_is_kept_per_scope(project: Path, fake_github: FakeGitHub) -> None:
    add_runs(fake_github, 2)

    collect(fake_github)
    collect(fake_github, "--branch", "*", "--event", "*")

    database = sqlite3.connect(project / ".gate-tracker" / "gate.db")
    rows = [scope for (scope,) in database.execute("SELECT scope FROM sync_state")]
    database.close()
    scopes = sorted((s["branch"] or "", s["events"]) for s in map(json.loads, rows))
    assert scopes == [("", []), ("main", ["push", "schedule", "workflow_dispatch"])]


def test_pygithubs_retry_notes_follow_the_verbosity(
    project: Path, fake_github: FakeGitHub
) -> None:
    add_runs(fake_github, 1)
    limit = {"body": {"message": "You have exceeded a secondary rate limit."}}
    fake_github.fail(403, headers={"Retry-After": "0"}, **limit)
    quiet = collect(fake_github)
    fake_github.fail(403, headers={"Retry-After": "0"}, **limit)

    verbose = collect(fake_github, options=("-v",))

    assert quiet.exit_code == verbose.exit_code == 0
    assert "Retrying" not in quiet.stderr
    assert "gate-tracker: info: Retrying after 0 seconds" in verbose.stderr
