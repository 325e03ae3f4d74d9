"""What recording costs: bare pytest against --junitxml, --report-log and --gate.

Runs a generated suite of trivial tests (5,000 by default) serially and under
``-n 2``, alternating the variants run by run so drift hits them all alike,
and prints for each the median CPU time (the pytest process and its workers)
and peak memory of the controller, with ratios to bare pytest measured in
the same run.

    python benchmarks/bench_recording.py [--tests 5000] [--repeats 9] [--db URL]

``--db`` records into another database (a PostgreSQL URL, say) instead of a
fresh SQLite file per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

TESTS_PER_FILE = 100

# Runs pytest in this process and reports its own CPU time and peak memory,
# plus the CPU time of the xdist workers it waited for.
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    import pytest
    code = pytest.main(sys.argv[2:])
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(sys.argv[1], "w") as out:
        json.dump({"cpu": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
                   "maxrss_kib": own.ru_maxrss, "exit": int(code)}, out)
    """
)


@dataclass
class Variant:
    name: str
    args: list[str]
    cpu: list[float] = field(default_factory=list)
    memory_kib: list[int] = field(default_factory=list)


def make_suite(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, count, TESTS_PER_FILE):
        body = "".join(
            f"def test_{number}():\n    pass\n\n\n"
            for number in range(start, min(start + TESTS_PER_FILE, count))
        )
        (directory / f"test_{start // TESTS_PER_FILE:03d}.py").write_text(body)


def variants(work: Path, db: str | None) -> list[Variant]:
    record_db = db or f"sqlite:///{work / 'gate.db'}"
    return [
        Variant("bare", []),
        Variant("junitxml", ["--junitxml", str(work / "junit.xml")]),
        Variant("report-log", ["--report-log", str(work / "log.jsonl")]),
        Variant(
            "gate-tracker",
            ["--gate", f"bench-{uuid.uuid4().hex[:8]}", "--gate-db", record_db],
        ),
    ]


def run_once(suite: Path, work: Path, variant: Variant, extra: list[str]) -> None:
    result_file = work / "result.json"
    command = [
        sys.executable,
        "-c",
        _MEASURE,
        str(result_file),
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
        *variant.args,
    ]
    subprocess.run(
        command, cwd=suite, check=True, stdout=subprocess.DEVNULL, env=_environment()
    )
    result = json.loads(result_file.read_text())
    if result["exit"] != 0:
        raise SystemExit(f"{variant.name}: pytest exited {result['exit']}")
    variant.cpu.append(result["cpu"])
    variant.memory_kib.append(result["maxrss_kib"])


def _environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATE_TRACKER_", "GITHUB_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def report(title: str, measured: list[Variant]) -> None:
    bare = measured[0]
    bare_cpu = statistics.median(bare.cpu)
    bare_mem = statistics.median(bare.memory_kib)
    print(f"\n{title}")
    print(
        f"{'variant':<14}{'CPU s (median)':>16}{'ratio':>8}{'peak MiB':>10}{'+MiB':>8}"
    )
    for variant in measured:
        cpu = statistics.median(variant.cpu)
        memory = statistics.median(variant.memory_kib)
        print(
            f"{variant.name:<14}{cpu:>16.3f}{cpu / bare_cpu:>8.3f}"
            f"{memory / 1024:>10.1f}{(memory - bare_mem) / 1024:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--db", help="record into this database URL instead of SQLite")
    parser.add_argument("--modes", default="serial,xdist", help="serial, xdist or both")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gate-tracker-bench-"))
    try:
        suite = work / "suite"
        make_suite(suite, options.tests)
        print(
            f"{options.tests} trivial tests, {options.repeats} runs per variant, "
            "alternated"
        )
        for mode in options.modes.split(","):
            extra = ["-n", "2"] if mode == "xdist" else []
            measured = variants(work, options.db)
            for variant in measured:  # warm the file system cache and bytecode
                run_once(suite, work, variant, extra)
            for variant in measured:
                variant.cpu.clear()
                variant.memory_kib.clear()
            for _ in range(options.repeats):
                for variant in measured:
                    run_once(suite, work, variant, extra)
            report(f"{mode} ({' '.join(extra)})", measured)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
