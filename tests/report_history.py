"""A generated year of gate runs, the same for the same seed, for report tests.

Two CI runs a day on ``main`` (one commit a day, so the runs of a day share
it), each with the tests below. What the history holds, so tests can check
the report against it:

- ``CARD`` is flaky all year: it fails now and then, mostly passing on rerun;
  its failure message carries a GitHub token that the report must redact;
- ``SEARCH`` fails for good now and then, with no rerun rescue;
- ``SSO`` and ``LOGOUT`` fail together (one shared cause, one message with a
  password inside a URL);
- ``CART`` was flaky until ``CART_FIXED_AT``, then never failed again;
- ``RENDER`` (an id full of Markdown and HTML) started flaking at
  ``RENDER_FROM``: new this week;
- ``REFUND`` fails every run since ``REFUND_BROKEN_AT``: broken, not flaky;
- ``FULL_ORDER`` slows down over the year; ``EXPORT`` is always skipped;
- about 1 % of runs are cancelled and 0.5 % time out; a failed run is re-run
  (attempt 2) two times out of five.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from conftest import build_session

from gate_tracker.records import SessionRecord, TestRecord
from gate_tracker.redaction import failure_signature
from gate_tracker.storage import Store
from gate_tracker.verdicts import Completeness, session_verdict

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=timezone.utc)
START = NOW - timedelta(days=365)
GATE = "e2e-gate"
REPOSITORY = "acme/shop"
SEED = 20261203

CARD = "tests/e2e/test_checkout.py::test_pay_with_card"
SEARCH = "tests/e2e/test_search.py::test_suggestions"
SSO = "tests/e2e/test_login.py::test_sso"
LOGOUT = "tests/e2e/test_login.py::test_logout"
CART = "tests/e2e/test_cart.py::test_add_many"
RENDER = "tests/e2e/test_ui.py::test_render[<b>bold</b>|*x*]"
REFUND = "tests/e2e/test_orders.py::test_refund"
FULL_ORDER = "tests/e2e/test_checkout.py::test_full_order"
EXPORT = "tests/e2e/test_reports.py::test_legacy_export"
STABLE = tuple(
    f"tests/e2e/test_{area}.py::test_{name}"
    for area, name in (
        ("account", "signup"),
        ("account", "profile"),
        ("account", "delete"),
        ("catalog", "browse"),
        ("catalog", "filter"),
        ("catalog", "product_page"),
        ("checkout", "address"),
        ("checkout", "shipping"),
        ("orders", "history"),
        ("orders", "invoice"),
        ("admin", "dashboard"),
        ("admin", "users"),
    )
)

PLANTED_TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
PLANTED_PASSWORD = "hunter2-s3cret"
CARD_MESSAGE = (
    "TimeoutError: payment gateway did not answer within 5.0 s "
    f"(port {{port}}, auth {PLANTED_TOKEN})"
)
SEARCH_MESSAGE = "AssertionError: expected 5 suggestions, got {got}"
LOGIN_MESSAGE = (
    "ConnectionError: auth service unreachable at "
    f"https://deploy:{PLANTED_PASSWORD}@auth.internal:8443/health"
)
CART_MESSAGE = "StaleElementReferenceException: cart badge re-rendered"
RENDER_MESSAGE = "AssertionError: <b>bold</b> | *x* rendered as `**x**`"
REFUND_MESSAGE = "AssertionError: refund total 0 != 42"

CART_FIXED_AT = NOW - timedelta(days=21)
RENDER_FROM = NOW - timedelta(days=5)
LOGIN_WAVE_FROM = NOW - timedelta(days=28)
REFUND_BROKEN_AT = NOW - timedelta(days=2, hours=12)


def year_of_sessions(seed: int = SEED) -> Iterator[SessionRecord]:
    """Every session of the year, oldest first (re-runs right after theirs)."""
    rng = random.Random(seed)
    index = 0
    for day in range(365):
        commit = f"{day:04x}{rng.getrandbits(64):016x}".ljust(40, "0")
        for hour in (9, 15):
            started = START + timedelta(
                days=day, hours=hour, minutes=rng.randint(0, 50)
            )
            if started >= NOW:
                return
            session = _session(rng, index, started, commit)
            yield session
            if session.verdict == "fail" and rng.random() < 0.4:
                yield _rerun(rng, session, index)
            index += 1


def record_year(store: Store, seed: int = SEED) -> int:
    """Record the year into ``store`` in one transaction; the sessions stored."""
    count = 0
    with store.writing() as conn:
        for session in year_of_sessions(seed):
            store.store_session(conn, session)
            count += 1
    return count


def _session(
    rng: random.Random, index: int, started: datetime, commit: str
) -> SessionRecord:
    tests = _tests(rng, started)
    verdict, reason = session_verdict(tests, Completeness())
    duration = 540 + 60 * (started - START).days / 365 + rng.gauss(0, 25)
    if rng.random() < 0.01:
        tests = tests[: len(tests) // 2]
        verdict, reason = "cancelled", "interrupted (SIGINT) before any failure"
    elif rng.random() < 0.005:
        tests = tests[: len(tests) // 3]
        verdict, reason = "timeout", "the job hit its time limit"
        duration = 1800.0
    session = build_session(
        index,
        gate=GATE,
        repository=REPOSITORY,
        verdict=verdict,
        tests=tests,
        commit=commit,
        run_id=str(70000 + index),
        started_at=started,
        duration_s=max(duration, 120.0),
    )
    session.reason = reason
    return session


def _rerun(rng: random.Random, first: SessionRecord, index: int) -> SessionRecord:
    # A re-run an hour later: a new attempt of the same CI run, on the same commit.
    tests = [
        TestRecord(
            t.test_id,
            t.outcome if t.outcome == "skipped" else "passed",
            [t.outcome if t.outcome == "skipped" else "passed"],
            t.duration_s,
        )
        for t in first.tests
    ]
    if (
        REFUND in {t.test_id for t in first.tests}
        and first.started_at >= REFUND_BROKEN_AT
    ):
        tests = [
            _failed(REFUND, REFUND_MESSAGE, 1.1, rescued=False)
            if t.test_id == REFUND
            else t
            for t in tests
        ]
    verdict, reason = session_verdict(tests, Completeness())
    session = build_session(
        index,
        gate=GATE,
        repository=REPOSITORY,
        verdict=verdict,
        tests=tests,
        commit=first.commit,
        run_id=first.ci.run_id if first.ci else None,
        attempt=2,
        started_at=first.started_at + timedelta(hours=1),
        duration_s=first.duration_s + rng.gauss(0, 10),
    )
    session.reason = reason
    return session


def _tests(rng: random.Random, started: datetime) -> list[TestRecord]:
    elapsed = (started - START).days / 365
    tests = [
        TestRecord(t, "passed", ["passed"], round(rng.uniform(2, 9), 3)) for t in STABLE
    ]
    tests.append(TestRecord(EXPORT, "skipped", ["skipped"], 0.0))
    tests.append(
        TestRecord(
            FULL_ORDER,
            "passed",
            ["passed"],
            round(30 + 15 * elapsed + rng.gauss(0, 1.5), 3),
        )
    )

    card = CARD_MESSAGE.format(port=rng.randint(40000, 60000))
    tests.append(_maybe_flaky(rng, CARD, 0.04, 0.7, card, 12.0))
    search = SEARCH_MESSAGE.format(got=rng.randint(0, 4))
    tests.append(_maybe_flaky(rng, SEARCH, 0.015, 0.0, search, 6.0))

    # The auth service had a bad month: the two login tests fail together.
    together = rng.random() < (0.08 if started >= LOGIN_WAVE_FROM else 0.01)
    for test_id in (SSO, LOGOUT):
        if together:
            tests.append(_failed(test_id, LOGIN_MESSAGE, 3.0, rescued=False))
        else:
            tests.append(TestRecord(test_id, "passed", ["passed"], 3.0))

    cart_rate = 0.1 if started < CART_FIXED_AT else 0.0
    tests.append(_maybe_flaky(rng, CART, cart_rate, 1.0, CART_MESSAGE, 4.0))
    if started >= RENDER_FROM:
        tests.append(_maybe_flaky(rng, RENDER, 0.35, 0.6, RENDER_MESSAGE, 1.5))
    else:
        tests.append(TestRecord(RENDER, "passed", ["passed"], 1.5))
    if started >= REFUND_BROKEN_AT:
        tests.append(_failed(REFUND, REFUND_MESSAGE, 1.1, rescued=False))
    else:
        tests.append(TestRecord(REFUND, "passed", ["passed"], 1.1))
    return tests


def _maybe_flaky(
    rng: random.Random,
    test_id: str,
    failure_rate: float,
    rescue_rate: float,
    message: str,
    duration: float,
) -> TestRecord:
    if rng.random() >= failure_rate:
        return TestRecord(test_id, "passed", ["passed"], duration)
    return _failed(test_id, message, duration, rescued=rng.random() < rescue_rate)


def _failed(
    test_id: str, message: str, duration: float, *, rescued: bool
) -> TestRecord:
    attempts = ["failed", "passed"] if rescued else ["failed", "failed"]
    return TestRecord(
        test_id,
        attempts[-1],
        attempts,
        duration * 2,
        message=message,
        signature=failure_signature(message),
    )
