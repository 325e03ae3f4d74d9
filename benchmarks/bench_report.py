"""Benchmark: ``gate-tracker report`` against a plain SQL aggregate, 1M results.

Run with ``python benchmarks/bench_report.py [--repeat 7] [--rebuild]``. It uses
the database ``bench_analysis.py`` times ``flaky`` on (1,000 runs of 1,000
tests, 1,000,000 test results, cached under the temporary directory) and
times, in one process,
pairs alternated after a warm-up, the median of ``--repeat`` runs of:

- one plain aggregate over every test result (``bench_analysis.AGGREGATE``);
- ``gate-tracker report`` as the weekly job runs it: the last 7 days of the
  history against the 7 before, charts over 90 days, written to a folder;
- for information, ``report`` with a period covering the whole history, so
  its slowest-test query reads all 1,000,000 results.

Wall-clock and CPU medians are printed (on a busy machine the CPU figures are
the steadier ones). It exits 1 when the weekly report takes more than 3 times
the aggregate's wall-clock time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone

from analysis_data import Shape
from bench_analysis import END, aggregate, cached_database, cli

REPORT_LIMIT = 3.0
REPORT_DATA = Shape(runs=1000, tests=1000)
"""1,000,000 test results: the same database as the ``flaky`` benchmark."""

HISTORY_DAYS = 28
"""The history spans 1,000 runs 40 minutes apart: under 28 days."""


def alternate(
    first: Callable[[], None], second: Callable[[], None], repeat: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) medians of ``first`` and ``second``, run in turns."""
    first()
    second()
    samples: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for _ in range(repeat):
        for index, call in enumerate((first, second)):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            samples[index].append(
                (time.perf_counter() - wall, time.process_time() - cpu)
            )
    return _medians(samples[0]), _medians(samples[1])


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (
        statistics.median(wall for wall, _ in samples),
        statistics.median(cpu for _, cpu in samples),
    )


def _line(label: str, figures: tuple[float, float]) -> str:
    wall, cpu = figures
    return f"{label:34s}: wall {wall * 1000:8.1f} ms   CPU {cpu * 1000:8.1f} ms"


def main_benchmark(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed pairs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the data")
    options = parser.parse_args(argv)

    big = cached_database(REPORT_DATA, rebuild=options.rebuild)

    # Run away from any pyproject.toml. The history ended at END: the period
    # reaches back from now to the last 7 days of it.
    os.chdir(tempfile.mkdtemp(prefix="gate-tracker-bench-"))
    gap = max((datetime.now(timezone.utc) - END).days + 1, 0)
    whole = f"{gap + HISTORY_DAYS + 1}d"
    db = ("--db", f"sqlite:///{big}")
    weekly = cli(*db, "report", "--since", f"{gap + 7}d", "--out", "weekly")
    everything = cli(*db, "report", "--since", whole, "--trend", whole, "--out", "all")

    baseline, weekly_s = alternate(aggregate(big), weekly, options.repeat)
    baseline_again, whole_s = alternate(aggregate(big), everything, options.repeat)

    ratio = weekly_s[0] / baseline[0]
    print(f"median of {options.repeat}, pairs alternated, in one process")
    print(_line("plain aggregate, 1M results", baseline))
    print(_line("report, weekly", weekly_s))
    print(
        f"  ratio wall {ratio:.2f} (limit {REPORT_LIMIT}), "
        f"CPU {weekly_s[1] / baseline[1]:.2f}"
    )
    print(_line("plain aggregate, 1M results", baseline_again))
    print(_line("report, the whole history", whole_s))
    print(
        f"  ratio wall {whole_s[0] / baseline_again[0]:.2f}, "
        f"CPU {whole_s[1] / baseline_again[1]:.2f} (for information)"
    )
    return 0 if ratio <= REPORT_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main_benchmark())
