"""Where a collector stands for one scope: what it has stored, and its memory.

The covered span says every run created inside it is stored (or known not
to be a gate run, or still in progress and listed in ``pending``). It only
ever grows past runs that are stored, and it is written in the transaction
of the runs that justify it, so an interrupted sync resumes where it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gate_tracker.schema import sync_state
from gate_tracker.storage import insert_ignore

_KEY_COLUMNS = ("provider", "gate", "repository", "scope_key")


@dataclass(frozen=True)
class SyncKey:
    """One sync scope: gate, repository, and the listing's filters."""

    provider: str
    gate: str
    repository: str
    scope_key: str
    scope: str


@dataclass
class SyncState:
    """A sync scope's state.

    ``ignored`` maps a run id to the attempts known to hold no counted gate
    job, ``pending`` a run id to the creation time of a run still in
    progress, ``etags`` a listing page to what its ETag stood for.
    """

    wanted_from: datetime | None = None
    covered_from: datetime | None = None
    covered_to: datetime | None = None
    workflow_id: str | None = None
    gate_workflows: set[int] = field(default_factory=set)
    etags: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignored: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)

    @property
    def covered(self) -> bool:
        return self.covered_from is not None and self.covered_to is not None

    def claim_down_to(self, moment: datetime, horizon: datetime) -> None:
        """Every run from ``moment`` up to the covered span (or ``horizon``,
        when nothing is covered yet) is stored."""
        if self.covered_to is None:
            self.covered_to = horizon
        if self.covered_from is None or moment < self.covered_from:
            self.covered_from = min(moment, self.covered_to)

    def claim_up_to(self, lo: datetime, horizon: datetime) -> None:
        """Every run from ``lo`` (inside the covered span) to ``horizon`` is
        stored."""
        self.covered_to = max(self.covered_to or horizon, horizon)
        self.covered_from = min(self.covered_from or lo, lo)

    def forget_ignored_before(self, floor: datetime) -> None:
        """Drop what no future listing needs: covered runs older than ``floor``."""
        low = self.covered_from
        if low is None:
            return
        kept = {}
        for run_id, memory in self.ignored.items():
            created = moment_of(memory.get("created"))
            if created is None or not low <= created < floor:
                kept[run_id] = memory
        self.ignored = kept


def load_state(conn: Connection, key: SyncKey) -> SyncState:
    """The stored state of ``key``, or a fresh one."""
    row = conn.execute(sa.select(sync_state).where(*_where(key))).first()
    if row is None:
        return SyncState()
    return SyncState(
        wanted_from=_aware(row.wanted_from),
        covered_from=_aware(row.covered_from),
        covered_to=_aware(row.covered_to),
        workflow_id=row.workflow_id,
        gate_workflows=set(json.loads(row.gate_workflows)),
        etags=json.loads(row.etags),
        ignored=json.loads(row.ignored),
        pending=json.loads(row.pending),
    )


def save_state(conn: Connection, key: SyncKey, state: SyncState, now: datetime) -> None:
    """Write ``state`` inside the caller's transaction.

    The covered span is joined with the stored one, so two collectors of the
    same scope at once do not undo each other's progress.
    """
    values = {name: getattr(key, name) for name in (*_KEY_COLUMNS, "scope")}
    insert_ignore(conn, sync_state, values, _KEY_COLUMNS)
    row = conn.execute(
        sa.select(sync_state).where(*_where(key)).with_for_update()
    ).one()

    covered = _union(
        (_aware(row.covered_from), _aware(row.covered_to)),
        (state.covered_from, state.covered_to),
    )
    conn.execute(
        sa.update(sync_state)
        .where(sync_state.c.id == row.id)
        .values(
            wanted_from=state.wanted_from,
            covered_from=covered[0],
            covered_to=covered[1],
            workflow_id=state.workflow_id,
            gate_workflows=json.dumps(sorted(state.gate_workflows)),
            etags=json.dumps(state.etags, sort_keys=True),
            ignored=json.dumps(state.ignored, sort_keys=True),
            pending=json.dumps(state.pending, sort_keys=True),
            synced_at=now,
        )
    )


def forget_state(conn: Connection, key: SyncKey) -> None:
    """Delete the state of ``key``: the next sync starts afresh."""
    conn.execute(sa.delete(sync_state).where(*_where(key)))


def moment_of(value: Any) -> datetime | None:
    """A UTC datetime from an ISO 8601 text, or None."""
    if not value:
        return None
    return _aware(datetime.fromisoformat(str(value)))


def _where(key: SyncKey) -> list[Any]:
    return [getattr(sync_state.c, name) == getattr(key, name) for name in _KEY_COLUMNS]


def _union(
    stored: tuple[datetime | None, datetime | None],
    claimed: tuple[datetime | None, datetime | None],
) -> tuple[datetime | None, datetime | None]:
    # The covered span must stay one span: disjoint spans are not joined,
    # and then the fresh claim wins.
    (a_from, a_to), (b_from, b_to) = stored, claimed
    if a_from is None or a_to is None:
        return claimed
    if b_from is None or b_to is None:
        return stored
    if a_from <= b_to and b_from <= a_to:
        return min(a_from, b_from), max(a_to, b_to)
    return claimed


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; everything stored is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)
