"""Building a finished session's record and saving it without failing pytest.

The record goes to the database in one transaction. When that fails for any
reason (unreachable or locked database, read-only disk, a schema from a newer
gate-tracker), the session's outcome is left alone: the record is kept as a
pending JSON file that ``gate-tracker import record`` loads later.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gate_tracker import __version__, environment
from gate_tracker.direct_write import store_directly
from gate_tracker.exceptions import GateTrackerWarning
from gate_tracker.recording import build_tests, redact_test_id, stable_test_id
from gate_tracker.records import SessionRecord
from gate_tracker.redaction import Redactor, redact_args, storable
from gate_tracker.verdicts import Completeness, session_verdict

if TYPE_CHECKING:
    from gate_tracker.plugin import Recorder

log = logging.getLogger(__name__)

PENDING_DIR = Path(".gate-tracker") / "pending"
WARN_NOT_STORED = "GT101"
WARN_RECORD_FILE = "GT102"


@dataclass
class SaveResult:
    """What happened to a session's record, for the terminal summary."""

    session: SessionRecord
    db_url: str
    run_id: int | None = None
    duplicate: bool = False
    pending_path: Path | None = None
    problems: list[str] = field(default_factory=list)
    record_path: Path | None = None
    pytest_session: Any = None
    warned: bool = False
    """True when pytest's warnings summary shows the problems already."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        """The terminal lines: the verdict, then one per problem."""
        session = self.session
        colour = {"pass": "green", "flaky-pass": "yellow"}.get(session.verdict, "red")
        where = f"run {self.run_id}" if self.run_id is not None else "not stored"
        line = (
            f"gate-tracker: gate {session.gate!r} verdict {session.verdict} "
            f"({where}) - {session.reason}"
        )
        lines = [(line, {colour: True, "bold": True})]
        for problem in [] if self.warned else self.problems:
            lines.append((f"gate-tracker: warning: {problem}", {"yellow": True}))
        return lines

    def settle_exit_status(self) -> None:
        """Store pytest's final exit status if plugins changed it after us."""
        if self.pytest_session is None:
            return
        final = int(self.pytest_session.exitstatus)
        if final == self.session.exit_status:
            return
        self.session.exit_status = final
        if self.run_id is not None and not self.duplicate:
            _update_exit_status(self)
        if self.record_path is not None:
            _write_record_file(self)
        if self.pending_path is not None:
            _write_record(self.session, self.pending_path)


def record_session_safely(
    recorder: Recorder, session: pytest.Session, exitstatus: int
) -> SaveResult:
    """Build the session's record and save it; never raises."""
    record = build_session_record(recorder, session, exitstatus)
    result = SaveResult(
        session=record,
        db_url=recorder.db_url,
        record_path=recorder.record_path,
        pytest_session=session,
    )

    if recorder.record_path is not None:
        _write_record_file(result)
    _store(result, Path(session.config.rootpath))
    if record.ci is not None:  # inside GitHub Actions: add to the job summary
        from gate_tracker.github_actions import publish_session

        publish_session(record)
    if result.record_path is None and result.pending_path is None:
        # No file will be written again, so the tests can go now, before
        # pytest's last garbage collections have to walk thousands of them.
        record.tests = []
    return result


def build_session_record(
    recorder: Recorder, session: pytest.Session, exitstatus: int
) -> SessionRecord:
    """The ``SessionRecord`` of a finished pytest session."""
    config = session.config
    redactor = Redactor()
    tests = build_tests(recorder.reports, redactor)
    collected = (
        None
        if recorder.collected is None
        else {stable_test_id(nodeid) for nodeid in recorder.collected}
    )
    completeness = Completeness(
        expected=None
        if collected is None
        else {redact_test_id(i, redactor) for i in collected},
        collection_errors=recorder.collection_errors,
        internal_error=recorder.internal_error
        or exitstatus == pytest.ExitCode.INTERNAL_ERROR,
        interrupted=recorder.interrupted,
        aborted=recorder.aborted,
        narrowed_by=narrowing_options(config),
    )
    verdict, reason = session_verdict(tests, completeness)

    rootdir = Path(config.rootpath)
    ci = environment.ci_context()
    commit, branch = environment.commit_and_branch(rootdir)
    return SessionRecord(
        gate=recorder.gate,
        record_id=recorder.record_id,
        started_at=recorder.started_at,
        finished_at=datetime.now(timezone.utc),
        verdict=verdict,
        reason=reason,
        source="plugin",
        shard=recorder.shard,
        exit_status=exitstatus,
        commit=commit,
        branch=branch,
        event=environment.event_of(ci),
        ci=ci,
        hostname=environment.hostname(),
        python_version=environment.python_version(),
        pytest_version=pytest.__version__,
        plugin_version=__version__,
        xdist_workers=_xdist_workers(config),
        reruns=_reruns(config),
        args=redact_args(list(config.invocation_params.args)),
        selection=_selection(config),
        collected=None if collected is None else len(collected),
        tests=tests,
    )


def narrowing_options(config: pytest.Config) -> list[str]:
    """The options that ran less than the gate's definition (paths, markers)."""
    option = config.option
    narrowed = []
    if getattr(option, "keyword", ""):
        narrowed.append("-k")
    if getattr(option, "lf", False):
        narrowed.append("--lf")
    if getattr(option, "stepwise", False) or getattr(option, "stepwise_skip", False):
        narrowed.append("--sw")
    if getattr(option, "deselect", None):
        narrowed.append("--deselect")
    if any("::" in arg for arg in config.args):
        narrowed.append("node ids")
    return narrowed


def _selection(config: pytest.Config) -> dict[str, Any]:
    return {
        "markexpr": storable(getattr(config.option, "markexpr", "") or ""),
        "paths": [storable(arg) for arg in config.args if "::" not in arg],
        "narrowed_by": narrowing_options(config),
    }


def _xdist_workers(config: pytest.Config) -> int:
    workers = getattr(config.option, "numprocesses", None)
    if not isinstance(workers, int) or getattr(config.option, "dist", "no") == "no":
        return 0
    return workers


def _reruns(config: pytest.Config) -> int | None:
    reruns = getattr(config.option, "reruns", None)
    return reruns if isinstance(reruns, int) else None


def _store(result: SaveResult, rootdir: Path) -> None:
    try:
        run_id, stored = _write(result.db_url, result.session)
    except Exception as err:  # whatever the database did, the run must not be lost
        cause = str(err).strip() or type(err).__name__
        result.pending_path = _keep_pending(result, rootdir)
        where = (
            f"kept it in {result.pending_path}; load it later with "
            f"`gate-tracker import record {result.pending_path}`"
            if result.pending_path
            else "and could not keep it as a file either"
        )
        _warn(result, f"{WARN_NOT_STORED} run not stored: {cause}; {where}")
        return

    result.run_id = run_id
    result.duplicate = not stored


def _write(url: str, session: SessionRecord) -> tuple[int, bool]:
    """Store ``session``: (run id, whether it was new)."""
    written = store_directly(url, session)
    if written is not None:
        return written

    # SQLAlchemy is imported only now: see direct_write for why.
    from gate_tracker.storage import Store

    with Store(url) as store:
        outcome = store.record_session(session)
    return outcome.run_id, outcome.stored


def _keep_pending(result: SaveResult, rootdir: Path) -> Path | None:
    name = f"{result.session.record_id}.json"
    for directory in (
        rootdir / PENDING_DIR,
        Path(tempfile.gettempdir()) / "gate-tracker-pending",
    ):
        path = directory / name
        try:
            _write_record(result.session, path)
        except Exception as err:  # any failure here: try the next place
            log.debug("cannot keep the pending record in %s: %s", directory, err)
            continue
        return path
    return None


def _write_record(session: SessionRecord, path: Path) -> None:
    # Imported when needed only: most sessions write no file, and every
    # module imported at session end is CPU time the gate run pays for.
    from gate_tracker.record_file import write_record

    write_record(session, path)


def _write_record_file(result: SaveResult) -> None:
    assert result.record_path is not None
    try:
        _write_record(result.session, result.record_path)
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        _warn(
            result,
            f"{WARN_RECORD_FILE} cannot write the record file "
            f"{result.record_path}: {reason}",
        )


def _warn(result: SaveResult, problem: str) -> None:
    result.problems.append(problem)
    if not result.pytest_session.config.pluginmanager.has_plugin("warnings"):
        return
    try:
        # Attributed to gate-tracker, not to a line of its code, which would
        # mean nothing to the user reading the warnings summary.
        warnings.warn_explicit(
            GateTrackerWarning(problem), GateTrackerWarning, "gate-tracker", 0
        )
    except Warning:
        # Warnings are errors in this session (-W error): the summary line
        # reports the problem instead, and the session's outcome is unchanged.
        return
    result.warned = True


def _update_exit_status(result: SaveResult) -> None:
    from gate_tracker.storage import Store, update_session_exit_status

    try:
        with Store(result.db_url) as store:
            update_session_exit_status(store, result.session)
    except Exception as err:  # the run is stored; only its exit status is stale
        print(
            f"gate-tracker: warning: could not update the stored exit status: {err}",
            file=sys.stderr,
        )
