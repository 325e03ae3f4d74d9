"""The JSON record format: what reading a record accepts, refuses and fixes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import build_session

from gate_tracker.exceptions import InputError
from gate_tracker.record_file import parse_record, write_record
from gate_tracker.records import TestRecord, session_to_dict


def document(**changes: Any) -> dict[str, Any]:
    session = build_session(
        0,
        tests=[
            TestRecord("t.py::ok", "passed", ["passed"], 0.1),
            TestRecord("t.py::bad", "failed", ["failed"], 0.2, message="boom"),
        ],
        verdict="fail",
    )
    body = session_to_dict(session)
    body["session"].update(changes)
    return body


def parsed(body: dict[str, Any]) -> Any:
    return parse_record(json.dumps(body), "record.json")


def test_a_written_record_reads_back_equal(tmp_path: Any) -> None:
    session = build_session(
        3, tests=[TestRecord("t.py::a", "passed", ["failed", "passed"])]
    )
    session.verdict = "flaky-pass"

    write_record(session, tmp_path / "r.json")
    again = parse_record((tmp_path / "r.json").read_bytes(), "r.json")

    assert again == session


def test_a_claimed_pass_with_a_failing_test_is_a_failure() -> None:
    session = parsed(document(verdict="pass", reason="all good"))

    assert (session.verdict, session.reason) == ("fail", "1 test failed: t.py::bad")


def test_a_claimed_pass_with_reruns_is_a_flaky_pass() -> None:
    body = document(verdict="pass")
    body["session"]["tests"] = [
        {"test_id": "t.py::a", "outcome": "passed", "attempts": ["failed", "passed"]}
    ]

    assert parsed(body).verdict == "flaky-pass"


def test_a_claimed_pass_missing_collected_tests_is_incomplete() -> None:
    body = document(verdict="pass", collected=5)
    body["session"]["tests"] = [{"test_id": "t.py::a", "outcome": "passed"}]

    session = parsed(body)

    assert (session.verdict, session.reason) == (
        "incomplete",
        "4 collected tests never reported",
    )


def test_a_worse_recorded_verdict_stands() -> None:
    body = document(verdict="cancelled", reason="interrupted")
    body["session"]["tests"] = [{"test_id": "t.py::a", "outcome": "passed"}]

    assert parsed(body).verdict == "cancelled"


def test_secrets_in_a_record_are_redacted() -> None:
    token = "ghp_" + "c" * 36
    body = document(reason=f"failed with {token}", args=["--token", "hunter2"])
    body["session"]["tests"][1]["message"] = (
        "connect postgresql://u:hunter2@db/x failed"
    )

    text = repr(parsed(body))

    assert token not in text and "hunter2" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"finished_at": "2026-11-02T08:00:00+00:00"},
            "field session.finished_at: is before session.started_at",
        ),
        ({"collected": -5}, "field session.collected: -5 is negative"),
        ({"shard": "s" * 101}, "field session.shard: longer than 100 characters"),
        (
            {
                "started_at": "2099-01-01T00:00:00+00:00",
                "finished_at": "2099-01-01T00:01:00+00:00",
            },
            "is in the future",
        ),
        (
            {"exit_status": 2**40},
            "field session.exit_status: 1099511627776 is out of range",
        ),
        ({"gate": "bad\udc80"}, "field session.gate: not valid Unicode text"),
    ],
)
def test_inconsistent_records_are_refused_by_field(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=r"^record\.json: ") as raised:
        parse_record(json.dumps(document(**changes)), "record.json")

    assert message in str(raised.value)


def test_a_test_id_twice_is_refused() -> None:
    body = document()
    body["session"]["tests"].append(dict(body["session"]["tests"][0]))

    with pytest.raises(
        InputError, match=r"session.tests\[2\].test_id: 't.py::ok' appears twice"
    ):
        parsed(body)


def test_offsets_are_read_as_utc() -> None:
    session = parsed(
        document(
            started_at="2026-11-02T11:00:00+02:00",
            finished_at="2026-11-02T11:05:00+02:00",
        )
    )

    assert session.started_at.utcoffset() == timedelta(0)
    assert session.started_at.hour == 9
