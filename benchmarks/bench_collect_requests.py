"""How many requests ``collect github`` makes, against the bounds it promises.

Serves a history of N runs (one gate job each, one gate-record artifact each)
from the fake GitHub of the test suite, collects it into a fresh SQLite
database, then collects again twice with nothing new, and prints the requests
each sync made by kind, beside the bounds:

- a first sync of N runs: at most ceil(N/100) listing requests, plus one jobs
  request per attempt, plus the artifact requests (one listing per run, one
  download per artifact, and the download from blob storage);
- a repeated sync with nothing new, when the 30-day revisit window holds
  under 100 runs: at most 2 requests.

    python benchmarks/bench_collect_requests.py [--runs 250 --runs 1500]

The history spreads each N over 500 days (8 hours apart for 1,500 runs), so
the revisit window holds under 100 runs, and is collected from its start.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_github import FakeGitHub

from gate_tracker.collection import CollectOptions, Collector
from gate_tracker.github_client import ClientLimits, GitHubClient
from gate_tracker.records import CIContext, SessionRecord, session_to_dict
from gate_tracker.storage import Store

HISTORY_DAYS = 500
LISTING = r"/actions/(workflows/[^/]+/)?runs$"


@dataclass
class Sync:
    name: str
    listing: int
    jobs: int
    artifact_listings: int
    downloads: int
    blob: int
    not_modified: int
    seconds: float
    bound: str
    within: bool

    @property
    def requests(self) -> int:
        return self.listing + self.jobs + self.artifact_listings + self.downloads


def build_history(fake: FakeGitHub, count: int) -> datetime:
    repository = fake.repositories["acme/shop"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    spacing = timedelta(days=HISTORY_DAYS) / count
    oldest = now
    for index in range(count):
        created = now - timedelta(hours=1) - index * spacing
        run = fake.add_run(repository, created)
        record = record_of(run.id, run.latest.started_at)
        fake.add_artifact(run, f"gate-record-{run.id}-1", {"record.json": record})
        oldest = created
    return oldest


def record_of(run_id: int, started: datetime) -> bytes:
    session = SessionRecord(
        gate="e2e-gate",
        record_id=f"bench-{run_id}",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        verdict="pass",
        event="push",
        branch="main",
        ci=CIContext(
            provider="github-actions",
            repository="acme/shop",
            run_id=str(run_id),
            run_attempt=1,
            event="push",
        ),
    )
    return json.dumps(session_to_dict(session)).encode()


def sync(fake: FakeGitHub, store: Store, options: CollectOptions, name: str) -> Sync:
    fake.reset_log()
    limits = ClientLimits(seconds_between_requests=0)
    started = time.perf_counter()
    with GitHubClient(
        "acme/shop", fake.token, base_url=fake.base_url, limits=limits
    ) as client:
        Collector(store, client, options).collect()
    seconds = time.perf_counter() - started
    return Sync(
        name=name,
        listing=fake.count(LISTING),
        jobs=fake.count("/jobs$"),
        artifact_listings=fake.count(r"/runs/\d+/artifacts$"),
        downloads=fake.count("/zip$"),
        blob=len(fake.blob.requests),
        not_modified=fake.count("", status=304),
        seconds=seconds,
        bound="",
        within=True,
    )


def measure(count: int) -> list[Sync]:
    fake = FakeGitHub()
    fake.add_repository("acme/shop")
    try:
        oldest = build_history(fake, count)
        options = CollectOptions(
            repository="acme/shop",
            job="e2e-gate",
            gate="e2e-gate",
            workflow="e2e.yml",
            since=oldest - timedelta(days=1),
        )
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{Path(directory) / 'gate.db'}"
            with Store(url) as store:
                first = sync(fake, store, options, f"first sync, {count:,} runs")
                second = sync(fake, store, options, "repeated sync, nothing new")
                third = sync(fake, store, options, "and once more")
    finally:
        fake.close()

    listing_bound = math.ceil(count / 100)
    first.bound = f"listing <= {listing_bound}, jobs <= {count}"
    first.within = first.listing <= listing_bound and first.jobs <= count
    for repeated in (second, third):
        repeated.bound = "<= 2 requests"
        repeated.within = repeated.requests <= 2
    return [first, second, third]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, action="append", help="history sizes (repeatable)"
    )
    sizes = parser.parse_args().runs or [250, 1500]

    header = (
        f"{'sync':<28} {'requests':>8} {'listing':>7} {'jobs':>6} "
        f"{'art.list':>8} {'download':>8} {'blob':>6} {'304':>4} {'seconds':>8}  bound"
    )
    print(header)
    failed = False
    for count in sizes:
        for result in measure(count):
            mark = "ok" if result.within else "EXCEEDED"
            print(
                f"{result.name:<28} {result.requests:>8} {result.listing:>7} "
                f"{result.jobs:>6} {result.artifact_listings:>8} "
                f"{result.downloads:>8} {result.blob:>6} {result.not_modified:>4} "
                f"{result.seconds:>8.2f}  {result.bound} ({mark})"
            )
            failed = failed or not result.within
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
