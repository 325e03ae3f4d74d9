"""What recording costs: bare pytest against --junitxml, --report-log and --gate.

Runs a generated suite of trivial tests (5,000 by default) serially and under
``-n 2``, alternating the variants run by run (reversing the order each round)
so drift hits them all alike, and prints for each the median CPU time (the
pytest process and its workers) and peak memory of the controller, with its
ratio to bare pytest: the median over the rounds of the variant's CPU time
over bare pytest's in the same round. A round runs every variant once within
seconds, so a shared machine's changes of speed, which move whole medians by
several per cent, mostly cancel out in its ratios. The exit status is 1 when
recording misses its target: a CPU-time ratio of at most 1.06, and at most
25 MiB of peak memory above bare pytest.

    python benchmarks/bench_recording.py [--tests 5000] [--repeats 15]
        [--modes serial,xdist] [--db URL] [--python PATH]

The runs use a virtual environment made for the benchmark, holding only
pytest, pytest-xdist, pytest-reportlog and gate-tracker installed from this
checkout as a user installs it: "bare pytest" then loads no other plugin.
``--python`` runs an existing interpreter's environment instead. Bytecode is
not written, as in a fresh CI job, where pytest rewrites each plugin module
and test file again. ``--db`` records into another database (a PostgreSQL
URL, say) instead of one SQLite file; either is created by the warm-up round,
as a team's database exists before its gate runs.
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
CPU_TARGET = 1.06
MEMORY_TARGET_MIB = 25
CHECKOUT = Path(__file__).resolve().parents[1]
_PACKAGES = ["pytest-xdist>=3.8", "pytest-reportlog>=0.4"]

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


def environment(work: Path, python: str | None, *extras: str) -> str:
    """The interpreter to benchmark with: ``python``, or a fresh venv's."""
    if python:
        return python
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    interpreter = str(venv / "bin" / "python")
    wanted = f"{CHECKOUT}[{','.join(extras)}]" if extras else str(CHECKOUT)
    print("installing pytest, pytest-xdist, pytest-reportlog and gate-tracker ...")
    pip = [interpreter, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, wanted, *_PACKAGES], check=True)
    return interpreter


def prepare(
    work: Path, python: str | None, tests: int, *extras: str
) -> tuple[str, Path]:
    """The interpreter to benchmark and the generated suite; prints the versions."""
    interpreter = environment(work, python, *extras)
    suite = work / "suite"
    make_suite(suite, tests)
    print(versions(interpreter))
    return interpreter, suite


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--python", help="benchmark this interpreter's environment")


def versions(python: str) -> str:
    """The versions of what is measured, for the report."""
    script = (
        "import platform, importlib.metadata as m; print('Python', "
        "platform.python_version(), *(f'{d} {m.version(d)}' for d in "
        "('pytest', 'pytest-xdist', 'pytest-reportlog', 'gate-tracker')))"
    )
    found = subprocess.run([python, "-c", script], capture_output=True, text=True)
    return found.stdout.strip()


def run_once(
    python: str, suite: Path, work: Path, variant: Variant, extra: list[str]
) -> None:
    result_file = work / "result.json"
    command = [
        python,
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
        command, cwd=suite, check=True, stdout=subprocess.DEVNULL, env=measurement_env()
    )
    result = json.loads(result_file.read_text())
    if result["exit"] != 0:
        raise SystemExit(f"{variant.name}: pytest exited {result['exit']}")
    variant.cpu.append(result["cpu"])
    variant.memory_kib.append(result["maxrss_kib"])


def measurement_env() -> dict[str, str]:
    """The environment of every measured run: no bytecode written, one hash seed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATE_TRACKER_", "GITHUB_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # One string hashing for every run: randomised hashing alone moves a
    # run's CPU time by a few per cent.
    env["PYTHONHASHSEED"] = "0"
    return env


def measure(
    python: str,
    suite: Path,
    work: Path,
    measured: list[Variant],
    extra: list[str],
    repeats: int,
) -> None:
    """One warm-up round (caches, databases), then ``repeats`` measured ones."""
    for variant in measured:
        run_once(python, suite, work, variant, extra)
    for variant in measured:
        variant.cpu.clear()
        variant.memory_kib.clear()

    for round_number in range(repeats):
        order = measured if round_number % 2 == 0 else measured[::-1]
        for variant in order:
            run_once(python, suite, work, variant, extra)


def ratio(measured: list[Variant], name: str) -> float:
    """The median over the rounds of ``name``'s CPU time over bare pytest's."""
    chosen = next(v for v in measured if v.name == name)
    return _paired_ratio(chosen, measured[0])


def _paired_ratio(variant: Variant, bare: Variant) -> float:
    return statistics.median(
        mine / theirs for mine, theirs in zip(variant.cpu, bare.cpu, strict=True)
    )


def extra_memory_mib(measured: list[Variant], name: str) -> float:
    """The median peak memory of the variant ``name`` above bare pytest's."""
    bare = statistics.median(measured[0].memory_kib)
    chosen = next(v for v in measured if v.name == name)
    return (statistics.median(chosen.memory_kib) - bare) / 1024


def report(title: str, measured: list[Variant]) -> None:
    bare = measured[0]
    bare_mem = statistics.median(bare.memory_kib)
    print(f"\n{title}")
    print(
        f"{'variant':<14}{'CPU s (median)':>16}{'ratio':>8}{'peak MiB':>10}{'+MiB':>8}"
    )
    for variant in measured:
        cpu = statistics.median(variant.cpu)
        memory = statistics.median(variant.memory_kib)
        print(
            f"{variant.name:<14}{cpu:>16.3f}{_paired_ratio(variant, bare):>8.3f}"
            f"{memory / 1024:>10.1f}{(memory - bare_mem) / 1024:>8.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--db", help="record into this database URL instead of SQLite")
    parser.add_argument("--modes", default="serial,xdist", help="serial, xdist or both")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gate-tracker-bench-"))
    missed = []
    try:
        extras = ["postgresql"] if options.db else []
        python, suite = prepare(work, options.python, options.tests, *extras)
        print(
            f"{options.tests} trivial tests, {options.repeats} runs per variant, "
            f"alternated; targets: CPU ratio <= {CPU_TARGET}, "
            f"+{MEMORY_TARGET_MIB} MiB at most"
        )
        for mode in options.modes.split(","):
            extra = ["-n", "2"] if mode == "xdist" else []
            measured = variants(work, options.db)
            measure(python, suite, work, measured, extra, options.repeats)
            report(f"{mode} ({' '.join(extra)})", measured)
            cpu = ratio(measured, "gate-tracker")
            memory = extra_memory_mib(measured, "gate-tracker")
            met = cpu <= CPU_TARGET and memory <= MEMORY_TARGET_MIB
            print(f"gate-tracker: {'targets met' if met else 'TARGET MISSED'}")
            if not met:
                missed.append(mode)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
