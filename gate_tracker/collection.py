"""Collect a gate's history from GitHub Actions: every attempt of every run.

Each attempt of a workflow run whose jobs include the gate job is a gate run,
keyed as the plugin keys a session recorded in CI, so both sources enrich one
row. A sync walks ``created`` date windows newest first: a window that reaches
GitHub's 1,000-result cap goes on below the oldest run it returned. Recent
runs are listed again on every sync (for re-runs and runs in progress), with
conditional requests so an unchanged listing costs nothing. The sync state
(``gate_tracker.sync_state``) advances only past runs that are stored.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gate_tracker import ci_attempts
from gate_tracker.artifacts import DEFAULT_ARTIFACTS, AttemptDataReader
from gate_tracker.ci_attempts import GateAttempt, decide_attempt, no_jobs_attempt
from gate_tracker.ci_storage import (
    Scope,
    StoredAttempt,
    store_attempt,
    stored_any,
    stored_attempts,
)
from gate_tracker.config import DEFAULT_EVENTS
from gate_tracker.exceptions import CollectionError
from gate_tracker.github_client import (
    CIJob,
    CIRun,
    GitHubClient,
    Page,
    UnknownRepositoryError,
)
from gate_tracker.records import SessionRecord
from gate_tracker.storage import Store
from gate_tracker.sync_state import (
    SyncKey,
    SyncState,
    forget_state,
    load_state,
    moment_of,
    save_state,
)

log = logging.getLogger(__name__)

PROVIDER = ci_attempts.PROVIDER
LISTING_CAP = 1000
"""GitHub returns at most this many runs for a filtered listing."""

DEFAULT_HISTORY_DAYS = 90
"""How far back a first sync reaches: GitHub's default artifact retention."""

DEFAULT_REVISIT_DAYS = 30
"""Re-runs can come up to 30 days after a run: list that span every time."""

HORIZON_LAG = timedelta(minutes=10)
"""Filtered listings can miss the newest runs for minutes: trust no later."""

OVERLAP = timedelta(hours=1)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class CollectOptions:
    """What to collect: the gate job of one repository, and how far back.

    ``workflow`` is a file name, a numeric id or a workflow's name; ``job``
    matches the last ``/`` segment of a job's name (see
    ``ci_attempts.job_matches``). ``branch`` None collects every branch,
    ``events`` empty every event; ``since`` None reaches ``history_days``
    back on a first sync.
    """

    repository: str
    job: str
    gate: str
    workflow: str | None = None
    branch: str | None = "main"
    events: tuple[str, ...] = DEFAULT_EVENTS
    since: datetime | None = None
    artifacts: tuple[str, ...] = DEFAULT_ARTIFACTS
    timeout_minutes: int = ci_attempts.DEFAULT_TIMEOUT_MINUTES
    revisit_days: int = DEFAULT_REVISIT_DAYS
    history_days: int = DEFAULT_HISTORY_DAYS


@dataclass
class CollectProgress:
    """Counts so far, given to the progress callback after every step.

    ``runs`` counts the runs looked at, ``runs_expected`` GitHub's estimate
    of how many the listing holds, ``attempts`` the gate runs found (stored,
    or stored with the rest of their page).
    """

    runs: int
    runs_expected: int
    attempts: int
    artifacts: int
    note: str | None = None


ProgressCallback = Callable[[CollectProgress], None]


@dataclass
class CollectResult:
    """What one sync did."""

    runs: int = 0
    """Runs in scope that were listed (or known to be unchanged)."""
    attempts_stored: int = 0
    attempts_known: int = 0
    """Attempts stored by an earlier sync."""
    attempts_ignored: int = 0
    """Attempts without a counted gate job (no job matches, or all skipped)."""
    pending: int = 0
    """Attempts still in progress: not counted, collected by a later sync."""
    artifacts: int = 0
    artifacts_missing: int = 0
    sessions: int = 0
    without_test_data: int = 0
    covered_from: datetime | None = None
    covered_to: datetime | None = None
    notes: list[str] = field(default_factory=list)


class CollectionInterrupted(CollectionError):
    """A sync stopped early; what it stored stays, and ``result`` says what.

    ``resume_at`` is set when GitHub's rate limit stopped it.
    """

    def __init__(
        self, message: str, result: CollectResult, resume_at: datetime | None
    ) -> None:
        super().__init__(message)
        self.result = result
        self.resume_at = resume_at


@dataclass
class _Window:
    seen: int = 0
    total: int = 0
    oldest: datetime | None = None
    ordered: bool = True


def scope_of(options: CollectOptions) -> tuple[str, str]:
    """The sync scope of ``options``: a short key and its readable form."""
    text = json.dumps(
        {
            "workflow": options.workflow,
            "job": options.job,
            "branch": options.branch,
            "events": sorted(options.events),
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32], text


def collect_github(
    store: Store,
    client: GitHubClient,
    options: CollectOptions,
    *,
    progress: ProgressCallback | None = None,
) -> CollectResult:
    """Run one sync of ``options`` from ``client`` into ``store``.

    Raises ``CollectionInterrupted`` (a ``CollectionError``) when it stops
    early; everything stored until then stays.
    """
    return Collector(store, client, options, progress=progress).collect()


class Collector:
    """Brings one gate's GitHub Actions history into a store.

    ``clock`` gives the current time (UTC); ``progress`` is called with
    counts as the sync goes.
    """

    def __init__(
        self,
        store: Store,
        client: GitHubClient,
        options: CollectOptions,
        *,
        progress: ProgressCallback | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.options = options
        self._progress = progress
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        scope_key, scope = scope_of(options)
        self._key = SyncKey(
            PROVIDER, options.gate, options.repository, scope_key, scope
        )
        self._scope = Scope(options.gate, options.repository, options.job)
        self._state = SyncState()
        self._result = CollectResult()
        self._reader = AttemptDataReader(
            client, store, self._scope, patterns=options.artifacts, note=self._note
        )
        self._started = self._clock()
        self._horizon = self._started - HORIZON_LAG
        self._listing_path = ""
        self._listed = 0
        self._examined = 0
        self._expected = 0
        self._deferred: list[tuple[CIRun, int]] = []
        self._unwritten: list[
            tuple[CIRun, list[GateAttempt], list[int], dict[int, list[SessionRecord]]]
        ] = []
        self._fresh_etags: dict[str, dict[str, Any]] = {}
        self._jobs_seen: set[str] = set()

    # -- the sync ---------------------------------------------------------------

    def collect(self) -> CollectResult:
        """Run one sync; raises ``CollectionInterrupted`` if it stops early."""
        try:
            self._sync()
        except CollectionError as err:
            raise CollectionInterrupted(
                str(err), self._summary(), getattr(err, "resume_at", None)
            ) from err
        return self._summary()

    def _sync(self) -> None:
        with self.store.reading() as conn:
            self._state = load_state(conn, self._key)
        self._listing_path = self.client.runs_path(self._workflow())

        ranges = self._ranges()
        self._revisit_pending(newer_lo=ranges[0][0])
        for lo, hi, grows_down in ranges:
            self._walk(lo, hi, grows_down=grows_down)
            if hi is None:
                self._state.claim_up_to(lo, self._horizon)
                self._state.etags = self._fresh_etags
                self._save()

        self._check_gate_job_found()
        revisit = _day(self._started - timedelta(days=self.options.revisit_days))
        if self._state.covered_to is not None:
            self._state.forget_ignored_before(
                min(self._state.covered_to - OVERLAP, revisit)
            )
        self._save()

    def _workflow(self) -> str | None:
        workflow = self.options.workflow
        if workflow is None or workflow.isdigit():
            return workflow
        if workflow.endswith((".yml", ".yaml")):
            return workflow

        if self._state.workflow_id is None:
            self._state.workflow_id = self.client.workflow_id(workflow)
        return self._state.workflow_id

    def _ranges(self) -> list[tuple[datetime, datetime | None, bool]]:
        """The spans of creation time this sync lists, newest first.

        Each is (from, to or None for "up to now", whether the covered span
        grows downwards as the walk goes).
        """
        state, options = self._state, self.options
        wanted = options.since or self._started - timedelta(days=options.history_days)
        if state.wanted_from is None or wanted < state.wanted_from:
            state.wanted_from = wanted
        if state.covered_from is None or state.covered_to is None:
            return [(state.wanted_from, None, True)]

        # A revisit window starting at midnight keeps the listing's URL, and
        # so its ETag, the same all day.
        revisit = _day(self._started - timedelta(days=options.revisit_days))
        newer_lo = min(state.covered_to - OVERLAP, max(revisit, state.wanted_from))
        ranges: list[tuple[datetime, datetime | None, bool]] = [(newer_lo, None, False)]
        if state.wanted_from < state.covered_from:
            ranges.append((state.wanted_from, state.covered_from + OVERLAP, True))
        return ranges

    def _walk(self, lo: datetime, hi: datetime | None, *, grows_down: bool) -> None:
        """List and collect every run created between ``lo`` and ``hi``.

        Windows do not overlap, so their counts add up: when the runs of the
        window below a cut and of the window above it fall short of what
        GitHub counted above, the second at the cut held more runs than the
        cap let through, and it is listed on its own.
        """
        above: tuple[datetime, _Window] | None = None
        while True:
            window = self._list_window(lo, hi)
            if above is not None:
                self._list_cut(*above, below=window)
                if grows_down:
                    self._claim_down_to(above[0])
            self._resolve_deferred()
            if window.seen < LISTING_CAP:
                if grows_down:
                    self._claim_down_to(lo)
                return

            top = hi or self._clock()
            oldest = window.oldest
            if window.ordered and oldest is not None and lo < oldest < top:
                # The newest 1,000 are in; the next window ends below them.
                if grows_down:
                    self._claim_down_to(oldest + _SECOND)
                above, hi = (oldest, window), oldest - _SECOND
                continue

            if top - lo <= _SECOND:
                raise CollectionError(
                    f"more than {LISTING_CAP} runs of {self.options.repository} "
                    f"were created within one second at {_stamp(top)}; they "
                    "cannot be listed completely"
                )
            # A listing out of order cannot be continued: halve the window.
            middle = lo + (top - lo) / 2
            self._walk(middle, hi, grows_down=grows_down)
            above, hi = None, middle - _SECOND

    def _list_cut(self, cut: datetime, above: _Window, *, below: _Window) -> None:
        missing = above.total - below.total - above.seen
        if missing <= 0:
            return
        log.info("listing the %s runs created at %s apart", missing, _stamp(cut))
        if self._list_window(cut, cut).seen >= LISTING_CAP:
            raise CollectionError(
                f"more than {LISTING_CAP} runs of {self.options.repository} were "
                f"created within one second at {_stamp(cut)}; they cannot be "
                "listed completely"
            )

    def _list_window(self, lo: datetime, hi: datetime | None) -> _Window:
        params = self._listing_params(lo, hi)
        etags = self._state.etags if hi is None else None
        window = _Window()
        try:
            for page in self.client.run_pages(self._listing_path, params, etags):
                self._take_page(page, window)
        except UnknownRepositoryError as err:
            raise self._unknown_listing() from err
        return window

    def _take_page(self, page: Page, window: _Window) -> None:
        if not window.seen:
            # Windows go newest first: this one holds what is still to come.
            self._expected = max(self._expected, self._listed + page.total_count)
            window.total = page.total_count
        window.seen += page.count
        self._listed += page.count

        if page.unchanged:
            known = self._state.etags.get(page.url, {})
            oldest = moment_of(known.get("oldest"))
            ordered = bool(known.get("ordered", True))
            in_scope = int(known.get("in_scope", 0))
            self._result.runs += in_scope
            self._examined += page.count
        else:
            created = [run.created_at for run in page.runs]
            ordered = all(a >= b for a, b in itertools.pairwise(created))
            if created and window.oldest is not None and created[0] > window.oldest:
                ordered = False
            oldest = min(created, default=None)
            in_scope = self._collect_runs(page.runs)

        window.ordered = window.ordered and ordered
        if oldest is not None and (window.oldest is None or oldest < window.oldest):
            window.oldest = oldest
        if page.etag:
            self._fresh_etags[page.url] = {
                "etag": page.etag,
                "next": page.next_url,
                "count": page.count,
                "total": page.total_count,
                "oldest": oldest.isoformat() if oldest else None,
                "ordered": ordered,
                "in_scope": in_scope,
            }
        self._report()

    def _listing_params(self, lo: datetime, hi: datetime | None) -> dict[str, str]:
        created = f">={_stamp(lo)}" if hi is None else f"{_stamp(lo)}..{_stamp(hi)}"
        params = {"created": created, "exclude_pull_requests": "true"}
        if self.options.branch:
            params["branch"] = self.options.branch
        # The API filters by one event only; several are filtered here.
        if len(self.options.events) == 1:
            params["event"] = self.options.events[0]
        return params

    def _unknown_listing(self) -> CollectionError:
        repository = self.options.repository
        if not self.client.repository_exists():
            return CollectionError(
                f"GitHub at {self.client.base_url} has no repository {repository} "
                "that this token can see (404): check --repo, and that the token "
                "has actions: read on it"
            )
        return CollectionError(
            f"the repository {repository} has no workflow {self.options.workflow!r} "
            "(404): give --workflow as the workflow's file name (e2e.yml), its "
            "id, or its name"
        )

    # -- runs -------------------------------------------------------------------

    def _collect_runs(self, runs: Sequence[CIRun]) -> int:
        """Collect the runs in scope among ``runs``; returns how many were.

        They are stored together once all are read, and what was read is
        stored even when reading the rest fails.
        """
        in_scope = [run for run in runs if self._in_scope(run)]
        self._result.runs += len(in_scope)
        self._examined += len(runs) - len(in_scope)
        stored = stored_attempts(self.store, self._scope, [run.id for run in in_scope])
        try:
            for run in in_scope:
                self._collect_run(run, stored.get(run.id, set()))
                self._examined += 1
                self._report()
        finally:
            self._flush()
        return len(in_scope)

    def _in_scope(self, run: CIRun) -> bool:
        options = self.options
        if options.events and run.event not in options.events:
            return False
        return not options.branch or run.branch == options.branch

    def _collect_run(self, run: CIRun, stored: set[int]) -> None:
        memory = self._state.ignored.get(str(run.id), {})
        known = stored | set(memory.get("attempts", []))
        finished = run.status == "completed"
        wanted = [
            number
            for number in range(1, run.attempt + 1)
            if number not in known and (finished or number < run.attempt)
        ]
        self._result.attempts_known += len(stored & set(range(1, run.attempt + 1)))
        if finished:
            self._state.pending.pop(str(run.id), None)
        else:
            self._state.pending[str(run.id)] = run.created_at.isoformat()
            self._result.pending += 1
        if not wanted:
            return

        gate: list[GateAttempt] = []
        ignored: list[int] = []
        for number in wanted:
            jobs = self.client.attempt_jobs(run.id, number)
            decision = self._decide(run, number, jobs)
            if isinstance(decision, GateAttempt):
                gate.append(decision)
            elif decision == ci_attempts.IGNORE:
                ignored.append(number)
            elif decision == ci_attempts.PENDING:
                self._state.pending[str(run.id)] = run.created_at.isoformat()
                self._result.pending += 1
        self._store_run(run, gate, ignored)

    def _decide(
        self, run: CIRun, number: int, jobs: Sequence[CIJob]
    ) -> GateAttempt | str | None:
        """A gate attempt, a reason there is none, or None when deferred."""
        self._jobs_seen.update(job.name for job in jobs)
        decision = decide_attempt(
            number, jobs, self.options.job, self.options.timeout_minutes
        )
        if isinstance(decision, GateAttempt) and run.workflow_id is not None:
            self._state.gate_workflows.add(run.workflow_id)
        if decision != ci_attempts.NO_JOBS:
            return decision

        if run.status != "completed":
            return ci_attempts.PENDING
        if self.options.workflow is None and (
            run.workflow_id not in self._state.gate_workflows
        ):
            # Is this the gate's workflow at all? Decide once the window is in.
            self._deferred.append((run, number))
            return None
        return no_jobs_attempt(run, number)

    def _resolve_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for run, number in deferred:
            if run.workflow_id in self._state.gate_workflows:
                self._store_run(run, [no_jobs_attempt(run, number)], [])
            else:
                self._store_run(run, [], [number])
        self._flush()

    # -- storing ----------------------------------------------------------------

    def _store_run(
        self, run: CIRun, gate: Sequence[GateAttempt], ignored: Sequence[int]
    ) -> None:
        """Queue a run's gate attempts, with their sessions, for ``_flush``."""
        if not gate and not ignored:
            return
        sessions = self._reader.sessions(run, gate)
        self._unwritten.append((run, list(gate), list(ignored), sessions))

    def _flush(self) -> None:
        """Store the queued runs and what was learnt, in one transaction.

        One transaction holds whole runs only, so a run is stored completely
        or not at all, and the sync state moves with the runs it covers.
        """
        unwritten, self._unwritten = self._unwritten, []
        if not unwritten:
            return

        now = self._clock()
        with self.store.writing() as conn:
            for run, gate, ignored, sessions in unwritten:
                for attempt in gate:
                    found = sessions.get(attempt.number, [])
                    self._count(
                        store_attempt(
                            self.store, conn, self._scope, run, attempt, found, now=now
                        )
                    )
                self._remember_ignored(run, ignored)
            save_state(conn, self._key, self._state, self._clock())
        self._result.attempts_stored += sum(len(gate) for _, gate, _, _ in unwritten)

    def _count(self, stored: StoredAttempt) -> None:
        self._result.sessions += stored.sessions
        self._result.without_test_data += not stored.has_test_data

    def _remember_ignored(self, run: CIRun, ignored: Sequence[int]) -> None:
        if not ignored:
            return
        memory = self._state.ignored.setdefault(
            str(run.id), {"created": run.created_at.isoformat(), "attempts": []}
        )
        memory["attempts"] = sorted({*memory["attempts"], *ignored})
        self._result.attempts_ignored += len(ignored)

    # -- sync state -------------------------------------------------------------

    def _revisit_pending(self, *, newer_lo: datetime) -> None:
        """Look again at runs in progress last time that no listing covers."""
        for run_id, created in sorted(self._state.pending.items()):
            moment = moment_of(created)
            if moment is not None and moment >= newer_lo:
                continue
            try:
                run = self.client.run(int(run_id))
            except UnknownRepositoryError:
                # Deleted meanwhile: nothing left to wait for.
                self._state.pending.pop(run_id)
                continue
            self._collect_runs([run])

    def _claim_down_to(self, moment: datetime) -> None:
        self._state.claim_down_to(moment, self._horizon)
        self._save()

    def _check_gate_job_found(self) -> None:
        if self._state.gate_workflows or not self._jobs_seen:
            return
        if self._result.attempts_stored or stored_any(self.store, self._scope):
            return

        # Forget what was learnt: with the right --job it all counts again.
        with self.store.writing() as conn:
            forget_state(conn, self._key)
        self._state = SyncState()
        names = ", ".join(sorted(self._jobs_seen)[:8])
        raise CollectionError(
            f"no job matching {self.options.job!r} in the runs of "
            f"{self.options.repository} that were examined (jobs seen: {names}); "
            "check --job"
        )

    def _save(self) -> None:
        with self.store.writing() as conn:
            save_state(conn, self._key, self._state, self._clock())

    # -- reporting --------------------------------------------------------------

    def _summary(self) -> CollectResult:
        result = self._result
        result.artifacts = self._reader.artifacts
        result.artifacts_missing = self._reader.missing
        result.covered_from = self._state.covered_from
        result.covered_to = self._state.covered_to
        return result

    def _note(self, message: str) -> None:
        log.warning("%s", message)
        self._result.notes.append(message)
        self._report(note=message)

    def _report(self, note: str | None = None) -> None:
        if self._progress is None:
            return
        found = sum(len(gate) for _, gate, _, _ in self._unwritten)
        self._progress(
            CollectProgress(
                runs=self._examined,
                runs_expected=max(self._expected, self._examined),
                attempts=self._result.attempts_stored + found,
                artifacts=self._reader.artifacts,
                note=note,
            )
        )


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
