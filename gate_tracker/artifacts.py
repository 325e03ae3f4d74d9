"""Per-test data inside CI artifacts: gate records and JUnit XML in zip files.

GitHub's artifacts carry no attempt number, so the gate workflow names them
``<prefix>-<run id>-<attempt>[-<shard>]``; an artifact named otherwise is
placed by the time it was made, and a gate record by the attempt it names.
An attempt the plugin recorded (in an artifact or straight into the
database) takes no session from JUnit XML, which cannot show reruns.
``AttemptDataReader`` downloads through the collector's client; the rest is
pure.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from gate_tracker.ci_attempts import GateAttempt, ci_context
from gate_tracker.ci_storage import Scope, plugin_recorded
from gate_tracker.exceptions import InputError
from gate_tracker.github_client import CIArtifact, CIRun, GitHubClient
from gate_tracker.record_file import parse_record
from gate_tracker.records import CIContext, SessionRecord
from gate_tracker.storage import Store

log = logging.getLogger(__name__)

DEFAULT_ARTIFACTS = ("gate-record*", "*junit*")
"""Artifact name patterns read by default: our records, and JUnit XML."""

RECORD_SUFFIX = ".json"
JUNIT_SUFFIX = ".xml"

# An upload happens inside the job, but clocks and listings are not exact.
_TIME_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class AttemptSpan:
    """When one attempt's gate jobs ran, to place an artifact by its time."""

    number: int
    started_at: datetime | None
    finished_at: datetime | None


@dataclass
class ArchiveContent:
    """What one artifact held: gate records and JUnit XML documents."""

    records: list[SessionRecord] = field(default_factory=list)
    junit: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def wanted(name: str, patterns: Sequence[str]) -> bool:
    """Whether an artifact called ``name`` matches one of ``patterns``."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def attempt_of_name(name: str, run_id: int) -> tuple[int | None, str]:
    """The attempt and shard an artifact's name gives, if it follows the rule.

    ``gate-record-123-2-1of4`` of run 123 gives attempt 2 and shard ``1of4``;
    a name without the run id gives no attempt and no shard.
    """
    match = re.search(rf"(?:^|[-_.]){run_id}[-_.](\d+)(?:[-_.](.+))?$", name)
    if match is None:
        return None, ""
    return int(match.group(1)), match.group(2) or ""


def attempt_by_time(
    created_at: datetime | None, spans: Sequence[AttemptSpan]
) -> int | None:
    """The one attempt whose gate jobs were running when an artifact was made."""
    if created_at is None:
        return None

    fits = [
        span.number
        for span in spans
        if span.started_at is not None
        and span.started_at - _TIME_SLACK <= created_at
        and (span.finished_at is None or created_at <= span.finished_at + _TIME_SLACK)
    ]
    return fits[0] if len(fits) == 1 else None


def read_archive(data: bytes, origin: str, *, limit: int) -> ArchiveContent:
    """The gate records and JUnit documents inside the zip ``data``.

    ``origin`` names the artifact in messages. A member that cannot be read is
    reported in ``problems`` and the others are still read; a file that is not
    a zip archive raises ``InputError``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise InputError(f"{origin}: not a zip archive ({err})") from err

    content = ArchiveContent()
    with archive:
        for member in archive.infolist():
            _read_member(archive, member, origin, limit, content)
    return content


def _read_member(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    origin: str,
    limit: int,
    content: ArchiveContent,
) -> None:
    name = member.filename
    where = f"{origin}/{name}"
    if member.is_dir() or not name.endswith((RECORD_SUFFIX, JUNIT_SUFFIX)):
        return
    if member.file_size > limit:
        content.problems.append(f"{where}: larger than {limit} bytes, not read")
        return

    try:
        data = archive.read(member)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        content.problems.append(f"{where}: cannot be unpacked ({err})")
        return

    if name.endswith(JUNIT_SUFFIX):
        content.junit.append((where, data))
        return
    try:
        content.records.append(parse_record(data, where))
    except InputError as err:
        content.problems.append(str(err))


def fit_record(
    record: SessionRecord, *, gate: str, ci: CIContext
) -> SessionRecord | str:
    """``record`` placed in the CI attempt ``ci``, or why it does not belong.

    A record made without CI context (or without the attempt number) takes
    it from ``ci``; a record of another gate or another run is refused.
    """
    if record.gate != gate:
        return f"it records gate {record.gate!r}, not {gate!r}"

    own = record.ci
    if own is not None and own.repository and own.repository != ci.repository:
        return f"it records repository {own.repository}, not {ci.repository}"
    if own is not None and own.run_id and own.run_id != ci.run_id:
        return f"it records run {own.run_id}, not {ci.run_id}"
    if own is not None and own.run_attempt and own.run_attempt != ci.run_attempt:
        return f"it records attempt {own.run_attempt}, not {ci.run_attempt}"

    merged = ci if own is None else _filled(own, ci)
    return dataclasses.replace(record, ci=merged, event=record.event or ci.event or "")


def record_attempt(record: SessionRecord) -> int | None:
    """The attempt a gate record says it belongs to, if it says."""
    if record.ci is None:
        return None
    return record.ci.run_attempt


def _filled(own: CIContext, ci: CIContext) -> CIContext:
    values = {
        name: getattr(own, name) or getattr(ci, name)
        for name in ("provider", "repository", "workflow", "job", "run_id", "url")
    }
    return CIContext(
        run_attempt=own.run_attempt or ci.run_attempt,
        event=own.event or ci.event,
        **values,
    )


_JUnitDocuments = dict[tuple[int, str], list[tuple[str, bytes]]]


class AttemptDataReader:
    """Reads the sessions of a run's attempts from the run's artifacts.

    ``note`` receives a message for every artifact that could not give its
    data (expired, gone, unreadable); ``artifacts`` and ``missing`` count
    artifacts read and artifacts not found.
    """

    def __init__(
        self,
        client: GitHubClient,
        store: Store,
        scope: Scope,
        *,
        patterns: Sequence[str],
        note: Callable[[str], None],
    ) -> None:
        self.client = client
        self.store = store
        self.scope = scope
        self.patterns = tuple(patterns)
        self.note = note
        self.artifacts = 0
        self.missing = 0

    def sessions(
        self, run: CIRun, attempts: Sequence[GateAttempt]
    ) -> dict[int, list[SessionRecord]]:
        """The sessions found for each of ``attempts``, by attempt number."""
        if not self.patterns or not attempts:
            return {}

        spans = [AttemptSpan(a.number, a.started_at, a.finished_at) for a in attempts]
        numbers = {a.number for a in attempts}
        records: dict[int, list[SessionRecord]] = {}
        junit: _JUnitDocuments = {}
        for artifact in self.client.run_artifacts(run.id):
            if not wanted(artifact.name, self.patterns):
                continue
            number, shard = attempt_of_name(artifact.name, run.id)
            if number is None:
                number = attempt_by_time(artifact.created_at, spans)
            if number is not None and number in numbers:
                self._read(run, artifact, number, shard, records, junit)

        return {
            a.number: records.get(a.number) or self._junit_sessions(run, a, junit)
            for a in attempts
        }

    def _read(
        self,
        run: CIRun,
        artifact: CIArtifact,
        number: int,
        shard: str,
        records: dict[int, list[SessionRecord]],
        junit: _JUnitDocuments,
    ) -> None:
        where = f"artifact {artifact.name!r} of run {run.id}"
        data = None if artifact.expired else self.client.download_artifact(artifact)
        if data is None:
            self.missing += 1
            self.note(
                f"{where} has expired or is gone: attempt {number} is kept "
                "without its per-test data"
            )
            return

        self.artifacts += 1
        try:
            content = read_archive(data, where, limit=self.client.limits.artifact_bytes)
        except InputError as err:
            self.note(str(err))
            return
        for problem in content.problems:
            self.note(problem)

        for record in content.records:
            attempt = record_attempt(record) or number
            fitted = fit_record(record, gate=self.scope.gate, ci=self._ci(run, attempt))
            if isinstance(fitted, str):
                self.note(f"{where}: a gate record was left out: {fitted}")
                continue
            records.setdefault(attempt, []).append(fitted)
        if content.junit:
            junit.setdefault((number, shard), []).extend(content.junit)

    def _junit_sessions(
        self,
        run: CIRun,
        attempt: GateAttempt,
        junit: _JUnitDocuments,
    ) -> list[SessionRecord]:
        groups = {
            shard: documents
            for (number, shard), documents in junit.items()
            if number == attempt.number
        }
        if not groups:
            return []
        # The plugin's own record of an attempt is richer than its JUnit XML.
        if plugin_recorded(self.store, self.scope, run.id, attempt.number):
            return []

        from gate_tracker.junit import session_from_junit

        sessions = []
        for shard, documents in sorted(groups.items()):
            try:
                session, warnings = session_from_junit(
                    documents,
                    gate=self.scope.gate,
                    commit=run.commit,
                    branch=run.branch,
                    event=run.event,
                    started_at=attempt.started_at,
                    ci=self._ci(run, attempt.number),
                    shard=shard,
                )
            except InputError as err:
                self.note(f"run {run.id} attempt {attempt.number}: {err}")
                continue
            for warning in warnings:
                log.info("run %s attempt %s: %s", run.id, attempt.number, warning)
            sessions.append(session)
        return sessions

    def _ci(self, run: CIRun, number: int) -> CIContext:
        scope = self.scope
        return ci_context(run, number, repository=scope.repository, job=scope.job)
