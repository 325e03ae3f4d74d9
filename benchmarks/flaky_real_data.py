"""Real flakiness: record a project with real races 50 times, then check ``flaky``.

Run with ``python benchmarks/flaky_real_data.py [--runs 50] [--keep DIR]``; it
takes a few minutes. The project lives in a git repository on branch ``main``
and has tests that race a timer, a thread and a fixed port (the port only
collides when two xdist workers hold it at once), twenty stable tests, and one
test that a commit breaks for good at run 30. Every run is recorded by the
plugin in a subprocess, some with ``--reruns 1``, some with ``-n 2``.
``--published TESTS`` runs a published package's own tests the same way instead
(for example numpy's ``numpy/lib/tests/test_function_base.py``), from a folder
outside any git repository.

What really happened is read back from pytest's own summary lines and from the
stored attempts; the script prints both, then what ``gate-tracker flaky``
flagged, and exits 1 when the flags disagree with what happened:

- flaky: a test that failed and passed on the same commit (the code of the
  racing tests never changes), in a run (rerun) or across runs;
- broken: a test that passed on every run before some commit and failed on
  every run from it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

GATE = "demo"
BREAK_AT = 30
FAILING = {"failed", "error", "crashed"}

PROJECT = {
    "config.py": "DEFAULT_TIMEOUT_S = 30\n",
    "test_timer.py": '''"""A timer that must fire before a deadline just after it."""
import threading


def test_timer_fires_before_the_deadline():
    fired = threading.Event()
    timer = threading.Timer(0.005, fired.set)
    timer.start()
    try:
        assert fired.wait(0.0052), "timer did not fire within 5.2 ms"
    finally:
        timer.cancel()
''',
    "test_worker.py": '''"""A worker thread racing the main thread's sleep."""
import threading
import time


def test_worker_answers_in_time():
    answers = []

    def work():
        time.sleep(0.005)
        answers.append(42)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.00505)
    try:
        assert answers == [42], "worker had not answered after 5.05 ms"
    finally:
        worker.join()
''',
    "test_port_a.py": '''"""Holds a fixed port; another module wants it too."""
import socket
import time

PORT = 47653


def test_listener_a_gets_the_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", PORT))
        server.listen()
        time.sleep(0.3)
''',
    "test_port_b.py": '''"""The same fixed port as test_port_a: a clash under xdist."""
import socket
import time

PORT = 47653


def test_listener_b_gets_the_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", PORT))
        server.listen()
        time.sleep(0.3)
''',
    "test_config.py": '''"""A deterministic test of the configuration."""
import config


def test_default_timeout_is_generous():
    assert config.DEFAULT_TIMEOUT_S >= 10
''',
    "test_stable.py": '''"""Deterministic tests."""
import pytest


@pytest.mark.parametrize("n", range(20))
def test_square_is_not_negative(n):
    assert n * n >= 0
''',
}

_SUMMARY_WORDS = {
    "passed",
    "failed",
    "error",
    "errors",
    "rerun",
    "skipped",
    "xfailed",
    "xpassed",
}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GATE_TRACKER_")) and key != "CI"
    }
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def git(project: Path, *args: str) -> None:
    result = run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org", *args],
        project,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr}")


def make_project(project: Path) -> None:
    project.mkdir(parents=True)
    for name, text in PROJECT.items():
        (project / name).write_text(text, encoding="utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "demo project")


def break_config(project: Path) -> None:
    (project / "config.py").write_text("DEFAULT_TIMEOUT_S = 3\n", encoding="utf-8")
    git(project, "commit", "-q", "-am", "shorter default timeout")


def summary_counts(output: str) -> Counter[str]:
    """Counts from pytest's last line, such as ``1 failed, 23 passed, 1 rerun``."""
    lines = [line for line in output.splitlines() if line.strip()]
    counts: Counter[str] = Counter()
    for number, word in re.findall(r"(\d+) (\w+)", lines[-1] if lines else ""):
        if word in _SUMMARY_WORDS:
            counts["error" if word == "errors" else word] += int(number)
    return counts


def record_runs(
    project: Path, url: str, runs: int, *, suite: Path | None = None
) -> list[dict[str, Any]]:
    """Run the suite ``runs`` times with the plugin; pytest's view of each run.

    Without ``suite`` the demo project runs (and breaks at ``BREAK_AT``); with
    it, that published suite runs from ``project``.
    """
    seen = []
    for index in range(runs):
        if index == BREAK_AT and suite is None:
            break_config(project)
        options = ["--reruns", "1"] if index % 3 == 0 else []
        options += ["-n", "2"] if index % 2 == 0 else []
        options += [str(suite)] if suite is not None else []
        command = [sys.executable, "-m", "pytest", "--gate", GATE, "--gate-db", url]
        result = run([*command, "-p", "no:cacheprovider", "-q", *options], project)
        counts = summary_counts(result.stdout)
        seen.append({"index": index, "options": options, "pytest": counts})
        print(
            f"run {index:2d} {' '.join(options):18s} exit {result.returncode} "
            f"{dict(counts)}"
        )
    return seen


def stored(database: Path) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """Runs (oldest first) and each test's (commit, outcome, attempts) as stored."""
    connection = sqlite3.connect(database)
    connection.row_factory = sqlite3.Row
    try:
        runs = [
            dict(row)
            for row in connection.execute(
                "SELECT id, commit_sha, verdict, passed, failed, error, rerun"
                " FROM gate_runs WHERE gate = ? ORDER BY started_at, id",
                (GATE,),
            )
        ]
        results: dict[str, list[Any]] = defaultdict(list)
        for row in connection.execute(
            "SELECT t.test_id, r.commit_sha, t.outcome, t.attempts FROM test_results t"
            " JOIN gate_runs r ON r.id = t.run_id WHERE r.gate = ?"
            " ORDER BY r.started_at, r.id",
            (GATE,),
        ):
            results[row["test_id"]].append(
                (row["commit_sha"], row["outcome"], row["attempts"].split(","))
            )
    finally:
        connection.close()
    return runs, results


def what_happened(results: dict[str, list[Any]]) -> tuple[set[str], dict[str, str]]:
    """The truly flaky tests, and the broken ones with the commit they broke at."""
    flaky, broken = set(), {}
    for test_id, seen in results.items():
        outcomes_by_commit: dict[str, set[bool]] = defaultdict(set)
        for commit, outcome, attempts in seen:
            failed = [attempt in FAILING for attempt in attempts]
            outcomes_by_commit[commit].update(failed)
            if any(failed) and outcome == "passed":
                outcomes_by_commit[commit].add(False)
        if any(len(kinds) == 2 for kinds in outcomes_by_commit.values()):
            flaky.add(test_id)
            continue

        # Broken: from its first failure on, it failed every run (two or more).
        final = [outcome in ("failed", "error") for _, outcome, _ in seen]
        if True in final:
            start = final.index(True)
            if all(final[start:]) and len(final) - start >= 2:
                broken[test_id] = seen[start][0]
    return flaky, broken


def check_counts(seen: list[dict[str, Any]], runs: list[dict[str, Any]]) -> int:
    """Stored counts per run against pytest's summary; the number of mismatches."""
    mismatches = 0
    for view, run_row in zip(seen, runs, strict=True):
        counts = view["pytest"]
        # With --reruns 1 pytest's rerun count (attempts) equals tests rerun.
        for key in ("passed", "failed", "error", "rerun"):
            if counts.get(key, 0) != run_row[key]:
                mismatches += 1
                print(
                    f"run {view['index']}: pytest {key}={counts.get(key, 0)}, "
                    f"stored {run_row[key]}"
                )
    return mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    parser.add_argument(
        "--published",
        type=Path,
        metavar="TESTS",
        help="run this published package's tests instead of the demo project",
    )
    options = parser.parse_args(argv)

    work = options.keep or Path(tempfile.mkdtemp(prefix="gate-tracker-real-"))
    project = work / "project"
    database = work / "gate.db"
    url = f"sqlite:///{database}"
    if options.published:
        project.mkdir(parents=True)
    else:
        make_project(project)
    seen = record_runs(project, url, options.runs, suite=options.published)

    runs, results = stored(database)
    mismatches = check_counts(seen, runs)
    flaky_truth, broken_truth = what_happened(results)

    report = run(
        [
            sys.executable,
            "-m",
            "gate_tracker",
            "--db",
            url,
            "flaky",
            "--gate",
            GATE,
            "--branch",
            "*",
            "--event",
            "local",
            "--window",
            "1d",
            "--json",
        ],
        work,
    )
    document = json.loads(report.stdout)
    flagged = {f["test_id"]: f for f in document["flaky"]}
    broken = {f["test_id"]: f["broken_at"]["commit"] for f in document["broken"]}

    print(f"\n{len(runs)} runs stored; summary counts mismatched {mismatches} times")
    print(f"{'test':58s} {'fail att.':>9s} {'rerun ok':>8s} {'final F':>7s}  flag")
    for test_id in sorted(results):
        seen_results = results[test_id]
        failing = sum(any(a in FAILING for a in att) for _, _, att in seen_results)
        rescued = sum(
            o == "passed" and any(a in FAILING for a in att)
            for _, o, att in seen_results
        )
        final = sum(o in ("failed", "error") for _, o, _ in seen_results)
        flag = "-"
        if test_id in flagged:
            finding = flagged[test_id]
            flag = f"flaky ({finding['state']}) {finding['evidence']}"
        elif test_id in broken:
            flag = f"broken at {broken[test_id][:10]}"
        if failing or flag != "-":
            print(f"{test_id:58s} {failing:9d} {rescued:8d} {final:7d}  {flag}")

    agree = set(flagged) == flaky_truth and broken == broken_truth
    print(f"\ntruly flaky: {sorted(flaky_truth)}")
    print(f"truly broken: {broken_truth}")
    print("flags match what happened" if agree else "FLAGS DISAGREE")
    return 0 if agree and mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
