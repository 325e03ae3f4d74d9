"""Tests for gate_tracker.github_client, against the fake GitHub server."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest
import requests
from fake_github import FakeGitHub, FakeJob
from github_clients import NOW, QUICK, add_runs, listing

from gate_tracker.exceptions import CollectionError, ConfigurationError
from gate_tracker.github_client import (
    CIArtifact,
    ClientLimits,
    GitHubClient,
    UnknownRepositoryError,
    token_from_environment,
)

ELSEWHERE = "http://198.51.100.7:8080"


def test_the_token_comes_from_github_token_then_gh_token() -> None:
    assert token_from_environment({"GITHUB_TOKEN": "a", "GH_TOKEN": "b"}) == "a"
    assert token_from_environment({"GITHUB_TOKEN": " ", "GH_TOKEN": "b\n"}) == "b"
    with pytest.raises(ConfigurationError, match="set GITHUB_TOKEN or GH_TOKEN"):
        token_from_environment({})


def test_listings_follow_link_pages_on_the_same_host(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 230)

    ids = listing(client)

    assert len(ids) == len(set(ids)) == 230
    paths = [
        (r.path, r.query.get("page"), r.query["per_page"]) for r in fake_github.requests
    ]
    repository_id = fake_github.repositories["acme/shop"].id
    assert paths == [
        ("/repos/acme/shop/actions/workflows/e2e.yml/runs", None, "100"),
        (f"/repositories/{repository_id}/actions/workflows/e2e.yml/runs", "2", "100"),
        (f"/repositories/{repository_id}/actions/workflows/e2e.yml/runs", "3", "100"),
    ]
    assert all(r.authorized for r in fake_github.requests)


def test_a_page_known_by_its_etag_is_not_sent_again(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 3)
    path = client.runs_path(None)
    first = next(client.run_pages(path, {}))
    etags = {first.url: {"etag": first.etag, "next": None, "count": 3, "total": 3}}
    used = fake_github.rate_used

    again = next(client.run_pages(path, {}, etags))

    assert again.unchanged
    assert (again.runs, again.count, again.total_count) == ([], 3, 3)
    assert fake_github.requests[-1].status == 304
    assert fake_github.rate_used == used


def test_a_changed_page_comes_back_in_full_despite_its_old_etag(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 3)
    path = client.runs_path(None)
    first = next(client.run_pages(path, {}))
    etags = {first.url: {"etag": first.etag, "next": None, "count": 3, "total": 3}}
    add_runs(fake_github, 1)

    again = next(client.run_pages(path, {}, etags))

    assert not again.unchanged
    assert len(again.runs) == 4


def test_a_next_link_to_another_host_is_refused(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(
        200,
        path="/runs$",
        body={"total_count": 200, "workflow_runs": []},
        headers={
            "Link": f'<{ELSEWHERE}/repositories/1/actions/runs?page=2>; rel="next"'
        },
    )

    with pytest.raises(CollectionError, match=f"points to {re.escape(ELSEWHERE)}"):
        listing(client)


def test_the_jobs_of_each_attempt_are_listed_from_their_own_path(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    repository = fake_github.repositories["acme/shop"]
    run = fake_github.add_run(repository, NOW, [FakeJob("e2e-gate", "failure")])
    fake_github.rerun(run, [FakeJob(f"e2e-gate ({i}/120)") for i in range(1, 121)])

    first = client.attempt_jobs(run.id, 1)
    second = client.attempt_jobs(run.id, 2)

    assert [(j.name, j.conclusion, j.attempt) for j in first] == [
        ("e2e-gate", "failure", 1)
    ]
    assert len(second) == 120
    assert fake_github.count(rf"/runs/{run.id}/attempts/1/jobs$") == 1
    assert fake_github.count(rf"/runs/{run.id}/attempts/2/jobs$") == 2


def test_a_workflow_is_found_by_name_or_file(client: GitHubClient) -> None:
    by_name = client.workflow_id("E2E gate")

    assert client.workflow_id("e2e.yml") == by_name
    with pytest.raises(CollectionError, match=r"workflows: E2E gate, Lint"):
        client.workflow_id("Deploy")


def test_a_bad_token_is_a_clear_error_that_never_shows_the_token(
    fake_github: FakeGitHub,
) -> None:
    wrong = "ghp_" + "x" * 36
    with (
        GitHubClient(
            "acme/shop", wrong, base_url=fake_github.base_url, limits=QUICK
        ) as bad,
        pytest.raises(CollectionError) as caught,
    ):
        listing(bad)

    message = str(caught.value)
    assert "rejected the token (401 Bad credentials)" in message
    assert "GITHUB_TOKEN or GH_TOKEN" in message
    assert wrong not in message and wrong not in repr(caught.value.__cause__)


def test_no_access_is_a_clear_error(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(403, body={"message": "Resource not accessible by integration"})

    with pytest.raises(
        CollectionError, match=r"no access to .*actions: read on acme/shop"
    ):
        listing(client)


def test_an_unknown_repository_is_a_404_error(fake_github: FakeGitHub) -> None:
    with GitHubClient(
        "acme/none", fake_github.token, base_url=fake_github.base_url, limits=QUICK
    ) as unknown:
        with pytest.raises(UnknownRepositoryError, match=r"found no .* \(404\)"):
            listing(unknown)
        assert not unknown.repository_exists()


def test_a_burst_of_server_errors_is_retried(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    add_runs(fake_github, 2)
    fake_github.fail(502, times=2)

    assert len(listing(client)) == 2
    assert [r.status for r in fake_github.requests] == [502, 502, 200]


def test_server_errors_that_do_not_stop_end_in_a_clear_error(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(503, times=None)

    with pytest.raises(
        CollectionError, match=r"kept failing .*3 retries.*run the same"
    ):
        listing(client)
    assert fake_github.count("", status=503) == 4


def test_an_answer_slower_than_the_timeout_is_a_network_error(
    fake_github: FakeGitHub,
) -> None:
    impatient = ClientLimits(seconds_between_requests=0, timeout_s=1, retries=0)
    fake_github.fail(200, delay=2, times=None)

    opened = GitHubClient(
        "acme/shop", fake_github.token, base_url=fake_github.base_url, limits=impatient
    )

    with opened, pytest.raises(CollectionError, match=r"cannot reach GitHub .*timed"):
        listing(opened)


def test_a_server_that_is_not_there_is_a_network_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    limits = ClientLimits(seconds_between_requests=0, retries=1, backoff_factor=0.01)

    opened = GitHubClient(
        "acme/shop", "t", base_url=f"http://127.0.0.1:{port}/api/v3", limits=limits
    )

    with opened, pytest.raises(CollectionError, match=r"cannot reach GitHub at http"):
        listing(opened)


def test_an_artifact_is_downloaded_from_blob_storage_without_the_token(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    repository = fake_github.repositories["acme/shop"]
    run = fake_github.add_run(repository, NOW)
    fake_github.add_artifact(run, "gate-record-1-1", {"record.json": b"{}"})

    [artifact] = client.run_artifacts(run.id)
    data = client.download_artifact(artifact)

    assert data is not None and data.startswith(b"PK")
    assert fake_github.count(rf"/artifacts/{artifact.id}/zip$", status=302) == 1
    assert len(fake_github.blob.requests) == 1
    assert fake_github.blob.authorization_seen == []


def test_the_blob_store_refuses_a_request_that_carries_a_token(
    fake_github: FakeGitHub,
) -> None:
    location = fake_github.blob.put(b"PK")

    answer = requests.get(
        location, headers={"Authorization": "token secret"}, timeout=5
    )

    assert answer.status_code == 400
    assert fake_github.blob.authorization_seen == [urlsplit(location).path]


def test_expired_and_missing_artifacts_give_nothing(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    repository = fake_github.repositories["acme/shop"]
    run = fake_github.add_run(repository, NOW)
    fake_github.add_artifact(run, "gate-record-a", {}, vanished=True)
    fake_github.add_artifact(run, "gate-record-b", {}, gone=True)

    artifacts = client.run_artifacts(run.id)

    assert [a.expired for a in artifacts] == [False, False]
    assert [client.download_artifact(a) for a in artifacts] == [None, None]
    assert fake_github.blob.requests == []


def test_an_unknown_artifact_answer_is_an_error(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    fake_github.fail(500, path="/zip$", times=None)
    artifact = CIArtifact(
        id=1, name="gate-record-1-1", created_at=None, expired=False, size=1
    )

    with pytest.raises(CollectionError, match="kept failing while reading artifact"):
        client.download_artifact(artifact)
