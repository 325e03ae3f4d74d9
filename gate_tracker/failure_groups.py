"""Failures that share a cause: tests failing in the same runs, and signatures.

Flaky tests often fail together (a shared network dependency, a slow service):
grouping the tests that fail in the same runs, and failures by their normalised
message, shows such a cause as one line instead of many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from gate_tracker.history import Observation, RunInfo

if TYPE_CHECKING:
    from gate_tracker.flakiness import TestFinding


@dataclass
class CoFailureGroup:
    """Tests that tend to fail in the same runs: likely one shared cause."""

    id: int
    tests: list[str]
    shared_runs: int
    """Runs in which at least two of the tests failed together."""

    jaccard: float
    """The lowest Jaccard index among the linked pairs of the group."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tests": list(self.tests),
            "shared_runs": self.shared_runs,
            "jaccard": round(self.jaccard, 6),
        }


@dataclass
class SignatureGroup:
    """Failures with one failure signature, over every test that had them."""

    signature: str
    tests: list[str]
    failures: int
    runs: int
    first_seen: datetime
    last_seen: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "tests": list(self.tests),
            "failures": self.failures,
            "runs": self.runs,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


def co_failure_groups(
    findings: Sequence[TestFinding],
    tests: dict[str, list[Observation]],
    *,
    threshold: float,
    min_runs: int,
) -> list[CoFailureGroup]:
    """Group ``findings`` whose tests fail in the same runs.

    Two tests are linked when the Jaccard index of their failing-run sets is
    at least ``threshold`` and they failed together in at least ``min_runs``
    runs; a group is a connected set of linked tests.
    Each finding in a group gets its ``group`` id; groups are numbered from 1
    in the order of their highest-ranked test.
    """
    if len(findings) < 2:
        return []

    matrix = _failing_matrix([finding.test_id for finding in findings], tests)
    similarity = 1.0 - squareform(pdist(matrix, metric="jaccard"))
    together = matrix.astype(int) @ matrix.T.astype(int)
    linked = (similarity >= threshold) & (together >= min_runs)
    np.fill_diagonal(linked, False)
    _, labels = connected_components(csr_matrix(linked), directed=False)

    groups: list[CoFailureGroup] = []
    for label in dict.fromkeys(labels):
        members = [int(index) for index in np.flatnonzero(labels == label)]
        if len(members) < 2:
            continue
        pairs = linked[np.ix_(members, members)]
        group = CoFailureGroup(
            id=len(groups) + 1,
            tests=[findings[index].test_id for index in members],
            shared_runs=int((matrix[members].sum(axis=0) >= 2).sum()),
            jaccard=float(similarity[np.ix_(members, members)][pairs].min()),
        )
        for index in members:
            findings[index].group = group.id
        groups.append(group)
    return groups


def _failing_matrix(
    test_ids: Sequence[str], tests: dict[str, list[Observation]]
) -> np.ndarray:
    failing = [
        {seen.run_id for seen in tests[test_id] if seen.failed_attempt}
        for test_id in test_ids
    ]
    columns = {run_id: index for index, run_id in enumerate(set().union(*failing))}
    matrix = np.zeros((len(test_ids), len(columns)), dtype=bool)
    for row, run_ids in enumerate(failing):
        matrix[row, [columns[run_id] for run_id in run_ids]] = True
    return matrix


def signature_groups(
    tests: dict[str, list[Observation]], runs: dict[int, RunInfo]
) -> list[SignatureGroup]:
    """Failures grouped by failure signature, the most widespread first."""
    grouped: dict[str, list[tuple[str, Observation]]] = {}
    for test_id, observations in tests.items():
        for seen in observations:
            if seen.signature and seen.failed_attempt:
                grouped.setdefault(seen.signature, []).append((test_id, seen))

    groups = []
    for signature, failures in grouped.items():
        moments = [runs[seen.run_id].started_at for _, seen in failures]
        groups.append(
            SignatureGroup(
                signature=signature,
                tests=sorted({test_id for test_id, _ in failures}),
                failures=len(failures),
                runs=len({seen.run_id for _, seen in failures}),
                first_seen=min(moments),
                last_seen=max(moments),
            )
        )
    groups.sort(key=lambda group: (-group.runs, -group.failures, group.signature))
    return groups
