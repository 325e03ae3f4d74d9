"""Synthetic gate histories for the analysis benchmark, bulk-inserted into SQLite.

A history is ``runs`` gate runs of ``tests`` tests each (so ``runs * tests``
test results): most tests always pass, a few are flaky (some recover on
rerun, some fail for good), a group of three fails together, and two break
for good near the end. Runs are 40 minutes apart and end at ``end``.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gate_tracker.storage import Store

GATE = "e2e-gate"
REPOSITORY = "acme/shop"
RUN_SPACING = timedelta(minutes=40)
FLAKY_TESTS = 15
GROUP_SIZE = 3
GROUP_FAILURE_RATE = 0.04
BROKEN_TESTS = 2
RERUN_ATTEMPT_RATE = 0.3


@dataclass(frozen=True)
class Shape:
    """How big a synthetic history is."""

    runs: int
    tests: int
    seed: int = 20261203

    @property
    def results(self) -> int:
        return self.runs * self.tests


def build_database(path: Path, shape: Shape, end: datetime) -> None:
    """Write a history of ``shape`` ending at ``end`` into a new SQLite file."""
    path.unlink(missing_ok=True)
    Store(f"sqlite:///{path}").close()

    rng = random.Random(shape.seed)
    test_ids = [
        f"tests/e2e/test_area{index // 50:02d}.py::test_case_{index:04d}"
        for index in range(shape.tests)
    ]
    flaky = {
        test_ids[index * 7 + 3]: rng.uniform(0.005, 0.05)
        for index in range(min(FLAKY_TESTS, shape.tests // 7))
    }
    group = test_ids[-GROUP_SIZE - BROKEN_TESTS : -BROKEN_TESTS]
    broken = test_ids[-BROKEN_TESTS:]
    broken_from = int(shape.runs * 0.9)

    connection = sqlite3.connect(path)
    try:
        with connection:
            _insert_runs(
                connection, shape, end, rng, test_ids, flaky, group, broken, broken_from
            )
    finally:
        connection.close()


def _insert_runs(
    connection: sqlite3.Connection,
    shape: Shape,
    end: datetime,
    rng: random.Random,
    test_ids: list[str],
    flaky: dict[str, float],
    group: list[str],
    broken: list[str],
    broken_from: int,
) -> None:
    start = end - RUN_SPACING * shape.runs
    result_id = 0
    row = 0
    trial = 0
    while row < shape.runs:
        commit = f"{trial:08x}" + "c" * 32
        attempt = 1
        while row < shape.runs:
            started = start + RUN_SPACING * row
            group_fails = rng.random() < GROUP_FAILURE_RATE
            results = []
            for test_id in test_ids:
                result_id += 1
                results.append(
                    _result(
                        rng,
                        result_id,
                        row + 1,
                        test_id,
                        flaky.get(test_id),
                        group_fails and test_id in group,
                        test_id in broken and row >= broken_from,
                    )
                )
            verdict = _verdict(results)
            _insert_run(
                connection, row + 1, trial, attempt, commit, started, verdict, results
            )
            row += 1
            if verdict == "pass" or rng.random() >= RERUN_ATTEMPT_RATE:
                break
            attempt += 1
        trial += 1


def _result(
    rng: random.Random,
    result_id: int,
    run_id: int,
    test_id: str,
    flaky_rate: float | None,
    group_fails: bool,
    is_broken: bool,
) -> tuple[object, ...]:
    outcome, attempts, message = "passed", "passed", None
    if is_broken:
        outcome, attempts = "failed", "failed,failed"
        message = "AssertionError: expected status 200, got 500"
    elif group_fails:
        outcome, attempts = "failed", "failed,failed"
        message = f"ConnectionError: payments sandbox at 10.0.0.{rng.randint(1, 9)}"
    elif flaky_rate is not None and rng.random() < flaky_rate:
        recovered = rng.random() < 0.5
        outcome = "passed" if recovered else "failed"
        attempts = "failed,passed" if recovered else "failed,failed"
        message = f"TimeoutError: page did not load in {rng.randint(10, 30)} s"
    reruns = attempts.count(",")
    signature = message and message.split(" ")[0] + " <n>"
    return (
        result_id,
        run_id,
        run_id,
        test_id,
        outcome,
        attempts,
        reruns,
        round(rng.uniform(0.1, 2.0), 3),
        "gw0",
        message,
        signature,
    )


def _verdict(results: list[tuple[object, ...]]) -> str:
    if any(result[4] == "failed" for result in results):
        return "fail"
    if any(result[6] for result in results):
        return "flaky-pass"
    return "pass"


def _insert_run(
    connection: sqlite3.Connection,
    run_id: int,
    trial: int,
    attempt: int,
    commit: str,
    started: datetime,
    verdict: str,
    results: list[tuple[object, ...]],
) -> None:
    finished = started + timedelta(minutes=12)
    counts = {
        "passed": sum(r[4] == "passed" for r in results),
        "failed": sum(r[4] == "failed" for r in results),
        "rerun": sum(bool(r[6]) for r in results),
    }
    ci_run_id = str(5_000_000 + trial)
    connection.execute(
        "INSERT INTO gate_runs (id, gate, repository, run_key, sources, event, branch,"
        " commit_sha, ci_provider, ci_run_id, attempt, workflow, job, started_at,"
        " finished_at, duration_s, exit_status, verdict, reason, has_test_data,"
        " sessions, passed, failed, error, skipped, xfailed, xpassed, rerun,"
        " recorded_at) VALUES (?, ?, ?, ?, 'plugin', 'push', 'main', ?,"
        " 'github-actions', ?, ?, 'e2e', 'e2e-gate', ?, ?, 720.0, ?, ?, '', 1, 1,"
        " ?, ?, 0, 0, 0, 0, ?, ?)",
        (
            run_id,
            GATE,
            REPOSITORY,
            f"ci:github-actions:{REPOSITORY}:{ci_run_id}:{attempt}",
            commit,
            ci_run_id,
            attempt,
            _stamp(started),
            _stamp(finished),
            0 if verdict != "fail" else 1,
            verdict,
            counts["passed"],
            counts["failed"],
            counts["rerun"],
            _stamp(finished),
        ),
    )
    connection.execute(
        "INSERT INTO gate_sessions (id, run_id, shard, record_id, source, started_at,"
        " finished_at, duration_s, exit_status, verdict, reason, xdist_workers, args,"
        " selection, passed, failed, error, skipped, xfailed, xpassed, rerun)"
        " VALUES (?, ?, '', ?, 'plugin', ?, ?, 720.0, ?, ?, '', 2, '[]', '{}',"
        " ?, ?, 0, 0, 0, 0, ?)",
        (
            run_id,
            run_id,
            f"bench-{run_id}",
            _stamp(started),
            _stamp(finished),
            0 if verdict != "fail" else 1,
            verdict,
            counts["passed"],
            counts["failed"],
            counts["rerun"],
        ),
    )
    connection.executemany(
        "INSERT INTO test_results (id, run_id, session_id, test_id, outcome,"
        " attempts, reruns, duration_s, worker, message, signature)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        results,
    )


def _stamp(moment: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type writes and reads back.
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
