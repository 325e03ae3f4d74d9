"""Tests for gate_tracker.collection: syncing a gate's GitHub Actions history.

Every test runs the collector against the fake GitHub server (a real HTTP
server on 127.0.0.1) into a real database.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import build_session
from fake_github import FakeGitHub, FakeJob, FakeRun, rate_limited

from gate_tracker import collection
from gate_tracker.collection import (
    CollectionInterrupted,
    CollectOptions,
    Collector,
    CollectProgress,
    CollectResult,
)
from gate_tracker.github_client import ClientLimits, GitHubClient
from gate_tracker.records import TestRecord, session_to_dict
from gate_tracker.schema import gate_runs, gate_sessions, sync_state
from gate_tracker.storage import Store, StoredRun

NOW = datetime.now(timezone.utc).replace(microsecond=0)
QUICK = ClientLimits(
    seconds_between_requests=0,
    retries=2,
    backoff_factor=0.01,
    secondary_wait_s=0.1,
    max_wait_s=2,
    timeout_s=5,
)
LISTING = r"/actions/(workflows/[^/]+/)?runs$"
JUNIT = (
    b'<testsuite name="e2e" tests="2">'
    b'<testcase classname="tests.test_shop" name="test_cart" time="0.5"/>'
    b'<testcase classname="tests.test_shop" name="test_pay" time="0.2"/>'
    b"</testsuite>"
)


def options(**changes: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "repository": "acme/shop",
        "job": "e2e-gate",
        "gate": "e2e-gate",
        "workflow": "e2e.yml",
        "artifacts": (),
    }
    values.update(changes)
    return CollectOptions(**values)


def collect(
    fake: FakeGitHub, store: Store, progress: Any = None, **changes: Any
) -> CollectResult:
    with GitHubClient(
        "acme/shop", fake.token, base_url=fake.base_url, limits=QUICK
    ) as client:
        return Collector(store, client, options(**changes), progress=progress).collect()


def runs(store: Store) -> dict[tuple[int, int], StoredRun]:
    return {
        (int(run.ci_run_id or 0), run.attempt): run
        for run in store.runs("e2e-gate", repository="acme/shop")
    }


def rows(store: Store) -> list[tuple[Any, ...]]:
    with store.reading() as conn:
        return [tuple(row) for row in conn.execute(sa.select(gate_runs))]


@pytest.fixture
def fake(fake_github: FakeGitHub) -> FakeGitHub:
    return fake_github


@pytest.fixture
def repo(fake: FakeGitHub) -> Any:
    return fake.repositories["acme/shop"]


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def add_runs(
    fake: FakeGitHub, count: int, *, spacing_hours: float = 1
) -> list[FakeRun]:
    repository = fake.repositories["acme/shop"]
    return [
        fake.add_run(repository, hours_ago(1 + index * spacing_hours))
        for index in range(count)
    ]


# -- what a gate run is -----------------------------------------------------------


def test_each_attempt_of_each_run_with_a_gate_job_is_a_gate_run(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    passed = fake.add_run(repo, hours_ago(9))
    failed = fake.add_run(repo, hours_ago(8), [FakeJob("e2e-gate", "failure")])
    rescued = fake.add_run(repo, hours_ago(7), [FakeJob("e2e-gate", "failure")])
    fake.rerun(rescued, [FakeJob("e2e-gate")], started_at=hours_ago(6))
    fake.add_run(repo, hours_ago(5), [FakeJob("lint")])
    fake.add_run(repo, hours_ago(5), [FakeJob("e2e-gate", "skipped")])
    fake.add_run(
        repo,
        hours_ago(4),
        [FakeJob("e2e-gate", status="in_progress")],
        status="in_progress",
    )
    no_jobs = fake.add_run(repo, hours_ago(3), [])
    fake.add_run(repo, hours_ago(2), event="pull_request")
    fake.add_run(repo, hours_ago(2), branch="feature")

    result = collect(fake, store)

    stored = runs(store)
    assert {key: run.verdict for key, run in stored.items()} == {
        (passed.id, 1): "pass",
        (failed.id, 1): "fail",
        (rescued.id, 1): "fail",
        (rescued.id, 2): "pass",
        (no_jobs.id, 1): "incomplete",
    }
    assert (result.attempts_stored, result.attempts_ignored, result.pending) == (
        5,
        2,
        1,
    )
    assert result.runs == 7


def test_a_gate_run_keeps_what_ci_says_about_it(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(3), [FakeJob("e2e-gate", "failure")])
    job = run.latest.jobs[0]

    collect(fake, store)

    stored = runs(store)[(run.id, 1)]
    assert stored.run_key == f"ci:github-actions:acme/shop:{run.id}:1"
    assert (stored.event, stored.branch, stored.commit) == ("push", "main", run.sha)
    assert (stored.ci_status, stored.ci_conclusion) == ("completed", "failure")
    assert stored.url == f"{fake.origin}/acme/shop/actions/runs/{run.id}/attempts/1"
    assert (stored.started_at, stored.finished_at) == (job.started_at, job.completed_at)
    assert stored.duration_s == 180.0
    assert (stored.workflow, stored.job, stored.sources) == (
        "E2E gate",
        "e2e-gate",
        "github",
    )
    assert stored.reason == "CI: e2e-gate failed"
    assert not stored.has_test_data
    with store.reading() as conn:
        details = json.loads(
            conn.execute(sa.select(gate_runs.c.ci_details)).scalar_one()
        )
    assert details["jobs"][0]["id"] == job.id
    assert (details["run_status"], details["run_conclusion"]) == (
        "completed",
        "failure",
    )


def test_the_shards_of_one_attempt_form_one_gate_run(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    green = fake.add_run(
        repo, hours_ago(3), [FakeJob(f"release / e2e-gate ({i}/3)") for i in (1, 2, 3)]
    )
    red = fake.add_run(
        repo,
        hours_ago(2),
        [
            FakeJob("e2e-gate (1/2)"),
            FakeJob("e2e-gate (2/2)", "failure"),
            FakeJob("lint", "failure"),
        ],
    )

    collect(fake, store)

    stored = runs(store)
    assert len(stored) == 2
    assert stored[(green.id, 1)].verdict == "pass"
    assert stored[(red.id, 1)].verdict == "fail"
    assert stored[(red.id, 1)].reason == "CI: e2e-gate (2/2) failed"


@pytest.mark.parametrize(
    ("minutes", "timeout", "verdict"),
    [(360, 360, "timeout"), (40, 360, "cancelled"), (29.5, 30, "timeout")],
)
def test_a_job_cancelled_at_its_timeout_timed_out(
    fake: FakeGitHub,
    repo: Any,
    store: Store,
    minutes: float,
    timeout: int,
    verdict: str,
) -> None:
    start = hours_ago(8)
    job = FakeJob(
        "e2e-gate",
        "cancelled",
        started_at=start,
        completed_at=start + timedelta(minutes=minutes),
    )
    run = fake.add_run(repo, start, [job])

    collect(fake, store, timeout_minutes=timeout)

    assert runs(store)[(run.id, 1)].verdict == verdict


def test_runs_from_before_attempt_numbers_are_attempt_one(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(2))
    run.has_attempt_field = False

    collect(fake, store)

    assert list(runs(store)) == [(run.id, 1)]


def test_several_events_are_filtered_after_listing_one_by_the_api(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    push = fake.add_run(repo, hours_ago(4), event="push")
    manual = fake.add_run(repo, hours_ago(3), event="workflow_dispatch")
    fake.add_run(repo, hours_ago(2), event="schedule")

    collect(fake, store, events=("push", "workflow_dispatch"))
    first = fake.requests[0].query
    fake.reset_log()
    collect(fake, store, events=("schedule",))

    assert "event" not in first
    assert fake.requests[0].query["event"] == "schedule"
    assert {key[0] for key in runs(store)} >= {push.id, manual.id}
    assert len(runs(store)) == 3


# -- requests ---------------------------------------------------------------------


def test_a_first_sync_needs_one_listing_request_per_hundred_runs(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 210)

    result = collect(fake, store, artifacts=("gate-record*",))

    assert result.attempts_stored == 210
    assert fake.count(LISTING) == math.ceil(210 / 100)
    assert fake.count("/jobs$") == 210
    assert fake.count("/artifacts$") == 210
    assert fake.count("") == 3 + 210 + 210


def test_a_repeated_sync_with_nothing_new_makes_at_most_two_requests(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 60, spacing_hours=8)
    collect(fake, store)
    fake.reset_log()

    second = collect(fake, store)
    second_requests = fake.count("")
    fake.reset_log()
    third = collect(fake, store)

    assert second_requests <= 2
    assert fake.count("") == 1
    assert fake.requests[0].status == 304
    assert second.attempts_stored == third.attempts_stored == 0
    assert third.runs == second.runs == 60


def test_a_history_of_more_than_1000_runs_is_collected_completely(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 1050, spacing_hours=2)

    result = collect(fake, store)

    stored = runs(store)
    assert len(stored) == 1050 == result.attempts_stored
    assert len({run_id for run_id, _ in stored}) == 1050
    assert fake.count(LISTING) == math.ceil(1050 / 100)
    assert fake.count("/jobs$") == 1050
    assert result.covered_from is not None
    assert result.covered_from <= NOW - timedelta(days=87)


def test_runs_sharing_the_second_where_the_cap_cut_are_all_collected(
    fake: FakeGitHub, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection, "LISTING_CAP", 40)
    fake.listing_cap = 40
    made = add_runs(fake, 50)
    made[40].created_at = made[39].created_at

    collect(fake, store)

    assert {run_id for run_id, _ in runs(store)} == {run.id for run in made}
    assert fake.count(LISTING) == 3
    assert fake.count("/jobs$") == 50


def test_a_listing_out_of_order_at_the_cap_is_split_and_loses_nothing(
    fake: FakeGitHub, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection, "LISTING_CAP", 40)
    fake.listing_cap = 40
    fake.shuffled_listings = True
    made = add_runs(fake, 150, spacing_hours=5)

    collect(fake, store)

    assert {run_id for run_id, _ in runs(store)} == {run.id for run in made}
    assert fake.count("/jobs$") == 150


# -- incremental sync -------------------------------------------------------------


def test_a_rerun_after_a_sync_is_collected_by_the_next(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(20), [FakeJob("e2e-gate", "failure")])
    collect(fake, store)
    fake.rerun(run, started_at=hours_ago(2))
    fake.reset_log()

    result = collect(fake, store)

    assert {k: r.verdict for k, r in runs(store).items()} == {
        (run.id, 1): "fail",
        (run.id, 2): "pass",
    }
    assert result.attempts_stored == 1
    assert fake.count("/jobs$") == fake.count(rf"/runs/{run.id}/attempts/2/jobs$") == 1


def test_a_run_in_progress_is_collected_once_it_has_finished(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(
        repo,
        hours_ago(1),
        [FakeJob("e2e-gate", status="in_progress")],
        status="in_progress",
    )
    first = collect(fake, store)
    fake.finish(run.latest)

    second = collect(fake, store)

    assert (first.pending, first.attempts_stored) == (1, 0)
    assert (second.pending, second.attempts_stored) == (0, 1)
    assert runs(store)[(run.id, 1)].verdict == "pass"


def test_a_run_in_progress_outside_the_revisit_window_is_looked_up_itself(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(
        repo,
        hours_ago(60),
        [FakeJob("e2e-gate", status="in_progress")],
        status="in_progress",
    )
    collect(fake, store, revisit_days=1)
    fake.finish(run.latest)
    fake.reset_log()

    collect(fake, store, revisit_days=1)

    assert fake.count(rf"/actions/runs/{run.id}$") == 1
    assert runs(store)[(run.id, 1)].verdict == "pass"


def test_a_run_in_progress_that_was_deleted_is_forgotten(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(
        repo,
        hours_ago(60),
        [FakeJob("e2e-gate", status="in_progress")],
        status="in_progress",
    )
    collect(fake, store, revisit_days=1)
    del repo.runs[run.id]

    collect(fake, store, revisit_days=1)
    fake.reset_log()
    collect(fake, store, revisit_days=1)

    assert rows(store) == []
    assert fake.count(rf"/actions/runs/{run.id}$") == 0


def test_an_interrupted_sync_resumes_with_nothing_lost_or_doubled(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 220)
    fake.fail(502, times=None, after=130)

    with pytest.raises(CollectionInterrupted, match="kept failing") as caught:
        collect(fake, store)
    before = len(runs(store))
    fake.faults.clear()
    fake.reset_log()
    result = collect(fake, store)

    assert 0 < before == caught.value.result.attempts_stored < 220
    assert len(runs(store)) == len(rows(store)) == 220
    assert result.attempts_stored == 220 - before
    assert fake.count("/jobs$") == 220 - before


def test_collecting_twice_stores_the_same_rows(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    add_runs(fake, 5)
    rerun = fake.add_run(repo, hours_ago(30), [FakeJob("e2e-gate", "failure")])
    fake.rerun(rerun)
    collect(fake, store)
    first = rows(store)

    collect(fake, store)

    assert rows(store) == first
    assert len(first) == 7


def test_a_rate_limit_stops_the_sync_and_says_when_to_resume(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 120)
    fake.fail(403, times=None, after=110, **rate_limited(reset_in=1800))

    with pytest.raises(CollectionInterrupted, match="again after") as caught:
        collect(fake, store)
    fake.faults.clear()
    collect(fake, store)

    assert caught.value.resume_at is not None
    assert caught.value.resume_at > NOW + timedelta(minutes=25)
    assert 0 < caught.value.result.attempts_stored < 120
    assert len(runs(store)) == 120


# -- both sources -----------------------------------------------------------------


def plugin_session(run: FakeRun, attempt: int = 1) -> Any:
    return build_session(
        run_id=str(run.id),
        attempt=attempt,
        verdict="flaky-pass",
        started_at=run.attempts[attempt - 1].started_at,
        tests=[
            TestRecord("tests/test_shop.py::test_cart", "passed", ["failed", "passed"]),
            TestRecord("tests/test_shop.py::test_pay", "passed", ["passed"]),
        ],
    )


@pytest.mark.parametrize(
    "plugin_first", [True, False], ids=["plugin-first", "ci-first"]
)
def test_a_run_the_plugin_recorded_is_one_row_enriched_from_both(
    fake: FakeGitHub, repo: Any, any_db_url: str, plugin_first: bool
) -> None:
    run = fake.add_run(repo, hours_ago(3))
    session = plugin_session(run)

    with Store(any_db_url) as store:
        if plugin_first:
            store.record_session(session)
        collect(fake, store)
        if not plugin_first:
            store.record_session(session)
        stored = runs(store)

    assert list(stored) == [(run.id, 1)]
    row = stored[(run.id, 1)]
    assert row.sources == "github+plugin"
    assert row.verdict == "flaky-pass"
    assert (row.ci_conclusion, row.sessions, row.has_test_data) == ("success", 1, True)
    assert row.counts["rerun"] == 1
    assert row.url == f"{fake.origin}/acme/shop/actions/runs/{run.id}/attempts/1"


def test_per_test_data_comes_from_the_gate_record_artifact(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(3))
    record = json.dumps(session_to_dict(plugin_session(run))).encode()
    fake.add_artifact(run, f"gate-record-{run.id}-1", {"record.json": record})

    result = collect(fake, store, artifacts=("gate-record*",))
    collect(fake, store, artifacts=("gate-record*",))

    row = runs(store)[(run.id, 1)]
    assert (row.verdict, row.sources, row.sessions) == (
        "flaky-pass",
        "github+plugin",
        1,
    )
    assert store.tests_of_note([row.id])[row.id] == (
        [],
        ["tests/test_shop.py::test_cart"],
    )
    assert (result.artifacts, result.sessions, result.notes) == (1, 1, [])
    assert fake.blob.authorization_seen == []
    assert len(fake.blob.requests) == 1


def test_a_record_without_ci_context_lands_in_the_attempt_its_artifact_names(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(3), [FakeJob("e2e-gate", "failure")])
    fake.rerun(run, started_at=hours_ago(2))
    local = build_session(event="local", verdict="pass")
    record = json.dumps(session_to_dict(local)).encode()
    fake.add_artifact(run, f"gate-record-{run.id}-2", {"r.json": record})

    collect(fake, store, artifacts=("gate-record*",))

    stored = runs(store)
    assert (stored[(run.id, 1)].sessions, stored[(run.id, 2)].sessions) == (0, 1)
    assert stored[(run.id, 2)].sources == "github+plugin"


def test_artifacts_without_an_attempt_in_their_name_are_placed_by_time(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(6), [FakeJob("e2e-gate", "failure")])
    fake.rerun(run, started_at=hours_ago(3))
    junit = {"junit.xml": JUNIT}
    fake.add_artifact(
        run, "e2e-junit", junit, created_at=hours_ago(6) + timedelta(minutes=2)
    )
    fake.add_artifact(
        run, "e2e-junit", junit, created_at=hours_ago(3) + timedelta(minutes=2)
    )
    fake.add_artifact(run, "e2e-junit", junit, created_at=hours_ago(1))

    result = collect(fake, store, artifacts=("*junit*",))

    stored = runs(store)
    assert [stored[(run.id, n)].sessions for n in (1, 2)] == [1, 1]
    assert [stored[(run.id, n)].counts["passed"] for n in (1, 2)] == [2, 2]
    assert stored[(run.id, 1)].verdict == "fail"
    assert stored[(run.id, 2)].sources == "github+junit"
    assert result.artifacts == 2


def test_junit_xml_is_not_read_for_an_attempt_the_plugin_recorded(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(3))
    record = json.dumps(session_to_dict(plugin_session(run))).encode()
    fake.add_artifact(run, f"gate-record-{run.id}-1", {"record.json": record})
    fake.add_artifact(run, f"e2e-junit-{run.id}-1", {"junit.xml": JUNIT})

    collect(fake, store, artifacts=("gate-record*", "*junit*"))

    row = runs(store)[(run.id, 1)]
    assert (row.sessions, row.sources) == (1, "github+plugin")
    with store.reading() as conn:
        sources = conn.execute(sa.select(gate_sessions.c.source)).scalars().all()
    assert sources == ["plugin"]


@pytest.mark.parametrize("how", ["expired", "vanished", "gone"])
def test_an_artifact_that_cannot_be_had_leaves_the_run_without_test_data(
    fake: FakeGitHub, repo: Any, store: Store, how: str
) -> None:
    run = fake.add_run(repo, hours_ago(3))
    name = f"gate-record-{run.id}-1"
    fake.add_artifact(run, name, {"r.json": b"{}"}, **{how: True})

    result = collect(fake, store, artifacts=("gate-record*",))

    row = runs(store)[(run.id, 1)]
    assert (row.verdict, row.has_test_data) == ("pass", False)
    assert (result.artifacts_missing, result.without_test_data) == (1, 1)
    assert result.notes == [
        f"artifact {name!r} of run {run.id} has expired or is gone: attempt 1 is "
        "kept without its per-test data"
    ]


def test_an_unreadable_artifact_is_reported_and_the_run_still_stored(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    run = fake.add_run(repo, hours_ago(3))
    name = f"gate-record-{run.id}-1"
    fake.add_artifact(run, name, {"record.json": b'{"format": "gate-tracker-record"'})

    result = collect(fake, store, artifacts=("gate-record*",))

    assert runs(store)[(run.id, 1)].verdict == "pass"
    assert len(result.notes) == 1
    assert result.notes[0].startswith(f"artifact {name!r} of run {run.id}/record.json:")


# -- scope and errors -------------------------------------------------------------


def test_without_a_workflow_only_runs_of_the_gate_workflow_count_when_jobless(
    fake: FakeGitHub, repo: Any, store: Store
) -> None:
    gate = fake.add_run(repo, hours_ago(6))
    gate_jobless = fake.add_run(repo, hours_ago(1), [])
    lint = fake.add_run(repo, hours_ago(4), [FakeJob("lint")], workflow=1)
    lint_jobless = fake.add_run(repo, hours_ago(2), [], workflow=1)

    collect(fake, store, workflow=None)
    fake.reset_log()
    collect(fake, store, workflow=None)

    assert {k: r.verdict for k, r in runs(store).items()} == {
        (gate.id, 1): "pass",
        (gate_jobless.id, 1): "incomplete",
    }
    assert fake.count("/jobs$") == 0
    assert lint.id and lint_jobless.id


def test_a_workflow_given_by_name_is_looked_up_once(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 2)

    collect(fake, store, workflow="E2E gate")
    collect(fake, store, workflow="E2E gate")

    assert len(runs(store)) == 2
    assert fake.count("/actions/workflows$") == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repository": "acme/none"}, "has no repository acme/none that this token"),
        ({"workflow": "nope.yml"}, "has no workflow 'nope.yml' .404."),
        ({"workflow": "Nightly"}, "no workflow named 'Nightly' in acme/shop"),
    ],
)
def test_unknown_repositories_and_workflows_are_clear_errors(
    fake: FakeGitHub, store: Store, changes: dict[str, Any], message: str
) -> None:
    add_runs(fake, 1)
    repository = changes.get("repository", "acme/shop")

    with (
        GitHubClient(
            repository, fake.token, base_url=fake.base_url, limits=QUICK
        ) as client,
        pytest.raises(CollectionInterrupted, match=message),
    ):
        Collector(store, client, options(**changes)).collect()


def test_a_job_name_that_matches_nothing_is_an_error_naming_the_jobs_seen(
    fake: FakeGitHub, store: Store
) -> None:
    add_runs(fake, 3)

    with pytest.raises(
        CollectionInterrupted, match=r"no job matching 'e2e' .*jobs seen: e2e-gate"
    ):
        collect(fake, store, job="e2e")
    with store.reading() as conn:
        assert conn.execute(sa.select(sync_state)).all() == []


def test_a_bad_token_stores_nothing(fake: FakeGitHub, store: Store) -> None:
    add_runs(fake, 2)

    with (
        GitHubClient(
            "acme/shop", "ghp_wrong", base_url=fake.base_url, limits=QUICK
        ) as client,
        pytest.raises(CollectionInterrupted, match="rejected the token"),
    ):
        Collector(store, client, options()).collect()
    assert rows(store) == []


def test_progress_is_reported_as_counts(fake: FakeGitHub, store: Store) -> None:
    add_runs(fake, 105)
    seen: list[CollectProgress] = []

    collect(fake, store, progress=seen.append)

    assert seen[-1].runs == seen[-1].runs_expected == 105
    assert seen[-1].attempts == 105
    assert [p.runs for p in seen] == sorted(p.runs for p in seen)
    assert [p.attempts for p in seen] == sorted(p.attempts for p in seen)
