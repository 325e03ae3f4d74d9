"""Tests for gate_tracker.sync_state: the covered span and what it remembers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gate_tracker.storage import Store
from gate_tracker.sync_state import (
    SyncKey,
    SyncState,
    forget_state,
    load_state,
    save_state,
)

T = datetime(2026, 11, 1, tzinfo=timezone.utc)
KEY = SyncKey("github-actions", "e2e-gate", "acme/shop", "k" * 32, '{"job": "e2e"}')


def day(n: float) -> datetime:
    return T + timedelta(days=n)


def test_a_state_is_stored_and_read_back_whole(any_db_url: str) -> None:
    state = SyncState(
        wanted_from=day(-90),
        covered_from=day(-90),
        covered_to=day(0),
        workflow_id="123",
        gate_workflows={7, 9},
        etags={"/runs?page=1": {"etag": 'W/"a"', "next": None, "count": 3}},
        ignored={"55": {"created": day(-1).isoformat(), "attempts": [1, 2]}},
        pending={"66": day(-0.5).isoformat()},
    )

    with Store(any_db_url) as store:
        with store.writing() as conn:
            save_state(conn, KEY, state, day(0))
        with store.reading() as conn:
            loaded = load_state(conn, KEY)
            other = load_state(
                conn, SyncKey("github-actions", "smoke", "acme/shop", "x", "")
            )

    assert loaded == state
    assert other == SyncState()


def test_spans_claimed_by_two_collectors_are_joined_when_they_meet(
    store: Store,
) -> None:
    with store.writing() as conn:
        save_state(conn, KEY, SyncState(covered_from=day(-10), covered_to=day(-2)), T)
        save_state(conn, KEY, SyncState(covered_from=day(-3), covered_to=day(0)), T)
    with store.reading() as conn:
        joined = load_state(conn, KEY)

    assert (joined.covered_from, joined.covered_to) == (day(-10), day(0))


def test_a_span_apart_from_the_stored_one_replaces_it(store: Store) -> None:
    with store.writing() as conn:
        save_state(conn, KEY, SyncState(covered_from=day(-10), covered_to=day(-8)), T)
        save_state(conn, KEY, SyncState(covered_from=day(-3), covered_to=day(0)), T)
    with store.reading() as conn:
        latest = load_state(conn, KEY)

    assert (latest.covered_from, latest.covered_to) == (day(-3), day(0))


def test_a_forgotten_state_starts_afresh(store: Store) -> None:
    with store.writing() as conn:
        save_state(conn, KEY, SyncState(covered_from=day(-1), covered_to=day(0)), T)
        forget_state(conn, KEY)
    with store.reading() as conn:
        assert load_state(conn, KEY) == SyncState()


def test_claims_grow_the_covered_span_downwards_and_upwards() -> None:
    state = SyncState()

    state.claim_down_to(day(-5), horizon=day(0))
    state.claim_down_to(day(-9), horizon=day(1))
    state.claim_down_to(day(-7), horizon=day(1))
    down = (state.covered_from, state.covered_to)
    state.claim_up_to(day(-6), horizon=day(3))

    assert down == (day(-9), day(0))
    assert (state.covered_from, state.covered_to) == (day(-9), day(3))


def test_only_covered_ignored_runs_older_than_the_floor_are_forgotten() -> None:
    state = SyncState(covered_from=day(-30), covered_to=day(0))
    state.ignored = {
        str(n): {"created": day(offset).isoformat(), "attempts": [1]}
        for n, offset in enumerate([-40, -20, -5, 0])
    }

    state.forget_ignored_before(day(-10))

    assert sorted(state.ignored) == ["0", "2", "3"]
