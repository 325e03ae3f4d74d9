"""Concurrent writers in separate processes: every run stored exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gate_tracker.storage import Store

ROOT = Path(__file__).resolve().parents[1]
WRITERS = 8
TIMEOUT_S = 120
RUNS_PER_WRITER = 5
SHARDED_RUN = 500
REPEATED_RUN = 600

# Each writer says it is ready once imported, waits for the go file so that
# all of them hit the database at once, opens the store (a fresh database:
# they race to create the schema too) and records its sessions, printing
# what record_session said about each.
_WRITER = """
import json, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from gate_tracker.records import CIContext, SessionRecord, TestRecord
from gate_tracker.storage import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def session(spec):
    start = T0 + timedelta(hours=spec["index"])
    ci = CIContext("github-actions", repository="acme/shop",
                   run_id=str(1000 + spec["index"]), run_attempt=1, event="push")
    tests = [TestRecord(f"tests/test_e2e.py::test_{n}", "passed", ["passed"], 0.1)
             for n in range(spec["tests"])]
    return SessionRecord(
        gate="e2e-gate", record_id=spec["record_id"], started_at=start,
        finished_at=start + timedelta(seconds=60), verdict=spec["verdict"],
        shard=spec["shard"], exit_status=0 if spec["verdict"] == "pass" else 1,
        commit="0" * 40, branch="main", event="push", ci=ci, tests=tests,
    )


url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
specs = json.loads(sys.argv[4])
ready.touch()
while not go.exists():
    time.sleep(0.005)
with Store(url) as store:
    for spec in specs:
        outcome = store.record_session(session(spec))
        print(json.dumps({**spec, "run_id": outcome.run_id, "stored": outcome.stored}))
"""


def _run_writers(
    url: str, tmp_path: Path, work: list[list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Start one process per item of ``work`` at once; what each one stored."""
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    ready = [tmp_path / f"ready-{n}" for n in range(len(work))]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(flag), str(go), json.dumps(specs)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag, specs in zip(ready, work, strict=True)
    ]
    deadline = time.monotonic() + TIMEOUT_S
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        failed = [w for w in writers if w.poll() is not None]
        assert not failed, failed[0].communicate()[1]
        time.sleep(0.01)
    go.touch()

    outcomes = []
    for writer in writers:
        out, err = writer.communicate(timeout=TIMEOUT_S)
        assert writer.returncode == 0, err
        outcomes.extend(json.loads(line) for line in out.splitlines())
    return outcomes


def _spec(
    index: int, *, shard: str = "", record_id: str | None = None, verdict: str = "pass"
) -> dict[str, Any]:
    return {
        "index": index,
        "shard": shard,
        "record_id": record_id or f"rec-{index}-{shard}",
        "tests": 20,
        "verdict": verdict,
    }


def _writer_work(writer: int) -> list[dict[str, Any]]:
    """One writer's share: a shard of one run, a repeated record, own runs."""
    return [
        _spec(
            SHARDED_RUN, shard=str(writer), verdict="fail" if writer == 3 else "pass"
        ),
        _spec(REPEATED_RUN, record_id="one-record-uploaded-eight-times"),
        *(_spec(writer * RUNS_PER_WRITER + n) for n in range(RUNS_PER_WRITER)),
    ]


def _table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("gate_runs", "gate_sessions", "test_results")
        }
    engine.dispose()
    return counts


@pytest.mark.slow
def test_eight_writers_at_once_store_every_run_exactly_once(
    any_db_url: str, tmp_path: Path
) -> None:
    """Distinct runs, shards of one run and one record repeated, all at once."""
    work = [_writer_work(writer) for writer in range(WRITERS)]

    outcomes = _run_writers(any_db_url, tmp_path, work)

    own = [o for o in outcomes if o["index"] < SHARDED_RUN]
    sharded = [o for o in outcomes if o["index"] == SHARDED_RUN]
    repeated = [o for o in outcomes if o["index"] == REPEATED_RUN]
    assert len(own) == WRITERS * RUNS_PER_WRITER and all(o["stored"] for o in own)
    assert len({o["run_id"] for o in own}) == len(own)
    assert len({o["run_id"] for o in sharded}) == 1
    assert all(o["stored"] for o in sharded)
    assert Counter(o["stored"] for o in repeated) == {True: 1, False: WRITERS - 1}
    assert len({o["run_id"] for o in repeated}) == 1

    assert _table_counts(any_db_url) == {
        "gate_runs": len(own) + 2,
        "gate_sessions": len(own) + WRITERS + 1,
        "test_results": (len(own) + WRITERS + 1) * 20,
    }
    with Store(any_db_url) as store:
        runs = {int(run.ci_run_id or 0) - 1000: run for run in store.runs("e2e-gate")}
    assert sorted(runs) == [*range(len(own)), SHARDED_RUN, REPEATED_RUN]
    shards = runs[SHARDED_RUN]
    assert (shards.sessions, shards.counts["passed"], shards.verdict) == (
        WRITERS,
        WRITERS * 20,
        "fail",
    )
    assert (runs[REPEATED_RUN].sessions, runs[REPEATED_RUN].counts["passed"]) == (
        1,
        20,
    )


# -- recording sessions and collectors at once -----------------------------------

SESSIONS = 8
COLLECTORS = 2
OLDER_RUNS = 30
BROKEN_OLDER_RUN = 14
"""Counting back from the newest older run, this one failed."""

_GATE_TESTS = """
import time

def test_checkout():
    time.sleep(0.05)

def test_login():
    pass
"""


def _ci_environment(run: Any, fake: Any) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GATE_TRACKER_")) and key != "CI"
    }
    return {
        **env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": str(run.id),
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF_NAME": "main",
        "GITHUB_SHA": run.sha,
        "GITHUB_WORKFLOW": "E2E gate",
        "GITHUB_JOB": "e2e-gate",
        "GITHUB_TOKEN": fake.token,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


@pytest.mark.slow
def test_recording_sessions_and_collectors_at_once_store_each_run_once(
    any_db_url: str, fake_github: Any, tmp_path: Path
) -> None:
    """8 pytest sessions record CI runs while 2 collectors sync the same history."""
    from datetime import datetime, timedelta, timezone

    from fake_github import FakeJob

    repository = fake_github.repositories["acme/shop"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for index in range(OLDER_RUNS):
        conclusion = "failure" if index == BROKEN_OLDER_RUN else "success"
        fake_github.add_run(
            repository,
            now - timedelta(hours=SESSIONS + 1 + index),
            [FakeJob("e2e-gate", conclusion=conclusion)],
        )
    current = [
        fake_github.add_run(repository, now - timedelta(hours=1 + index))
        for index in range(SESSIONS)
    ]
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_gate.py").write_text(_GATE_TESTS)
    Store(any_db_url).close()  # the team's database exists before the day starts

    # Only our plugin loads: the others installed here (hypothesis, xdist, ...)
    # would cost every session half a second of start-up.
    record = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    record += ["-p", "gate_tracker.plugin"]
    collect = [
        *(sys.executable, "-m", "gate_tracker", "--db", any_db_url),
        *fake_github.collect_args(),
        *("--gate", "e2e-gate", "--no-progress", "--request-interval", "0"),
    ]
    processes = [
        subprocess.Popen(
            [*record, "--gate", "e2e-gate", "--gate-db", any_db_url],
            cwd=project,
            env=_ci_environment(run, fake_github),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for run in current
    ] + [
        subprocess.Popen(
            collect,
            cwd=tmp_path,
            env=_ci_environment(current[0], fake_github),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(COLLECTORS)
    ]
    outputs = [process.communicate(timeout=TIMEOUT_S)[0] for process in processes]

    status = subprocess.run(
        [
            *(sys.executable, "-m", "gate_tracker", "--db", any_db_url),
            *("status", "--gate", "e2e-gate", "--repo", "acme/shop", "--json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "GT101" not in output
    assert _table_counts(any_db_url)["gate_runs"] == OLDER_RUNS + SESSIONS
    with Store(any_db_url) as store:
        runs = {run.ci_run_id: run for run in store.runs("e2e-gate")}
    assert len(runs) == OLDER_RUNS + SESSIONS
    for run in current:
        stored = runs[str(run.id)]
        assert (stored.sessions, stored.counts["passed"], stored.verdict) == (
            1,
            2,
            "pass",
        )
        assert stored.ci_conclusion in (None, "success")
    summary = json.loads(status.stdout)
    assert summary["streak"] == SESSIONS + BROKEN_OLDER_RUN
    assert (summary["met"], status.returncode) == (True, 0)
