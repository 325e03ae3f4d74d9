"""Log output: JSON lines with context for CI, readable lines for people."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate_tracker.logs import JSONFormatter, TextFormatter
from gate_tracker.storage import Store
from tests.conftest import build_session

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def _record(message: str, **context: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "gate_tracker.collection", logging.INFO, __file__, 1, message, None, None
    )
    for name, value in context.items():
        setattr(record, name, value)
    return record


def test_a_json_line_carries_time_level_event_and_context() -> None:
    record = _record(
        "stored run %s", gate="e2e-gate", repository="acme/shop", run="1234"
    )
    record.args = ("1234",)

    entry = json.loads(JSONFormatter().format(record))

    assert entry == {
        "time": entry["time"],
        "level": "info",
        "logger": "gate_tracker.collection",
        "event": "stored run 1234",
        "gate": "e2e-gate",
        "repository": "acme/shop",
        "run": "1234",
    }
    moment = datetime.fromisoformat(entry["time"])
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=1)


def test_a_json_line_leaves_out_context_it_does_not_have() -> None:
    entry = json.loads(JSONFormatter().format(_record("nothing to do")))

    assert set(entry) == {"time", "level", "logger", "event"}


def test_secrets_never_reach_a_log_line() -> None:
    """The event, the context and an exception's text are all redacted."""
    try:
        raise RuntimeError(f"GitHub said 401 for Authorization: token {TOKEN}")
    except RuntimeError:
        record = _record(f"calling with {TOKEN}", run=f"https://x:{TOKEN}@h/")
        record.exc_info = sys.exc_info()

    line = JSONFormatter().format(record)
    text = TextFormatter("%(message)s").format(_record(f"token={TOKEN}"))

    assert TOKEN not in line and TOKEN not in text
    assert json.loads(line)["exception"].endswith(
        "GitHub said 401 for Authorization: token [REDACTED]"
    )
    assert text == "gate-tracker: info: token=[REDACTED]"


def _old_runs(url: str) -> None:
    with Store(url) as store:
        for index in range(2):
            started = datetime.now(timezone.utc) - timedelta(days=100 + index)
            store.record_session(build_session(index, started_at=started))


def _gate_tracker(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(env or {})}
    environ.pop("GATE_TRACKER_LOG_FORMAT", None) if env is None else None
    return subprocess.run(
        [sys.executable, "-m", "gate_tracker", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("how", ["option", "environment"])
def test_json_format_logs_one_object_per_line_to_stderr(
    how: str, sqlite_url: str, tmp_path: Path
) -> None:
    _old_runs(sqlite_url)
    prune = ["prune", "--older-than", "30", "--gate", "e2e-gate"]
    if how == "option":
        args, env = ["--log-format", "json", "--db", sqlite_url, "-v", *prune], {}
    else:
        args = ["--db", sqlite_url, "-v", *prune]
        env = {"GATE_TRACKER_LOG_FORMAT": "json"}

    done = _gate_tracker(*args, cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 2 runs ")
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert entries, "expected at least one log line"
    assert {"time", "level", "event"} <= set(entries[0])
    assert entries[-1]["gate"] == "e2e-gate"
    assert entries[-1]["event"] == "pruned 2 runs so far (2 test results)"
    assert entries[-1]["level"] == "info"


def test_the_default_format_is_for_people(sqlite_url: str, tmp_path: Path) -> None:
    _old_runs(sqlite_url)

    done = _gate_tracker(
        "--db", sqlite_url, "-v", "prune", "--older-than", "30", cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "gate-tracker: info: pruned 2 runs so far (2 test results)"
    ]


def test_quiet_hides_info_lines(sqlite_url: str, tmp_path: Path) -> None:
    _old_runs(sqlite_url)

    done = _gate_tracker(
        "--db", sqlite_url, "-q", "prune", "--older-than", "30", cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("deleted 2 runs ")
