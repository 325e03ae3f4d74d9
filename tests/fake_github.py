"""A fake GitHub REST API for tests: real HTTP servers on 127.0.0.1.

``FakeGitHub`` serves repositories, workflow runs with their attempts, jobs
and artifacts in the shapes GitHub uses (see the recordings under
``../shared/corpus/C-github-actions-api``), under the ``/api/v3`` root of
GitHub Enterprise Server. Listings page with ``Link`` headers that stay on
this host and port and use the ``/repositories/{id}/...`` form real ``next``
links use; filtered run listings stop at 1,000 results; every answer carries
rate-limit headers and an ETag, and ``If-None-Match`` gets a 304. Artifact
downloads redirect to a second server, the blob store, which refuses any
request with an ``Authorization`` header and records it. Faults (5xx bursts,
401, 403 and 429 with reset times, slow answers) are queued with ``fail``.
Every request is logged for counting.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import re
import secrets
import socket
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

API_PREFIX = "/api/v3"
LISTING_CAP = 1000
_FILTERS = (
    "actor",
    "branch",
    "check_suite_id",
    "created",
    "event",
    "head_sha",
    "status",
)
_DOCS = "https://docs.github.com/rest"


@dataclass
class FakeJob:
    """A job of one attempt; times default to the attempt's."""

    name: str
    conclusion: str | None = "success"
    status: str = "completed"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempt: int | None = None
    id: int = 0


@dataclass
class FakeAttempt:
    number: int
    jobs: list[FakeJob]
    started_at: datetime
    status: str = "completed"
    conclusion: str | None = "success"


@dataclass
class FakeArtifact:
    name: str
    files: dict[str, bytes]
    created_at: datetime
    expired: bool = False
    vanished: bool = False
    gone: bool = False
    id: int = 0

    def archive(self) -> bytes:
        return zip_of(self.files)


@dataclass
class FakeRun:
    id: int
    created_at: datetime
    attempts: list[FakeAttempt]
    workflow_id: int
    event: str = "push"
    branch: str = "main"
    sha: str = "0" * 40
    artifacts: list[FakeArtifact] = field(default_factory=list)
    has_attempt_field: bool = True

    @property
    def latest(self) -> FakeAttempt:
        return self.attempts[-1]


@dataclass
class FakeWorkflow:
    id: int
    name: str
    path: str


@dataclass
class FakeRepository:
    id: int
    full_name: str
    workflows: list[FakeWorkflow] = field(default_factory=list)
    runs: dict[int, FakeRun] = field(default_factory=dict)


@dataclass
class Fault:
    """An answer given instead of the real one.

    ``path`` is a regular expression searched in the request path (without
    ``/api/v3``); ``after`` matching requests pass first; then ``times``
    requests (None: all) get ``status`` with ``body`` and ``headers``, after
    ``delay`` seconds.
    """

    status: int
    path: str = ""
    times: int | None = 1
    after: int = 0
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    authorized: bool
    conditional: bool


class BlobStore:
    """The second server: signed artifact downloads, never with a token."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.authorization_seen: list[str] = []
        self.server = _serve(self._handle)

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def put(self, data: bytes) -> str:
        key = secrets.token_hex(8)
        self.blobs[key] = data
        return f"{self.origin}/blobs/{key}.zip?sig={secrets.token_hex(16)}&se=2099"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        self.requests.append(path)
        if handler.headers.get("Authorization"):
            self.authorization_seen.append(path)
            _answer(handler, 400, {"message": "credentials sent to blob storage"})
            return
        match = re.fullmatch(r"/blobs/(\w+)\.zip", path)
        if match is None or match.group(1) not in self.blobs:
            _answer(handler, 404, {"message": "no such blob"})
            return
        _answer(
            handler, 200, self.blobs[match.group(1)], content_type="application/zip"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeGitHub:
    """The fake REST API; ``base_url`` is what ``--base-url`` takes."""

    def __init__(self) -> None:
        self.token = "ghp_" + secrets.token_hex(18)
        self.repositories: dict[str, FakeRepository] = {}
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.rate_limit = 5000
        self.rate_used = 0
        self.listing_cap = LISTING_CAP
        self.shuffled_listings = False
        self.blob = BlobStore()
        self._ids = itertools.count(9_000_001)
        self._lock = threading.Lock()
        self.server = _serve(self._handle)

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.origin + API_PREFIX

    def collect_args(self) -> list[str]:
        """``collect github`` with the options that sync acme/shop's e2e-gate here."""
        return [
            *("collect", "github", "--repo", "acme/shop", "--job", "e2e-gate"),
            *("--workflow", "e2e.yml", "--base-url", self.base_url),
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.blob.close()

    # -- building history -----------------------------------------------------

    def add_repository(self, full_name: str = "acme/shop") -> FakeRepository:
        repository = FakeRepository(id=next(self._ids), full_name=full_name)
        repository.workflows.append(
            FakeWorkflow(next(self._ids), "E2E gate", ".github/workflows/e2e.yml")
        )
        repository.workflows.append(
            FakeWorkflow(next(self._ids), "Lint", ".github/workflows/lint.yml")
        )
        self.repositories[full_name] = repository
        return repository

    def add_run(
        self,
        repository: FakeRepository,
        created_at: datetime,
        jobs: list[FakeJob] | None = None,
        *,
        workflow: int = 0,
        event: str = "push",
        branch: str = "main",
        status: str = "completed",
        conclusion: str | None = None,
    ) -> FakeRun:
        """A run with one attempt; its conclusion follows its jobs by default."""
        jobs = [FakeJob("e2e-gate")] if jobs is None else jobs
        run = FakeRun(
            id=next(self._ids),
            created_at=created_at,
            attempts=[],
            workflow_id=repository.workflows[workflow].id,
            event=event,
            branch=branch,
            sha=hashlib.sha1(str(created_at).encode()).hexdigest(),
        )
        self._attempt(run, jobs, created_at + timedelta(seconds=5), status, conclusion)
        repository.runs[run.id] = run
        return run

    def rerun(
        self,
        run: FakeRun,
        jobs: list[FakeJob] | None = None,
        *,
        started_at: datetime | None = None,
        status: str = "completed",
        conclusion: str | None = None,
    ) -> FakeAttempt:
        """Add an attempt to ``run``, as GitHub's "Re-run jobs" does."""
        jobs = [FakeJob("e2e-gate")] if jobs is None else jobs
        start = started_at or run.latest.started_at + timedelta(hours=1)
        return self._attempt(run, jobs, start, status, conclusion)

    def finish(self, attempt: FakeAttempt, conclusion: str = "success") -> None:
        """Complete a running attempt: its jobs end with ``conclusion``."""
        for job in attempt.jobs:
            job.status = "completed"
            job.conclusion = conclusion
            job.started_at = job.started_at or attempt.started_at
            job.completed_at = job.started_at + timedelta(minutes=3)
        attempt.status = "completed"
        attempt.conclusion = _run_conclusion(attempt.jobs)

    def _attempt(
        self,
        run: FakeRun,
        jobs: list[FakeJob],
        start: datetime,
        status: str,
        conclusion: str | None,
    ) -> FakeAttempt:
        number = len(run.attempts) + 1
        for job in jobs:
            job.id = next(self._ids)
            job.attempt = job.attempt or number
            if job.status == "completed":
                job.started_at = job.started_at or start
                job.completed_at = job.completed_at or job.started_at + timedelta(
                    minutes=3
                )
            else:
                job.conclusion = None
                if job.status == "in_progress":
                    job.started_at = job.started_at or start
        if conclusion is None and status == "completed":
            conclusion = _run_conclusion(jobs)
        attempt = FakeAttempt(number, jobs, start, status, conclusion)
        run.attempts.append(attempt)
        return attempt

    def add_artifact(
        self,
        run: FakeRun,
        name: str,
        files: dict[str, bytes],
        *,
        created_at: datetime | None = None,
        expired: bool = False,
        vanished: bool = False,
        gone: bool = False,
    ) -> FakeArtifact:
        """An artifact of ``run``'s latest attempt, unless ``created_at`` says.

        ``expired`` ones are listed so and answer 410; ``vanished`` ones are
        listed as fine but answer 410 all the same; ``gone`` ones answer 404.
        """
        artifact = FakeArtifact(
            name=name,
            files=files,
            created_at=created_at or run.latest.started_at + timedelta(minutes=2),
            expired=expired,
            vanished=vanished,
            gone=gone,
            id=next(self._ids),
        )
        run.artifacts.append(artifact)
        return artifact

    # -- faults and counting ----------------------------------------------------

    def fail(self, status: int, **options: Any) -> Fault:
        """Queue a ``Fault``; see its fields for ``options``."""
        fault = Fault(status=status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def count(self, path: str = "", *, status: int | None = None) -> int:
        """Requests logged whose path matches the regular expression ``path``."""
        return sum(
            1
            for r in self.requests
            if re.search(path, r.path) and (status is None or r.status == status)
        )

    def reset_log(self) -> None:
        self.requests.clear()
        self.blob.requests.clear()

    # -- serving ----------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix(API_PREFIX)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        authorization = handler.headers.get("Authorization", "")
        conditional = handler.headers.get("If-None-Match")

        status, body, headers = self._answer_for(path, query, authorization)
        etag = None
        if status == 200 and isinstance(body, (dict, list)):
            etag = 'W/"' + hashlib.sha256(_encode(body)).hexdigest() + '"'
            headers["ETag"] = etag
        if etag is not None and conditional == etag:
            status, body = 304, b""
        else:
            self._use_rate_limit()
        # A fault's own rate-limit headers win over the running count.
        headers = {**self._rate_headers(), **headers}

        with self._lock:
            self.requests.append(
                LoggedRequest(
                    handler.command,
                    path,
                    query,
                    status,
                    bool(authorization),
                    conditional is not None,
                )
            )
        _answer(handler, status, body, headers=headers)

    def _answer_for(
        self, path: str, query: dict[str, str], authorization: str
    ) -> tuple[int, Any, dict[str, str]]:
        fault = self._fault(path)
        if fault is not None:
            time.sleep(fault.delay)
            body = fault.body or {"message": "Server Error"}
            return fault.status, body, dict(fault.headers)

        token = authorization.partition(" ")[2]
        if token != self.token:
            return 401, _error("Bad credentials"), {}

        try:
            return self._route(path, query)
        except LookupError:
            return 404, _error("Not Found"), {}

    def _fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if not re.search(fault.path, path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _use_rate_limit(self) -> None:
        with self._lock:
            self.rate_used += 1

    def _rate_headers(self) -> dict[str, str]:
        reset = int(time.time()) + 3600
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(self.rate_limit - self.rate_used, 0)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(self.rate_used),
            "X-RateLimit-Resource": "core",
        }

    def _route(
        self, path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        match = re.fullmatch(r"/(?:repos/([^/]+/[^/]+)|repositories/(\d+))(/.*)?", path)
        if match is None:
            raise LookupError(path)
        repository = self._repository(match.group(1), match.group(2))
        rest = match.group(3) or ""

        if rest == "":
            return 200, self._repository_json(repository), {}
        if rest == "/actions/workflows":
            items = [self._workflow_json(repository, w) for w in repository.workflows]
            return self._listing(repository, rest, query, "workflows", items, 30)
        listing = re.fullmatch(r"/actions(?:/workflows/([^/]+))?/runs", rest)
        if listing is not None:
            return self._runs(repository, rest, query, listing.group(1))
        run_path = re.fullmatch(r"/actions/runs/(\d+)(/.*)?", rest)
        if run_path is not None:
            run = repository.runs.get(int(run_path.group(1)))
            if run is None:
                raise LookupError(path)
            return self._run_part(repository, run, rest, run_path.group(2) or "", query)
        download = re.fullmatch(r"/actions/artifacts/(\d+)/zip", rest)
        if download is not None:
            return self._download(repository, int(download.group(1)))
        raise LookupError(path)

    def _repository(
        self, full_name: str | None, repository_id: str | None
    ) -> FakeRepository:
        for repository in self.repositories.values():
            if repository.full_name == full_name or str(repository.id) == repository_id:
                return repository
        raise LookupError(full_name or repository_id)

    def _runs(
        self,
        repository: FakeRepository,
        rest: str,
        query: dict[str, str],
        workflow: str | None,
    ) -> tuple[int, Any, dict[str, str]]:
        runs = sorted(
            repository.runs.values(), key=lambda r: (r.created_at, r.id), reverse=True
        )
        if workflow is not None:
            chosen = [
                w
                for w in repository.workflows
                if workflow in (str(w.id), w.path.rsplit("/", 1)[-1])
            ]
            if not chosen:
                raise LookupError(workflow)
            runs = [r for r in runs if r.workflow_id == chosen[0].id]
        runs = [r for r in runs if _run_matches(r, query)]
        if self.shuffled_listings:
            # Filtered listings come from a search index: order not promised.
            random.Random(len(runs)).shuffle(runs)
        items = [self._run_json(repository, r, r.latest) for r in runs]
        capped = any(name in query for name in _FILTERS)
        return self._listing(
            repository, rest, query, "workflow_runs", items, 30, capped=capped
        )

    def _run_part(
        self,
        repository: FakeRepository,
        run: FakeRun,
        rest: str,
        part: str,
        query: dict[str, str],
    ) -> tuple[int, Any, dict[str, str]]:
        if part == "":
            return 200, self._run_json(repository, run, run.latest), {}

        if part == "/artifacts":
            items = [self._artifact_json(repository, run, a) for a in run.artifacts]
            return self._listing(repository, rest, query, "artifacts", items, 30)
        attempt_path = re.fullmatch(r"(?:/attempts/(\d+))?(/jobs)?", part)
        if attempt_path is None:
            raise LookupError(part)
        number = int(attempt_path.group(1) or run.latest.number)
        if not 1 <= number <= len(run.attempts):
            raise LookupError(part)
        attempt = run.attempts[number - 1]
        if attempt_path.group(2) is None:
            return 200, self._run_json(repository, run, attempt, as_attempt=True), {}
        items = [self._job_json(repository, run, attempt, job) for job in attempt.jobs]
        return self._listing(repository, rest, query, "jobs", items, 30)

    def _download(
        self, repository: FakeRepository, artifact_id: int
    ) -> tuple[int, Any, dict[str, str]]:
        for run in repository.runs.values():
            for artifact in run.artifacts:
                if artifact.id != artifact_id:
                    continue
                if artifact.expired or artifact.vanished:
                    return 410, _error("Artifact has expired"), {}
                if artifact.gone:
                    return 404, _error("Not Found"), {}
                location = self.blob.put(artifact.archive())
                return 302, b"", {"Location": location}
        raise LookupError(artifact_id)

    def _listing(
        self,
        repository: FakeRepository,
        rest: str,
        query: dict[str, str],
        list_item: str,
        items: list[dict[str, Any]],
        default_per_page: int,
        *,
        capped: bool = False,
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(query.get("per_page", default_per_page)), 100)
        page = int(query.get("page", 1))
        served = items[: self.listing_cap] if capped else items
        chunk = served[(page - 1) * per_page : page * per_page]
        last = max((len(served) + per_page - 1) // per_page, 1)

        links = []
        base = f"{self.origin}{API_PREFIX}/repositories/{repository.id}{rest}"
        if page < last:
            links.append(f'<{base}?{_with_page(query, page + 1)}>; rel="next"')
            links.append(f'<{base}?{_with_page(query, last)}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{_with_page(query, 1)}>; rel="first"')
            links.append(f'<{base}?{_with_page(query, page - 1)}>; rel="prev"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, {"total_count": len(items), list_item: chunk}, headers

    # -- JSON shapes ------------------------------------------------------------

    def _web(self, repository: FakeRepository) -> str:
        return f"{self.origin}/{repository.full_name}"

    def _api(self, repository: FakeRepository, rest: str = "") -> str:
        return f"{self.base_url}/repos/{repository.full_name}{rest}"

    def _repository_json(self, repository: FakeRepository) -> dict[str, Any]:
        owner = repository.full_name.split("/")[0]
        return {
            "id": repository.id,
            "node_id": f"R_{repository.id}",
            "name": repository.full_name.split("/")[1],
            "full_name": repository.full_name,
            "private": True,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "html_url": f"{self.origin}/{repository.full_name}",
            "url": self._api(repository),
            "default_branch": "main",
        }

    def _workflow_json(
        self, repository: FakeRepository, workflow: FakeWorkflow
    ) -> dict[str, Any]:
        return {
            "id": workflow.id,
            "node_id": f"W_{workflow.id}",
            "name": workflow.name,
            "path": workflow.path,
            "state": "active",
            "url": self._api(repository, f"/actions/workflows/{workflow.id}"),
            "html_url": f"{self._web(repository)}/blob/main/{workflow.path}",
        }

    def _run_json(
        self,
        repository: FakeRepository,
        run: FakeRun,
        attempt: FakeAttempt,
        *,
        as_attempt: bool = False,
    ) -> dict[str, Any]:
        # As recorded: a run shows its first creation time, an attempt's own
        # object a later one, just after the attempt started.
        created = run.created_at
        if as_attempt and attempt.number > 1:
            created = attempt.started_at + timedelta(seconds=2)
        workflow = next(w for w in repository.workflows if w.id == run.workflow_id)
        api = self._api(repository, f"/actions/runs/{run.id}")
        body: dict[str, Any] = {
            "id": run.id,
            "name": workflow.name,
            "node_id": f"WFR_{run.id}",
            "head_branch": run.branch,
            "head_sha": run.sha,
            "path": workflow.path,
            "display_title": f"Change {run.id}",
            "run_number": run.id % 10_000,
            "event": run.event,
            "status": attempt.status,
            "conclusion": attempt.conclusion if attempt.status == "completed" else None,
            "workflow_id": run.workflow_id,
            "url": api,
            "html_url": f"{self.origin}/{repository.full_name}/actions/runs/{run.id}",
            "pull_requests": [],
            "created_at": _stamp(created),
            "updated_at": _stamp(_updated(attempt)),
            "run_attempt": attempt.number,
            "run_started_at": _stamp(attempt.started_at),
            "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs",
            "artifacts_url": f"{api}/artifacts",
            "cancel_url": f"{api}/cancel",
            "rerun_url": f"{api}/rerun",
            "previous_attempt_url": (
                f"{api}/attempts/{attempt.number - 1}" if attempt.number > 1 else None
            ),
            "workflow_url": self._api(repository, f"/actions/workflows/{workflow.id}"),
        }
        if not run.has_attempt_field:
            for key in ("run_attempt", "run_started_at", "previous_attempt_url"):
                del body[key]
        return body

    def _job_json(
        self,
        repository: FakeRepository,
        run: FakeRun,
        attempt: FakeAttempt,
        job: FakeJob,
    ) -> dict[str, Any]:
        return {
            "id": job.id,
            "run_id": run.id,
            "workflow_name": next(
                w.name for w in repository.workflows if w.id == run.workflow_id
            ),
            "head_branch": run.branch,
            "run_url": self._api(repository, f"/actions/runs/{run.id}"),
            "run_attempt": job.attempt,
            "node_id": f"CR_{job.id}",
            "head_sha": run.sha,
            "url": self._api(repository, f"/actions/jobs/{job.id}"),
            "html_url": f"{self._web(repository)}/actions/runs/{run.id}/job/{job.id}",
            "status": job.status,
            "conclusion": job.conclusion,
            "created_at": _stamp(attempt.started_at),
            "started_at": _stamp(job.started_at) if job.started_at else None,
            "completed_at": _stamp(job.completed_at) if job.completed_at else None,
            "name": job.name,
            "steps": [],
            "labels": ["ubuntu-latest"],
            "runner_id": 1,
            "runner_name": "GitHub Actions 5",
            "runner_group_id": 2,
            "runner_group_name": "GitHub Actions",
        }

    def _artifact_json(
        self, repository: FakeRepository, run: FakeRun, artifact: FakeArtifact
    ) -> dict[str, Any]:
        api = self._api(repository, f"/actions/artifacts/{artifact.id}")
        return {
            "id": artifact.id,
            "node_id": f"A_{artifact.id}",
            "name": artifact.name,
            "size_in_bytes": len(artifact.archive()),
            "url": api,
            "archive_download_url": f"{api}/zip",
            "expired": artifact.expired,
            "created_at": _stamp(artifact.created_at),
            "updated_at": _stamp(artifact.created_at),
            "expires_at": _stamp(artifact.created_at + timedelta(days=90)),
            "workflow_run": {
                "id": run.id,
                "repository_id": repository.id,
                "head_repository_id": repository.id,
                "head_branch": run.branch,
                "head_sha": run.sha,
            },
        }


# -- helpers -------------------------------------------------------------------


def zip_of(files: dict[str, bytes]) -> bytes:
    """A zip archive holding ``files`` (name to content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def rate_limited(reset_in: float) -> dict[str, Any]:
    """``fail`` options for GitHub's primary rate limit, reset in ``reset_in`` s."""
    return {
        "body": _error("API rate limit exceeded for user ID 1."),
        "headers": {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time() + reset_in)),
        },
    }


def secondary_limit(retry_after: int | None = None) -> dict[str, Any]:
    """``fail`` options for a secondary rate limit, with ``Retry-After`` if given."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return {
        "body": _error(
            "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again."
        ),
        "headers": headers,
    }


def _run_matches(run: FakeRun, query: dict[str, str]) -> bool:
    if "branch" in query and run.branch != query["branch"]:
        return False
    if "event" in query and run.event != query["event"]:
        return False
    if "status" in query and run.latest.status != query["status"]:
        return False
    return "created" not in query or _in_range(run.created_at, query["created"])


def _in_range(moment: datetime, expression: str) -> bool:
    """GitHub's date search syntax: ``a..b``, ``>=a``, ``<=b``, ``>a``, ``<a``."""
    if ".." in expression:
        low, high = expression.split("..", 1)
        return (low == "*" or moment >= _parse(low)) and (
            high == "*" or moment <= _parse(high)
        )
    for operator, test in (
        (">=", lambda a, b: a >= b),
        ("<=", lambda a, b: a <= b),
        (">", lambda a, b: a > b),
        ("<", lambda a, b: a < b),
    ):
        if expression.startswith(operator):
            return bool(test(moment, _parse(expression[len(operator) :])))
    return _parse(expression).date() == moment.date()


def _parse(text: str) -> datetime:
    if "T" not in text:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _run_conclusion(jobs: list[FakeJob]) -> str:
    if not jobs:
        return "startup_failure"
    conclusions = {job.conclusion for job in jobs}
    for conclusion in ("failure", "cancelled", "timed_out"):
        if conclusion in conclusions:
            return conclusion
    return "success"


def _updated(attempt: FakeAttempt) -> datetime:
    ends = [job.completed_at for job in attempt.jobs if job.completed_at]
    return max([attempt.started_at, *ends])


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_page(query: dict[str, str], page: int) -> str:
    return urlencode({**query, "page": str(page)})


def _error(message: str) -> dict[str, Any]:
    return {"message": message, "documentation_url": _DOCS}


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> None:
    data = body if isinstance(body, bytes) else _encode(body)
    handler.send_response(status)
    if data:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if data and handler.command != "HEAD":
        handler.wfile.write(data)


def _serve(handle: Any) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's
            # algorithm and delayed ACKs add 40 ms to every answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that gave up (a timeout test) closes its end first.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub with one repository, ``acme/shop``, and no runs."""
    github = FakeGitHub()
    github.add_repository("acme/shop")
    try:
        yield github
    finally:
        github.close()
