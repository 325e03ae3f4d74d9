"""The pytest plugin: records a gate run when ``--gate NAME`` is given.

With recording off the plugin only registers its options: no hook does work
and nothing heavy is imported. Under pytest-xdist only the controller
records; workers send it their reports.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from gate_tracker.config import (
    ENV_DB,
    ENV_GATE,
    ENV_SHARD,
    as_database_url,
    default_sqlite_url,
    display_url,
)

RECORDER_KEY = pytest.StashKey["Recorder"]()
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NEEDS_A_GATE = {
    "--gate-db": "gate_db",
    "--gate-record": "gate_record",
    "--gate-shard": "gate_shard",
}
_GROUP = "gate-tracker"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(_GROUP, "gate-tracker: record end-to-end gate runs")
    group.addoption(
        "--gate",
        metavar="NAME",
        help=f"Record this session as a run of the gate NAME (env {ENV_GATE}).",
    )
    group.addoption(
        "--gate-db",
        metavar="URL",
        help="SQLAlchemy URL of the database to record into (env "
        f"{ENV_DB}). Default: sqlite file .gate-tracker/gate.db under rootdir.",
    )
    group.addoption(
        "--gate-record",
        metavar="PATH",
        help="Also write the run as one JSON record to PATH (for CI artifacts).",
    )
    group.addoption(
        "--gate-shard",
        metavar="NAME",
        help=f"Name of this shard of a sharded gate run (env {ENV_SHARD}).",
    )
    parser.addini("gate_tracker_gate", "Gate to record runs of (like --gate).")
    parser.addini("gate_tracker_db", "Database URL to record into (like --gate-db).")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return

    gate = (
        config.getoption("gate")
        or config.getini("gate_tracker_gate")
        or os.environ.get(ENV_GATE)
    )
    _check_options(config, str(gate) if gate else None)
    if not gate:
        return

    recorder = Recorder(config, gate=str(gate))
    config.stash[RECORDER_KEY] = recorder
    config.pluginmanager.register(recorder, "gate-tracker-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is None:
        return
    recorder.finish()
    config.pluginmanager.unregister(recorder)
    del config.stash[RECORDER_KEY]


class Recorder:
    """Collects one session's reports and stores the run when it ends."""

    def __init__(self, config: pytest.Config, *, gate: str) -> None:
        self.config = config
        self.gate = gate
        self.record_id = uuid.uuid4().hex
        self.db_url = _database_url(config)
        self.record_path = _option_path(config, "gate_record")
        self.shard = config.getoption("gate_shard") or os.environ.get(ENV_SHARD, "")
        self.started_at = datetime.now(timezone.utc)
        self.reports: list[pytest.TestReport] = []
        self.collected: set[str] | None = None
        """The node ids of the tests collected, once collection has finished."""
        self.collection_errors = 0
        self.interrupted: str | None = None
        self.aborted: str | None = None
        self.internal_error = False
        self.result: Any = None
        self._previous_sigterm: Any = None

    # -- hooks ------------------------------------------------------------------

    def pytest_report_header(self) -> str:
        destination = display_url(self.db_url)
        return f"gate-tracker: recording gate {self.gate!r} into {destination}"

    def pytest_sessionstart(self) -> None:
        self.started_at = datetime.now(timezone.utc)
        self._catch_sigterm()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors += 1

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = {item.nodeid for item in session.items}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The controller never collects under xdist: workers tell it.
        if self.collected is None:
            self.collected = set()
        self.collected.update(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)

    def pytest_keyboard_interrupt(
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> None:
        # pytest stops for collection errors by raising an interrupt of its own.
        if excinfo.errisinstance(pytest.Session.Interrupted):
            return
        if excinfo.errisinstance(pytest.exit.Exception):
            # pytest.exit() is a test or fixture giving up on the session.
            self.aborted = str(getattr(excinfo.value, "msg", "")) or "pytest.exit()"
            return
        self.interrupted = self.interrupted or "KeyboardInterrupt"

    def pytest_internalerror(self) -> None:
        self.internal_error = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._release_sigterm()
        with _signals_held(), _imports_not_rewritten(self.config):
            from gate_tracker.session_store import record_session_safely

            self.result = record_session_safely(self, session, int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.result is None or (self.config.get_verbosity() < 0 and self.result.ok):
            return
        for line, markup in self.result.summary_lines():
            terminalreporter.write_line(line, **markup)

    def finish(self) -> None:
        """Runs at unconfigure, once pytest's final exit status is known."""
        self._release_sigterm()
        if self.result is not None:
            with _imports_not_rewritten(self.config):
                self.result.settle_exit_status()

    # -- SIGTERM ----------------------------------------------------------------

    def _catch_sigterm(self) -> None:
        # CI cancellation sends SIGINT, then SIGTERM: treat SIGTERM like Ctrl-C
        # so the session ends through pytest and what ran is recorded.
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread
            self._previous_sigterm = None

    def _release_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = "SIGTERM"
        raise KeyboardInterrupt("SIGTERM")


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while the record is written.

    CI cancellation sends SIGINT, then SIGTERM 7.5 s later: a second signal
    must not tear the write that saves what the session saw.
    """
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _HELD_SIGNALS}
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _imports_not_rewritten(config: pytest.Config) -> Iterator[None]:
    """Import modules with Python's own import system, bypassing pytest's.

    pytest rewrites the asserts of every module in a plugin's distribution,
    and where no rewritten copy is cached yet, as in a fresh CI job, that
    means parsing each module into a syntax tree and compiling it again. The
    code that stores a run has no assert a user reads, and rewriting it
    costs nearly as much CPU as building and writing a 5,000-test record.
    Imported plainly, it comes from the bytecode compiled when it was
    installed. Only the plugin imports while this holds: no test runs then.
    """
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    if hook is None or hook not in sys.meta_path:
        yield
        return

    position = sys.meta_path.index(hook)
    sys.meta_path.remove(hook)
    try:
        yield
    finally:
        sys.meta_path.insert(position, hook)


def _database_url(config: pytest.Config) -> str:
    from_option = config.getoption("gate_db") or config.getini("gate_tracker_db")
    url = from_option or os.environ.get(ENV_DB)
    if url:
        return as_database_url(str(url), Path(config.invocation_params.dir))
    return default_sqlite_url(Path(config.rootpath))


def _check_options(config: pytest.Config, gate: str | None) -> None:
    """Refuse options that cannot work, before any test runs."""
    if not gate:
        given = [
            flag
            for flag, name in _NEEDS_A_GATE.items()
            if config.getoption(name) is not None
        ]
        if given:
            raise pytest.UsageError(
                f"{', '.join(given)} needs a gate to record: add --gate NAME "
                f"(or set {ENV_GATE}, or the ini key gate_tracker_gate)"
            )
        return

    shard = config.getoption("gate_shard") or os.environ.get(ENV_SHARD, "")
    for what, value, limit in (("gate name", gate, 200), ("shard name", shard, 100)):
        if len(value) > limit:
            raise pytest.UsageError(f"the {what} is longer than {limit} characters")


def _option_path(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path
