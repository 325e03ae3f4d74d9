"""GitHub's REST API as the collector needs it: runs, jobs and artifacts.

Built on PyGithub's requester, which brings authentication, GitHub Enterprise
Server base URLs, bounded retries with backoff for 5xx answers and secondary
rate limits, and a bounded wait for the primary rate limit. Everything that
leaves this module is a plain record of its own or a ``CollectionError``
whose message never carries the token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededExceedsMaxWait,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.Requester import Requester
from urllib3.util.retry import Retry

from gate_tracker import __version__
from gate_tracker.exceptions import CollectionError, ConfigurationError
from gate_tracker.github_rate_limits import (
    BoundedRetry,
    RateLimitStop,
    clock,
    rate_limit_stop,
)
from gate_tracker.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"
TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
PER_PAGE = 100
"""GitHub's largest page: the fewest requests for a listing."""

NOT_MODIFIED = 304
_USER_AGENT = f"gate-tracker/{__version__}"


@dataclass(frozen=True)
class ClientLimits:
    """How long and how often the client waits and retries.

    ``max_wait_s`` bounds every wait for a rate limit: when GitHub asks for a
    longer one, the client stops with ``RateLimitStop`` instead of sleeping.
    ``seconds_between_requests`` spaces requests out (PyGithub's own default
    is 0.25 s): serial requests at under ten a second stay clear of GitHub's
    secondary limit of 900 points a minute.
    """

    timeout_s: int = 20
    seconds_between_requests: float = 0.1
    retries: int = 5
    backoff_factor: float = 1.0
    secondary_wait_s: float = 60.0
    max_wait_s: float = 300.0
    artifact_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class CIRun:
    """A workflow run as listed: the state of its latest attempt."""

    id: int
    attempt: int
    status: str | None
    conclusion: str | None
    event: str
    branch: str | None
    commit: str | None
    created_at: datetime
    workflow_id: int | None
    workflow_name: str | None
    url: str | None


@dataclass(frozen=True)
class CIJob:
    """One job of one run attempt."""

    id: int
    name: str
    status: str | None
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    attempt: int | None
    url: str | None


@dataclass(frozen=True)
class CIArtifact:
    """An artifact a run uploaded; artifacts carry no attempt number."""

    id: int
    name: str
    created_at: datetime | None
    expired: bool
    size: int


@dataclass
class Page:
    """One page of a listing, or an unchanged page known from its ETag.

    An unchanged page comes without ``items``; ``runs`` holds the items of a
    run listing read as runs.
    """

    url: str
    items: list[dict[str, Any]]
    count: int
    total_count: int
    next_url: str | None
    etag: str | None
    unchanged: bool = False
    runs: list[CIRun] = field(default_factory=list)


def token_from_environment(environ: Mapping[str, str]) -> str:
    """The token in ``GITHUB_TOKEN`` or ``GH_TOKEN``; never logged or stored."""
    for name in TOKEN_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    raise ConfigurationError(
        "no GitHub token: set GITHUB_TOKEN or GH_TOKEN to a token that can read "
        "the repository's Actions (permission actions: read)"
    )


class GitHubClient:
    """Reads one repository's Actions history.

    ``base_url`` is GitHub's REST root (``https://HOST/api/v3`` for GitHub
    Enterprise Server). Close the client with ``close()``.
    """

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        limits: ClientLimits | None = None,
    ) -> None:
        self.repository = repository
        self.base_url = base_url.rstrip("/")
        self.limits = limits or ClientLimits()
        self._origin = _origin(self.base_url)
        self._github = Github(
            auth=Auth.Token(token),
            base_url=self.base_url,
            timeout=self.limits.timeout_s,
            user_agent=_USER_AGENT,
            per_page=PER_PAGE,
            retry=self._retry(),
            seconds_between_requests=self.limits.seconds_between_requests,
            lazy=True,
        )
        self._requester: Requester = self._github.requester
        self._blobs = _blob_session(self.limits)

    def close(self) -> None:
        self._github.close()
        self._blobs.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retry(self) -> Retry:
        limits = self.limits
        return BoundedRetry(
            total=limits.retries,
            backoff_factor=limits.backoff_factor,
            secondary_rate_wait=limits.secondary_wait_s,
            max_rate_limit_wait=limits.max_wait_s,
            status_forcelist=[*range(500, 600), 429],
        )

    # -- listings ---------------------------------------------------------------

    def runs_path(self, workflow: str | None) -> str:
        """The run listing of the repository, or of one of its workflows."""
        if workflow is None:
            return f"/repos/{self.repository}/actions/runs"
        return f"/repos/{self.repository}/actions/workflows/{workflow}/runs"

    def run_pages(
        self,
        path: str,
        params: dict[str, str],
        etags: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Iterator[Page]:
        """Every page of a run listing, newest runs first.

        With ``etags`` (page URL to the ``etag``, ``next``, ``count`` and
        ``total`` seen last time) each page is asked for conditionally; an
        unchanged page costs no rate limit and comes back with ``unchanged``
        set and no runs.
        """
        what = f"the workflow runs of {self.repository}"
        for page in self._pages(path, params, "workflow_runs", what, etags):
            page.runs = [_run(item) for item in page.items]
            yield page

    def run(self, run_id: int) -> CIRun:
        """One run, as the listing would show it."""
        path = f"/repos/{self.repository}/actions/runs/{run_id}"
        with self._translated(f"run {run_id} of {self.repository}"):
            status, headers, body = self._requester.requestJson("GET", path)
            return _run(_json_body(status, headers, body))

    def attempt_jobs(self, run_id: int, attempt: int) -> list[CIJob]:
        """The jobs of one attempt of a run.

        GitHub's plain job listing shows only the latest attempt's jobs.
        """
        path = f"/repos/{self.repository}/actions/runs/{run_id}/attempts/{attempt}/jobs"
        what = f"the jobs of run {run_id} attempt {attempt}"
        return [_job(item) for item in self._items(path, "jobs", what)]

    def run_artifacts(self, run_id: int) -> list[CIArtifact]:
        """The artifacts of a run, from all its attempts."""
        path = f"/repos/{self.repository}/actions/runs/{run_id}/artifacts"
        what = f"the artifacts of run {run_id}"
        return [_artifact(item) for item in self._items(path, "artifacts", what)]

    def workflow_id(self, name: str) -> str:
        """The id of the workflow whose name or file name is ``name``."""
        path = f"/repos/{self.repository}/actions/workflows"
        what = f"the workflows of {self.repository}"
        workflows = [
            (str(item["id"]), str(item.get("name") or ""), str(item.get("path") or ""))
            for item in self._items(path, "workflows", what)
        ]
        for workflow_id, title, file in workflows:
            if name in (title, file, file.rsplit("/", 1)[-1]):
                return workflow_id

        known = ", ".join(sorted(title for _, title, _ in workflows)) or "none"
        raise CollectionError(
            f"no workflow named {name!r} in {self.repository} (workflows: "
            f"{known}); give --workflow as a file name, id or one of these names"
        )

    def repository_exists(self) -> bool:
        """Whether the token can see the repository at all."""
        path = f"/repos/{self.repository}"
        try:
            with self._translated(f"the repository {self.repository}"):
                status, headers, body = self._requester.requestJson("GET", path)
                _json_body(status, headers, body)
        except UnknownRepositoryError:
            return False
        return True

    # -- pagination -------------------------------------------------------------

    def _items(self, path: str, list_item: str, what: str) -> list[dict[str, Any]]:
        return [
            item
            for page in self._pages(path, {}, list_item, what)
            for item in page.items
        ]

    def _pages(
        self,
        path: str,
        params: dict[str, str],
        list_item: str,
        what: str,
        etags: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Iterator[Page]:
        # Our own pager rather than PaginatedList: PyGithub's objects fetch
        # themselves again when a field is missing from a listing, and an
        # unchanged page (304) must be told apart, so every request counts.
        url: str | None = path
        query: dict[str, str] | None = {**params, "per_page": str(PER_PAGE)}
        while url is not None:
            key = page_key(url, query)
            known = (etags or {}).get(key)
            page = self._page(url, query, key, list_item, what, known)
            yield page
            url, query = page.next_url, None

    def _page(
        self,
        url: str,
        query: dict[str, str] | None,
        key: str,
        list_item: str,
        what: str,
        known: Mapping[str, Any] | None,
    ) -> Page:
        headers = {"If-None-Match": str(known["etag"])} if known else {}
        with self._translated(what):
            status, answer, body = self._requester.requestJson(
                "GET", url, parameters=query, headers=headers
            )
            if status == NOT_MODIFIED and known:
                return Page(
                    url=key,
                    items=[],
                    count=int(known.get("count", 0)),
                    total_count=int(known.get("total", 0)),
                    next_url=known.get("next"),
                    etag=str(known["etag"]),
                    unchanged=True,
                )
            data = _json_body(status, answer, body)

        items = data.get(list_item) or []
        return Page(
            url=key,
            items=[item for item in items if isinstance(item, dict)],
            count=len(items),
            total_count=int(data.get("total_count") or 0),
            next_url=self._next_link(answer),
            etag=answer.get("etag"),
        )

    def _next_link(self, headers: Mapping[str, str]) -> str | None:
        for link in requests.utils.parse_header_links(headers.get("link", "")):
            if link.get("rel") != "next":
                continue
            target = link["url"]
            # PyGithub sends the token with every request: never follow a page
            # link off the API's own host and port.
            if _origin(target) != self._origin:
                raise CollectionError(
                    f"GitHub's next-page link points to {_origin(target)}, not "
                    f"{self._origin}; check --base-url"
                )
            return target
        return None

    # -- artifacts --------------------------------------------------------------

    def download_artifact(self, artifact: CIArtifact) -> bytes | None:
        """The zip archive of ``artifact``, or None when expired or gone.

        GitHub answers with a redirect to blob storage on another host, which
        is fetched without the token.
        """
        path = f"/repos/{self.repository}/actions/artifacts/{artifact.id}/zip"
        with self._translated(f"artifact {artifact.name!r}"):
            status, headers, body = self._requester.requestJson("GET", path)
        if status in (404, 410):
            return None
        if status != 302 or "location" not in headers:
            with self._translated(f"artifact {artifact.name!r}"):
                _json_body(status, headers, body)
            raise CollectionError(
                f"GitHub answered {status} without a download location for "
                f"artifact {artifact.name!r} of {self.repository}"
            )
        return self._fetch_blob(headers["location"], artifact)

    def _fetch_blob(self, location: str, artifact: CIArtifact) -> bytes:
        # The location carries a signature: log where it goes, never the query.
        shown = _without_query(location)
        log.debug("downloading artifact %s from %s", artifact.name, shown)
        limit = self.limits.artifact_bytes
        try:
            with self._blobs.get(
                location, timeout=self.limits.timeout_s, stream=True
            ) as answer:
                answer.raise_for_status()
                data = bytearray()
                for chunk in answer.iter_content(chunk_size=1 << 16):
                    data += chunk
                    if len(data) > limit:
                        raise CollectionError(
                            f"artifact {artifact.name!r} is larger than "
                            f"{limit // (1024 * 1024)} MiB; not read"
                        )
                return bytes(data)
        except requests.RequestException as err:
            raise CollectionError(
                f"could not download artifact {artifact.name!r} from {shown}: "
                f"{_reason(err)}"
            ) from err

    # -- errors -----------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Turn PyGithub's and requests' errors into ``CollectionError``."""
        try:
            yield
        except RateLimitExceededExceedsMaxWait as err:
            raise rate_limit_stop(what, err.wait, err.headers) from None
        except BadCredentialsException as err:
            raise CollectionError(
                f"GitHub at {self.base_url} rejected the token (401 Bad "
                "credentials) while reading "
                f"{what}: set GITHUB_TOKEN or GH_TOKEN to a valid, unexpired token"
            ) from err
        except RateLimitExceededException as err:
            raise rate_limit_stop(what, None, err.headers) from None
        except UnknownObjectException as err:
            raise UnknownRepositoryError(
                f"GitHub at {self.base_url} found no {what} (404): check "
                "--repo and --workflow, and that the token can see the repository"
            ) from err
        except GithubException as err:
            raise self._github_error(what, err) from err
        except requests.exceptions.RetryError as err:
            raise self._retries_exhausted(what, err) from err
        except requests.RequestException as err:
            raise CollectionError(
                f"cannot reach GitHub at {self.base_url} while reading {what}: "
                f"{_reason(err)}. Check the network and --base-url, then run "
                "the same command again: what is stored stays"
            ) from err

    def _github_error(self, what: str, err: GithubException) -> CollectionError:
        message = _message(err.data)
        if err.status == 401:
            return CollectionError(
                f"GitHub at {self.base_url} refused the token (401) while reading "
                f"{what}: {message}; set GITHUB_TOKEN or GH_TOKEN to a valid token"
            )
        if err.status == 403:
            return CollectionError(
                f"no access to {what} (403: {message}): the token needs "
                f"actions: read on {self.repository}"
            )
        return CollectionError(
            f"GitHub at {self.base_url} answered {err.status} for {what}: {message}"
        )

    def _retries_exhausted(
        self, what: str, err: requests.exceptions.RetryError
    ) -> CollectionError:
        reason = _reason(err)
        if "429" in reason:
            resume = datetime.now(timezone.utc) + timedelta(
                seconds=self.limits.secondary_wait_s
            )
            return RateLimitStop(
                f"GitHub kept answering 429 (too many requests) for {what}; "
                f"stopped, what is stored stays. Run again after {clock(resume)}",
                resume,
            )
        return CollectionError(
            f"GitHub at {self.base_url} kept failing while reading {what} "
            f"({reason}, {self.limits.retries} retries); what is stored stays: "
            "run the same command again later"
        )


class UnknownRepositoryError(CollectionError):
    """GitHub knows no such repository, workflow or object (404)."""


def page_key(url: str, query: Mapping[str, str] | None) -> str:
    """A stable name for one page of a listing, for its ETag."""
    if not query:
        return url
    return url + "?" + "&".join(f"{k}={query[k]}" for k in sorted(query))


def _json_body(status: int, headers: dict[str, Any], body: str) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"message": body[:200]}
    if status >= 400:
        raise Requester.createException(status, headers, data)
    if not isinstance(data, dict):
        raise CollectionError(f"GitHub answered {status} with unexpected content")
    return data


def _run(item: Mapping[str, Any]) -> CIRun:
    return CIRun(
        id=int(item["id"]),
        # Runs from before re-runs existed have no attempt number.
        attempt=int(item.get("run_attempt") or 1),
        status=item.get("status"),
        conclusion=item.get("conclusion"),
        event=str(item.get("event") or ""),
        branch=item.get("head_branch"),
        commit=item.get("head_sha"),
        created_at=_moment(item.get("created_at")) or datetime.now(timezone.utc),
        workflow_id=item.get("workflow_id"),
        workflow_name=item.get("name"),
        url=item.get("html_url"),
    )


def _job(raw: Mapping[str, Any]) -> CIJob:
    return CIJob(
        id=int(raw["id"]),
        name=str(raw.get("name") or ""),
        status=raw.get("status"),
        conclusion=raw.get("conclusion"),
        started_at=_moment(raw.get("started_at")),
        completed_at=_moment(raw.get("completed_at")),
        attempt=raw.get("run_attempt"),
        url=raw.get("html_url"),
    )


def _artifact(raw: Mapping[str, Any]) -> CIArtifact:
    return CIArtifact(
        id=int(raw["id"]),
        name=str(raw.get("name") or ""),
        created_at=_moment(raw.get("created_at")),
        expired=bool(raw.get("expired")),
        size=int(raw.get("size_in_bytes") or 0),
    )


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _blob_session(limits: ClientLimits) -> requests.Session:
    session = requests.Session()
    # An explicit no-op auth keeps requests from reading ~/.netrc: blob storage
    # must receive no credential at all.
    session.auth = Requester.noopAuth
    retry = Retry(
        total=limits.retries,
        backoff_factor=limits.backoff_factor,
        status_forcelist=list(range(500, 600)),
    )
    adapter = requests.adapters.HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _message(data: Any) -> str:
    if isinstance(data, dict) and data.get("message"):
        return redact(str(data["message"]))[:300]
    return "no message"


def _reason(err: Exception) -> str:
    # requests nests urllib3's reason; the innermost says what went wrong,
    # and URLs in it may carry a signed query.
    reason: BaseException = err
    while reason.args and isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    inner = getattr(reason, "reason", None)
    text = str(inner or reason)
    return redact(_strip_queries(text))[:300]


def _strip_queries(text: str) -> str:
    return " ".join(
        _without_query(word) if "://" in word and "?" in word else word
        for word in text.split(" ")
    )
