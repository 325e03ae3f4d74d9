"""What recording costs in instructions: bare pytest against --gate, under callgrind.

CPU time on a shared machine moves by several per cent between identical
runs; the number of instructions a run executes does not. This runs the
suite of ``bench_recording.py`` once bare and once recording (serially, after
a warm-up run that creates the database), each under valgrind's callgrind,
both at once, and prints the instruction counts and their ratio. It needs
valgrind and takes a few minutes.

    python benchmarks/bench_instructions.py [--tests 5000] [--db URL] [--python PATH]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_recording import add_common_options, measurement_env, prepare

_TOTALS = re.compile(r"^totals: (\d+)$", re.MULTILINE)


def callgrind(python: str, suite: Path, out: Path, args: list[str]) -> subprocess.Popen:
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *args,
    ]
    return subprocess.Popen(
        command,
        cwd=suite,
        env=measurement_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def instructions(out: Path) -> int:
    found = _TOTALS.search(out.read_text())
    if found is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--db", help="record into this database URL instead of SQLite")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")

    work = Path(tempfile.mkdtemp(prefix="gate-tracker-bench-instr-"))
    try:
        extras = ["postgresql"] if options.db else []
        python, suite = prepare(work, options.python, options.tests, *extras)
        db = options.db or f"sqlite:///{work / 'gate.db'}"
        recording = ["--gate", f"bench-{uuid.uuid4().hex[:8]}", "--gate-db", db]
        subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *recording],
            cwd=suite,
            env=measurement_env(),
            stdout=subprocess.DEVNULL,
            check=True,
        )

        runs = {
            "bare": callgrind(python, suite, work / "bare.out", []),
            "gate-tracker": callgrind(python, suite, work / "gate.out", recording),
        }
        for name, process in runs.items():
            if process.wait() != 0:
                raise SystemExit(f"{name}: pytest under callgrind failed")
        bare = instructions(work / "bare.out")
        recorded = instructions(work / "gate.out")
        print(f"{options.tests} trivial tests, serial, instructions executed")
        print(f"bare          {bare:>16,}")
        print(f"gate-tracker  {recorded:>16,}  ratio {recorded / bare:.4f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
