"""Benchmark: ``flaky`` against a plain SQL aggregate, ``status`` at 10k vs 1M results.

Run with ``python benchmarks/bench_analysis.py [--repeat 7] [--rebuild]``. It
builds three SQLite databases once and caches them under the temporary
directory, and times in one process, pairs alternated:

- ``gate-tracker flaky --json`` over every run of 1,000 runs of 1,000 tests
  (1,000,000 test results), against one plain aggregate over the same rows
  (``SELECT test_id, outcome, count(*) FROM test_results GROUP BY ...``);
- ``gate-tracker status --json`` on one suite of 200 tests with a history of
  50 runs (10,000 results) and of 5,000 runs (1,000,000 results): the history
  grows a hundredfold, what status needs (the newest runs) does not.

It prints the medians and the ratios, and exits 1 when ``flaky`` takes more
than 3 times the aggregate or ``status`` on 1M more than 1.2 times on 10k.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from analysis_data import Shape, build_database
from click.testing import CliRunner

from gate_tracker.cli import main

DATA_VERSION = 2
"""Bump when the generated history changes, so cached databases are rebuilt."""

FLAKY_DATA = Shape(runs=1000, tests=1000)
STATUS_SMALL = Shape(runs=50, tests=200)
STATUS_BIG = Shape(runs=5000, tests=200)
END = datetime(2026, 12, 1, tzinfo=timezone.utc)
FLAKY_LIMIT = 3.0
STATUS_LIMIT = 1.2
AGGREGATE = (
    "SELECT test_id, outcome, count(*) FROM test_results GROUP BY test_id, outcome"
)


def cached_database(shape: Shape, *, rebuild: bool) -> Path:
    """The database of ``shape``, built on first use (or when asked)."""
    folder = Path(tempfile.gettempdir()) / "gate-tracker-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"analysis-v{DATA_VERSION}-{shape.runs}x{shape.tests}.db"
    if rebuild or not path.exists():
        started = time.perf_counter()
        build_database(path, shape, END)
        print(
            f"built {path} ({shape.results:,} results) in "
            f"{time.perf_counter() - started:.1f} s"
        )
    return path


def cli(*args: str) -> Callable[[], None]:
    """A call of ``gate-tracker`` in this process, its output discarded."""
    runner = CliRunner()

    def call() -> None:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if result.exit_code not in (0, 1):
            raise RuntimeError(f"gate-tracker {' '.join(args)}: {result.output}")

    return call


def aggregate(path: Path) -> Callable[[], None]:
    """One plain aggregate over every test result, rows fetched."""

    def call() -> None:
        connection = sqlite3.connect(path)
        try:
            connection.execute(AGGREGATE).fetchall()
        finally:
            connection.close()

    return call


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def alternate(
    first: Callable[[], None], second: Callable[[], None], repeat: int
) -> tuple[float, float]:
    """Medians of ``first`` and ``second``, run in turns after one warm-up each."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        times[0].append(timed(first))
        times[1].append(timed(second))
    return statistics.median(times[0]), statistics.median(times[1])


def main_benchmark(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed pairs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the data")
    options = parser.parse_args(argv)

    big = cached_database(FLAKY_DATA, rebuild=options.rebuild)
    short = cached_database(STATUS_SMALL, rebuild=options.rebuild)
    long = cached_database(STATUS_BIG, rebuild=options.rebuild)

    # Run away from any pyproject.toml, and cover every run of the big history.
    os.chdir(tempfile.mkdtemp(prefix="gate-tracker-bench-"))
    days = math.ceil((datetime.now(timezone.utc) - END).days + 60)
    flaky = cli("--db", f"sqlite:///{big}", "flaky", "--json", "--window", f"{days}d")
    status_big = cli("--db", f"sqlite:///{long}", "status", "--json")
    status_small = cli("--db", f"sqlite:///{short}", "status", "--json")

    aggregate_s, flaky_s = alternate(aggregate(big), flaky, options.repeat)
    small_s, big_s = alternate(status_small, status_big, options.repeat)

    flaky_ratio = flaky_s / aggregate_s
    status_ratio = big_s / small_s
    print(f"median of {options.repeat}, pairs alternated, in one process")
    print(f"plain aggregate, 1M results : {aggregate_s * 1000:8.1f} ms")
    print(f"flaky --json, 1M results    : {flaky_s * 1000:8.1f} ms")
    print(f"  ratio {flaky_ratio:.2f} (limit {FLAKY_LIMIT})")
    print(f"status --json, 10k results  : {small_s * 1000:8.1f} ms (50 runs)")
    print(f"status --json, 1M results   : {big_s * 1000:8.1f} ms (5,000 runs)")
    print(f"  ratio {status_ratio:.2f} (limit {STATUS_LIMIT})")
    return 0 if flaky_ratio <= FLAKY_LIMIT and status_ratio <= STATUS_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main_benchmark())
