"""Faults survived: damaged databases, a server lost mid-session, a killed sync."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from fake_github import FakeGitHub, FakeJob

from gate_tracker.database import open_engine
from gate_tracker.exceptions import SchemaTooNewError, StorageError
from gate_tracker.storage import Store
from tests.conftest import build_session

TIMEOUT_S = 120

# Only our plugin loads in the sessions run here: the others installed
# (hypothesis, xdist, ...) would cost each session half a second to start.
PLUGIN = ("-p", "gate_tracker.plugin")

# A tiny gate: one pass, one failure, and a test that can hold the session
# open until the test driving it says go.
GATE_TESTS = """
import os, pathlib, time

def test_ok():
    pass

def test_broken():
    assert 1 + 1 == 3, "arithmetic is off"

def test_holds_the_session():
    flag = os.environ.get("HOLD_FLAG")
    if not flag:
        return
    pathlib.Path(flag + ".started").touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(flag + ".go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
"""
GATE_TEST_IDS = {
    "test_gate.py::test_ok": "passed",
    "test_gate.py::test_broken": "failed",
    "test_gate.py::test_holds_the_session": "passed",
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clean_env(**extra: str) -> dict[str, str]:
    # A local session: no CI context and no settings from the outside.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GATE_TRACKER_")) and key != "CI"
    }
    return {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **extra}


@pytest.fixture
def gate_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_gate.py").write_text(GATE_TESTS)
    return project


def _pytest(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *PLUGIN, *args],
        cwd=project,
        env=env or _clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="backslashreplace",
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, output


def _gate_tracker(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate_tracker", *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _pending(project: Path) -> list[Path]:
    return sorted((project / ".gate-tracker" / "pending").glob("*.json"))


# -- a damaged SQLite file -------------------------------------------------------


def _damaged_database(tmp_path: Path) -> Path:
    """A real gate-tracker database with its schema page overwritten."""
    path = tmp_path / "damaged.db"
    with Store(f"sqlite:///{path}") as store:
        for index in range(20):
            store.record_session(build_session(index))
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)
    path.write_bytes(bytes(data))
    return path


def _not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_text("These are my notes, not a database.\n" * 50)
    return path


@pytest.mark.parametrize("make", [_not_a_database, _damaged_database])
def test_a_bad_sqlite_file_is_a_clear_error_and_stays_unchanged(
    make: object, tmp_path: Path
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    before = _digest(path)

    with pytest.raises(StorageError) as caught:
        Store(f"sqlite:///{path}")

    assert str(caught.value).startswith(
        f"sqlite:///{path} is not a usable SQLite database ("
    )
    assert "it was left unchanged" in str(caught.value)
    assert _digest(path) == before


def test_the_cli_names_the_bad_file_without_a_traceback(tmp_path: Path) -> None:
    path = _not_a_database(tmp_path)
    before = _digest(path)

    done = _gate_tracker("--db", f"sqlite:///{path}", "status", cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.startswith(
        f"gate-tracker: error: sqlite:///{path} is not a usable SQLite database"
    )
    assert "Traceback" not in done.stderr
    assert _digest(path) == before


@pytest.mark.slow
def test_recording_into_a_bad_file_keeps_the_run_pending(
    gate_project: Path, tmp_path: Path
) -> None:
    """The session's exit status stays 1; the record waits in pending/."""
    path = _not_a_database(tmp_path)
    before = _digest(path)

    status, output = _finish(
        _pytest(gate_project, "--gate", "e2e-gate", "--gate-db", f"sqlite:///{path}")
    )

    assert status == 1, output
    assert "GT101 run not stored" in output
    assert len(_pending(gate_project)) == 1
    assert _digest(path) == before


@pytest.mark.slow
def test_recording_into_a_database_newer_than_the_code_keeps_the_run_pending(
    gate_project: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    Store(url).close()
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    before = _digest(tmp_path / "gate.db")

    status, output = _finish(_pytest(gate_project, "--gate", "e2e", "--gate-db", url))

    assert status == 1, output
    assert "written by a newer gate-tracker" in output
    assert len(_pending(gate_project)) == 1
    assert _digest(tmp_path / "gate.db") == before
    with pytest.raises(SchemaTooNewError):
        Store(url)


_UNSTORABLE_TESTS = """
def test_undecodable_file_name():
    raise FileNotFoundError("no such file: report-\\udc80\\udcff.txt")

def test_binary_in_the_message():
    raise ValueError("payload \\x00\\x01 rejected")
"""


@pytest.mark.slow
def test_messages_no_database_can_hold_are_stored_escaped(
    any_db_url: str, tmp_path: Path
) -> None:
    """A lone surrogate or NUL in a failure must not lose the run."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_unstorable.py").write_text(_UNSTORABLE_TESTS)

    status, output = _finish(
        _pytest(project, "--gate", "e2e-gate", "--gate-db", any_db_url)
    )

    assert status == 1, output
    assert "Traceback" not in output and "GT101" not in output
    assert _pending(project) == []
    with Store(any_db_url) as store, store.reading() as conn:
        messages = dict(
            conn.execute(sa.text("SELECT test_id, message FROM test_results")).all()
        )
    assert messages == {
        "test_unstorable.py::test_undecodable_file_name": (
            "FileNotFoundError: no such file: report-\\udc80\\udcff.txt"
        ),
        "test_unstorable.py::test_binary_in_the_message": (
            "ValueError: payload \\x00\x01 rejected"
        ),
    }


# -- PostgreSQL lost in the middle of a session ---------------------------------


class _Proxy:
    """Forwards a local port to the PostgreSQL server until stopped.

    Stopping it closes the port and every connection through it, as a server
    that went away would.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, _Proxy]]:
    """``pg_url`` reached through a proxy the test can pull the plug on."""
    url = sa.engine.make_url(pg_url)
    proxy = _Proxy(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port)
    try:
        yield through.render_as_string(hide_password=False), proxy
    finally:
        proxy.stop()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.postgresql
def test_postgresql_lost_mid_session_keeps_the_run_and_imports_it_later(
    gate_project: Path, pg_url: str, proxied_pg: tuple[str, _Proxy], tmp_path: Path
) -> None:
    through_proxy, proxy = proxied_pg
    Store(through_proxy).close()
    flag = str(tmp_path / "hold")
    baseline, _ = _finish(_pytest(gate_project))

    session = _pytest(
        gate_project,
        "--gate",
        "e2e-gate",
        "--gate-db",
        through_proxy,
        env=_clean_env(HOLD_FLAG=flag),
    )
    _wait_for(Path(flag + ".started"))
    proxy.stop()
    Path(flag + ".go").touch()
    status, output = _finish(session)

    assert status == baseline == 1, output
    assert "GT101 run not stored" in output
    [pending] = _pending(gate_project)
    with Store(pg_url) as store:
        assert store.runs("e2e-gate") == []

    imported = _gate_tracker(
        "--db", pg_url, "import", "record", str(pending), cwd=tmp_path
    )
    again = _gate_tracker(
        "--db", pg_url, "import", "record", str(pending), cwd=tmp_path
    )

    assert imported.returncode == 0, imported.stderr
    assert again.returncode == 0, again.stderr
    with Store(pg_url) as store:
        [run] = store.runs("e2e-gate")
        with store.reading() as conn:
            tests = dict(
                conn.execute(sa.text("SELECT test_id, outcome FROM test_results")).all()
            )
    assert (run.verdict, run.exit_status, run.sessions) == ("fail", 1, 1)
    assert tests == GATE_TEST_IDS
    record = json.loads(pending.read_text())
    assert record["session"]["exit_status"] == 1


# -- a collector killed half way through a sync ----------------------------------

SYNC_RUNS = 120


def _collect(fake: FakeGitHub, url: str, cwd: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gate_tracker",
        "--db",
        url,
        *fake.collect_args(),
        *("--gate", "e2e-gate", "--no-progress"),
        *extra,
    ]


def _stored_runs(url: str) -> list[tuple[str, int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("gate_runs"):
                return []
            rows = conn.execute(
                sa.text(
                    "SELECT ci_run_id, attempt, verdict FROM gate_runs "
                    "ORDER BY ci_run_id, attempt"
                )
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    except sa.exc.OperationalError:
        return []  # the writer holds the lock; look again
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_collector_killed_mid_sync_is_finished_by_the_next_sync(
    any_db_url: str, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    """SIGKILL once a page of runs is stored; the next sync stores the rest once."""
    repository = fake_github.repositories["acme/shop"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for index in range(SYNC_RUNS):
        conclusion = "failure" if index % 7 == 0 else "success"
        fake_github.add_run(
            repository,
            now - timedelta(hours=1 + index),
            [FakeJob("e2e-gate", conclusion=conclusion)],
        )
    env = _clean_env(GITHUB_TOKEN=fake_github.token)

    slow = _collect(fake_github, any_db_url, tmp_path, "--request-interval", "0.01")
    log = tmp_path / "killed-collector.log"
    with log.open("w") as output:
        collector = subprocess.Popen(
            slow, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + TIMEOUT_S
    while not _stored_runs(any_db_url):
        assert collector.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the collector stored nothing"
        time.sleep(0.02)
    collector.send_signal(signal.SIGKILL)
    collector.wait(timeout=TIMEOUT_S)
    interrupted = len(_stored_runs(any_db_url))

    finish = subprocess.run(
        _collect(fake_github, any_db_url, tmp_path, "--request-interval", "0"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert collector.returncode == -signal.SIGKILL
    assert 0 < interrupted < SYNC_RUNS
    assert finish.returncode == 0, finish.stderr
    stored = _stored_runs(any_db_url)
    assert len(stored) == len(set(stored)) == SYNC_RUNS
    assert sum(verdict == "fail" for _, _, verdict in stored) == len(
        range(0, SYNC_RUNS, 7)
    )
    assert {attempt for _, attempt, _ in stored} == {1}
