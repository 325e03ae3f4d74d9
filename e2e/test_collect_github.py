"""Collect a gate's history from an imitation of GitHub, then ask for the status.

The imitation is the test suite's fake GitHub (``tests/fake_github.py``): a
real HTTP server on 127.0.0.1 that the installed ``gate-tracker`` command
reaches through ``--base-url``, as it would reach GitHub Enterprise Server.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import Workspace

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _fake_github_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tests" / "fake_github.py"
    spec = importlib.util.spec_from_file_location("fake_github", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fake_github", module)
    spec.loader.exec_module(module)
    return module


fake_github_module = _fake_github_module()


@pytest.fixture
def github() -> Iterator[Any]:
    """A running fake GitHub holding ``acme/shop`` and its gate's history.

    Newest first: 20 green runs, then a run whose first attempt failed and
    whose re-run passed, then two older green runs, one with the plugin's
    record as an artifact, one whose artifact has expired.
    """
    fake = fake_github_module.FakeGitHub()
    repository = fake.add_repository("acme/shop")
    job = fake_github_module.FakeJob
    for index in range(20):
        fake.add_run(repository, NOW - timedelta(hours=2 + index))
    rescued = fake.add_run(
        repository, NOW - timedelta(hours=30), [job("e2e-gate", "failure")]
    )
    fake.rerun(rescued, started_at=NOW - timedelta(hours=29))
    recorded = fake.add_run(repository, NOW - timedelta(hours=40))
    fake.add_artifact(
        recorded, f"gate-record-{recorded.id}-1", {"record.json": _record(recorded)}
    )
    expired = fake.add_run(repository, NOW - timedelta(hours=50))
    fake.add_artifact(expired, f"gate-record-{expired.id}-1", {}, expired=True)
    try:
        yield fake
    finally:
        fake.close()


def _record(run: Any) -> bytes:
    started = run.latest.started_at
    session = {
        "gate": "shop-gate",
        "record_id": f"recorded-in-ci-{run.id}",
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(minutes=2)).isoformat(),
        "verdict": "flaky-pass",
        "event": "push",
        "branch": "main",
        "ci": {
            "provider": "github-actions",
            "repository": "acme/shop",
            "run_id": str(run.id),
            "run_attempt": 1,
        },
        "tests": [
            {
                "test_id": "test_shop.py::test_cart",
                "outcome": "passed",
                "attempts": ["failed", "passed"],
            },
            {
                "test_id": "test_shop.py::test_pay",
                "outcome": "passed",
                "attempts": ["passed"],
            },
        ],
    }
    return json.dumps(
        {"format": "gate-tracker-record", "version": 1, "session": session}
    ).encode()


def collect(shop: Workspace, github: Any, *args: str) -> Any:
    return shop.gate_tracker(
        "collect",
        "github",
        "--repo",
        "acme/shop",
        "--workflow",
        "e2e.yml",
        "--job",
        "e2e-gate",
        "--gate",
        "shop-gate",
        "--base-url",
        github.base_url,
        *args,
        env={"GITHUB_TOKEN": github.token},
    )


def test_collected_history_meets_the_objective_as_status_reports_it(
    workspace: Callable[[str], Workspace], github: Any
) -> None:
    shop = workspace("shop")

    collected = collect(shop, github)
    status = shop.gate_tracker("status", "--gate", "shop-gate", "--repo", "acme/shop")
    document = shop.status_json("--gate", "shop-gate", "--repo", "acme/shop")

    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.splitlines()[0] == (
        "acme/shop shop-gate: collected 23 runs listed; 24 gate runs stored, "
        "0 already stored, 0 in progress"
    )
    assert "has expired or is gone" in collected.stderr
    assert status.returncode == 0, status.stdout + status.stderr
    assert "20/20 consecutive clean passes - MET" in status.stdout
    assert document["streak"] == 20
    assert github.blob.authorization_seen == []
    assert github.token not in collected.stdout + collected.stderr


def test_a_second_collect_fetches_only_what_changed(
    workspace: Callable[[str], Workspace], github: Any
) -> None:
    shop = workspace("shop")
    collect(shop, github)
    newest = github.add_run(
        github.repositories["acme/shop"],
        NOW - timedelta(minutes=30),
        [fake_github_module.FakeJob("e2e-gate", "failure")],
    )
    github.reset_log()

    again = collect(shop, github)
    status = shop.gate_tracker("status", "--gate", "shop-gate", "--repo", "acme/shop")

    assert again.returncode == 0, again.stderr
    assert "1 gate run stored, 24 already stored" in again.stdout
    assert github.count("/jobs$") == 1
    assert github.count(rf"/runs/{newest.id}/attempts/1/jobs$") == 1
    assert status.returncode == 1
    assert "0/20 consecutive clean passes - NOT MET" in status.stdout
