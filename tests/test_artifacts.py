"""Tests for gate_tracker.artifacts: artifact names, archives, gate records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import build_session
from fake_github import zip_of

from gate_tracker.artifacts import (
    AttemptSpan,
    attempt_by_time,
    attempt_of_name,
    fit_record,
    read_archive,
    wanted,
)
from gate_tracker.exceptions import InputError
from gate_tracker.records import CIContext, session_to_dict

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
JUNIT = (
    b'<testsuite name="e2e" tests="1"><testcase classname="t" name="a"/></testsuite>'
)


def ci(attempt: int = 1, run_id: str = "123") -> CIContext:
    return CIContext(
        provider="github-actions",
        repository="acme/shop",
        workflow="E2E gate",
        job="e2e-gate",
        run_id=run_id,
        run_attempt=attempt,
        event="push",
        url=f"https://github.com/acme/shop/actions/runs/{run_id}/attempts/{attempt}",
    )


@pytest.mark.parametrize(
    ("name", "attempt", "shard"),
    [
        ("gate-record-123-2", 2, ""),
        ("gate-record-123-1-1of4", 1, "1of4"),
        ("e2e-junit-123-3-shard-2", 3, "shard-2"),
        ("junit_123_1", 1, ""),
        ("gate-record", None, ""),
        ("gate-record-999-1", None, ""),
        ("gate-record-1234-1", None, ""),
    ],
)
def test_the_attempt_and_shard_an_artifact_name_gives(
    name: str, attempt: int | None, shard: str
) -> None:
    assert attempt_of_name(name, 123) == (attempt, shard)


def test_artifact_name_patterns() -> None:
    patterns = ("gate-record*", "*junit*")

    assert wanted("gate-record-1-1", patterns)
    assert wanted("e2e-junit-xml", patterns)
    assert not wanted("coverage-report", patterns)
    assert not wanted("Gate-Record-1-1", patterns)


def test_an_artifact_is_placed_in_the_one_attempt_running_when_it_was_made() -> None:
    spans = [
        AttemptSpan(1, START, START + timedelta(minutes=20)),
        AttemptSpan(
            2, START + timedelta(hours=3), START + timedelta(hours=3, minutes=20)
        ),
    ]

    assert attempt_by_time(START + timedelta(minutes=19), spans) == 1
    assert attempt_by_time(START + timedelta(hours=3, minutes=24), spans) == 2
    assert attempt_by_time(START + timedelta(hours=1), spans) is None
    assert attempt_by_time(None, spans) is None


def test_an_artifact_time_that_fits_two_attempts_places_it_nowhere() -> None:
    spans = [
        AttemptSpan(1, START, START + timedelta(minutes=20)),
        AttemptSpan(2, START + timedelta(minutes=21), START + timedelta(minutes=40)),
    ]

    assert attempt_by_time(START + timedelta(minutes=20, seconds=30), spans) is None


def test_an_archive_gives_its_records_and_junit_documents_and_skips_the_rest() -> None:
    session = build_session(run_id="123")
    data = zip_of(
        {
            "record.json": json.dumps(session_to_dict(session)).encode(),
            "reports/junit.xml": JUNIT,
            "screenshots/failure.png": b"\x89PNG",
        }
    )

    content = read_archive(data, "artifact 'gate-record-123-1'", limit=10**6)

    assert [r.record_id for r in content.records] == [session.record_id]
    assert content.junit == [("artifact 'gate-record-123-1'/reports/junit.xml", JUNIT)]
    assert content.problems == []


def test_a_broken_record_is_reported_with_its_member_and_the_rest_still_read() -> None:
    data = zip_of({"bad.json": b'{"format": ', "junit.xml": JUNIT})

    content = read_archive(data, "artifact 'x'", limit=10**6)

    assert content.records == []
    assert len(content.junit) == 1
    assert len(content.problems) == 1
    assert content.problems[0].startswith("artifact 'x'/bad.json: line 1")


def test_a_member_over_the_limit_is_not_read() -> None:
    data = zip_of({"big.xml": b"<a/>" * 100})

    content = read_archive(data, "artifact 'x'", limit=50)

    assert content.junit == []
    assert content.problems == ["artifact 'x'/big.xml: larger than 50 bytes, not read"]


def test_a_file_that_is_not_a_zip_archive_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"^artifact 'x': not a zip archive"):
        read_archive(b"<html>blob storage error</html>", "artifact 'x'", limit=10**6)


def test_a_record_without_ci_context_takes_the_attempts() -> None:
    record = build_session(event="local")

    fitted = fit_record(record, gate="e2e-gate", ci=ci(attempt=2))

    assert not isinstance(fitted, str)
    assert fitted.ci == ci(attempt=2)
    assert fitted.run_key == "ci:github-actions:acme/shop:123:2"
    assert fitted.record_id == record.record_id


def test_a_record_of_the_same_attempt_keeps_its_own_context() -> None:
    record = build_session(run_id="123", attempt=1)

    fitted = fit_record(record, gate="e2e-gate", ci=ci(attempt=1))

    assert not isinstance(fitted, str)
    assert fitted.ci == record.ci
    assert fitted.run_key == record.run_key


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (build_session(gate="smoke", run_id="123"), "it records gate 'smoke', not"),
        (build_session(run_id="999"), "it records run 999, not 123"),
        (build_session(run_id="123", attempt=3), "it records attempt 3, not 1"),
        (
            build_session(run_id="123", repository="acme/other"),
            "it records repository acme/other, not acme/shop",
        ),
    ],
)
def test_a_record_of_another_gate_run_does_not_fit(record: object, reason: str) -> None:
    fitted = fit_record(record, gate="e2e-gate", ci=ci(attempt=1))  # type: ignore[arg-type]

    assert isinstance(fitted, str)
    assert fitted.startswith(reason)
