"""Recording into PostgreSQL beside SQLite: CPU time against bare pytest.

Runs a generated suite of trivial tests (5,000 by default) with no recording,
recording into a SQLite file and recording into a fresh PostgreSQL database,
alternated run by run so drift hits them all alike, and prints the median
CPU time of the pytest process (and its xdist workers) with its ratio to bare
pytest, per round as ``bench_recording.py`` describes. The server's own CPU
is not counted: the figure is what recording costs the CI runner. The target
is a PostgreSQL ratio of at most 1.08; the exit status is 1 when it is missed.

    python benchmarks/bench_postgresql.py [--tests 5000] [--repeats 15]
        [--server URL] [--modes serial,xdist] [--python PATH]

``--server`` is a PostgreSQL URL the benchmark may create a database from
(default: $GATE_TRACKER_TEST_PG, then postgresql+psycopg://postgres@127.0.0.1/test).
The runs use a virtual environment made for the benchmark, as
``bench_recording.py`` describes; ``--python`` runs an existing one instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_recording import (
    Variant,
    add_common_options,
    measure,
    prepare,
    ratio,
    report,
)

TARGET_RATIO = 1.08
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on ``server``, dropped afterwards."""
    name = f"gt_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.engine.make_url(server).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def variants(work: Path, postgresql: str) -> list[Variant]:
    gate = f"bench-{uuid.uuid4().hex[:8]}"
    return [
        Variant("bare", []),
        Variant(
            "sqlite",
            ["--gate", gate, "--gate-db", f"sqlite:///{work / 'gate.db'}"],
        ),
        Variant("postgresql", ["--gate", gate, "--gate-db", postgresql]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--server", default=os.environ.get("GATE_TRACKER_TEST_PG", DEFAULT_SERVER)
    )
    parser.add_argument("--modes", default="serial", help="serial, xdist or both")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gate-tracker-bench-pg-"))
    missed = []
    try:
        python, suite = prepare(work, options.python, options.tests, "postgresql")
        print(
            f"{options.tests} trivial tests, {options.repeats} runs per variant, "
            f"alternated; target: postgresql ratio <= {TARGET_RATIO}"
        )
        with fresh_database(options.server) as postgresql:
            for mode in options.modes.split(","):
                extra = ["-n", "2"] if mode == "xdist" else []
                measured = variants(work, postgresql)
                measure(python, suite, work, measured, extra, options.repeats)
                report(f"{mode} ({' '.join(extra)})", measured)
                postgresql_ratio = ratio(measured, "postgresql")
                print(
                    f"postgresql ratio {postgresql_ratio:.3f}: "
                    + _verdict(postgresql_ratio)
                )
                if postgresql_ratio > TARGET_RATIO:
                    missed.append(mode)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


def _verdict(ratio: float) -> str:
    return "target met" if ratio <= TARGET_RATIO else "TARGET MISSED"


if __name__ == "__main__":
    raise SystemExit(main())
