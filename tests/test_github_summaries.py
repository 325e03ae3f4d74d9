"""Tests for gate_tracker.github_summaries: status and flaky in GitHub Actions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gate_tracker.cli import main
from gate_tracker.github_summaries import flaky_annotations, test_locations
from gate_tracker.records import SessionRecord, TestRecord
from gate_tracker.storage import Store
from tests.job_summaries import actions_env, cells, render

SessionFactory = Callable[..., SessionRecord]


# -- status: the command, its summary and its annotations ------------------------------


FLAKY_TEST = "tests/test_a.py::test_flaky"


@pytest.fixture
def streak_db(
    sqlite_url: str, make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Four CI runs on main, newest last: pass, flaky-pass, pass, pass."""
    flaky = [TestRecord(FLAKY_TEST, "passed", ["failed", "passed"])]
    with Store(sqlite_url) as store:
        store.record_session(make_session(0))
        store.record_session(make_session(1, verdict="flaky-pass", tests=flaky))
        store.record_session(make_session(2))
        store.record_session(make_session(3))
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GATE_TRACKER_DB"):
        monkeypatch.delenv(name, raising=False)
    return sqlite_url


def _status(db: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", db, "status", *args], env=env)


def test_status_in_github_actions_writes_the_summary_and_an_error(
    streak_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    result = _status(streak_db, "--gate", "e2e-gate", env=actions_env(summary))

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-2:] == [
        "::error title=e2e-gate%3A objective not met::2/20 consecutive clean passes"
        " - NOT MET; streak ended by run 1001 attempt 1 of 0000001000: passed only"
        " thanks to reruns (flaky-pass); strict policy",
        "::warning file=tests/test_a.py,title=flaky test tests/test_a.py%3A%3A"
        "test_flaky::passed only on rerun in run 1001 attempt 1 of 0000001000,"
        " ending the streak",
    ]
    html = render(summary.read_text(encoding="utf-8"))
    assert "<strong>❌ 2/20 consecutive clean passes - NOT MET</strong>" in html
    assert "CI streak: 4 consecutive green runs" in html
    assert "<li>rerun: <code>tests/test_a.py::test_flaky</code></li>" in html
    rows = cells(html)
    assert rows[0][0] == "when (UTC)"
    assert [row[4] for row in rows[1:]] == [
        "✅ pass",
        "✅ pass",
        "⚠️ flaky-pass",
        "✅ pass",
    ]
    assert rows[3][3] == (
        '<a href="https://github.com/acme/shop/actions/runs/1001">1001#1</a>'
    )
    assert rows[3][6] == "rerun: <code>tests/test_a.py::test_flaky</code>"


def test_status_met_gives_a_notice(streak_db: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"

    result = _status(streak_db, "--required", "2", env=actions_env(summary))

    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "::notice title=e2e-gate%3A objective met::2/2 consecutive clean passes - MET"
    )
    assert "**✅ 2/2 consecutive clean passes - MET**" in summary.read_text("utf-8")


def test_status_json_keeps_stdout_json_and_annotates_on_stderr(
    streak_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    result = _status(streak_db, "--json", env=actions_env(summary))

    assert result.exit_code == 1
    assert json.loads(result.stdout)["streak"] == 2
    assert result.stderr.startswith("::error title=e2e-gate%3A objective not met::")
    assert summary.is_file()


def test_status_no_github_summary_writes_nothing_in_github_actions(
    streak_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    result = _status(streak_db, "--no-github-summary", env=actions_env(summary))

    assert result.exit_code == 1
    assert not re.search(r"^::", result.stdout, re.M)
    assert not summary.exists()


def test_status_outside_github_actions_writes_nothing_unless_asked(
    streak_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    environ = {"GITHUB_STEP_SUMMARY": str(summary)}

    plain = _status(streak_db, env=environ)
    assert "::error" not in plain.stdout
    assert not summary.exists()

    asked = _status(streak_db, "--github-summary", env=environ)
    assert "::error title=e2e-gate%3A objective not met::" in asked.stdout
    assert "NOT MET" in summary.read_text(encoding="utf-8")


def test_status_summary_says_when_no_runs_are_in_scope(
    streak_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    result = _status(streak_db, "--branch", "release", env=actions_env(summary))

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "::error title=e2e-gate%3A objective not met::0/20 consecutive clean "
        "passes - NOT MET; no runs in scope"
    )
    text = summary.read_text(encoding="utf-8")
    assert "No runs in scope" in text
    assert "Scope: on release" in text


# -- flaky: the command, its summary and its annotations -------------------------------


RACE = "tests/test_cart.py::TestCart::test_race"
PAY = "tests/test_pay.py::test_pay"


@pytest.fixture
def flaky_db(
    sqlite_url: str, make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Eight runs: RACE passes on rerun in three, PAY fails for good from run 5."""
    with Store(sqlite_url) as store:
        for index in range(8):
            rerun = index in (1, 3, 5)
            broken = index >= 5
            race = TestRecord(
                RACE,
                "passed",
                ["failed", "passed"] if rerun else ["passed"],
                message="AssertionError: timer fired late" if rerun else None,
                file="tests/test_cart.py",
                line=41,
            )
            pay = TestRecord(
                PAY,
                "failed" if broken else "passed",
                ["failed"] if broken else ["passed"],
                message="AssertionError: 402" if broken else None,
            )
            verdict = "fail" if broken else "flaky-pass" if rerun else "pass"
            store.record_session(
                make_session(index, verdict=verdict, tests=[race, pay])
            )
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GATE_TRACKER_DB"):
        monkeypatch.delenv(name, raising=False)
    return sqlite_url


def _flaky(db: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--db", db, "flaky", "--window", "400d", *args], env=env
    )


def test_flaky_in_github_actions_warns_on_each_test_at_its_line(
    flaky_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    result = _flaky(flaky_db, env=actions_env(summary))

    assert result.exit_code == 0, result.output
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert annotations == [
        "::warning file=tests/test_cart.py,line=41,title=flaky test tests/test_cart.py"
        "%3A%3ATestCart%3A%3Atest_race::ongoing flaky test: rerun 3; failed 3 of 8"
        " runs (38%25); cost 3 runs",
        "::warning file=tests/test_pay.py,title=broken test tests/test_pay.py%3A%3A"
        "test_pay::broken: failing in every run since 0000005000 (3 runs)",
    ]


def test_flaky_summary_tables_the_flaky_and_the_broken_tests(
    flaky_db: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"

    _flaky(flaky_db, env=actions_env(summary))

    html = render(summary.read_text(encoding="utf-8"))
    assert "<h3>gate-tracker flaky tests: e2e-gate</h3>" in html
    assert "<strong>1 flaky, 1 broken</strong> over 400 days (8 runs, 5 of 8" in html
    assert cells(html) == [
        ["#", "test", "state", "evidence", "failure rate", "cost"],
        [
            "1",
            f"<code>{RACE}</code>",
            "ongoing",
            "rerun 3",
            "failed 3 of 8 runs (38%)",
            "3 runs",
        ],
        ["test", "broke at", "failing runs", "cost"],
        [f"<code>{PAY}</code>", "0000005000", "3", "3 runs"],
    ]


def test_flaky_json_keeps_stdout_json_and_warns_on_stderr(
    flaky_db: str, tmp_path: Path
) -> None:
    result = _flaky(flaky_db, "--json", env=actions_env(tmp_path / "summary.md"))

    assert json.loads(result.stdout)["flaky"][0]["test_id"] == RACE
    assert result.stderr.startswith("::warning file=tests/test_cart.py,line=41,")


def test_flaky_outside_github_actions_prints_no_annotation(flaky_db: str) -> None:
    result = _flaky(flaky_db)

    assert result.exit_code == 0
    assert RACE in result.stdout
    assert not re.search(r"^::", result.stdout, re.M)


def _finding(test_id: str, state: str = "ongoing") -> dict[str, object]:
    return {
        "test_id": test_id,
        "state": state,
        "evidence": {"rerun": 0, "same_commit": 2, "flips": 0},
        "runs": 10,
        "failures": 2,
        "failure_rate": {"estimate": 0.2},
        "runs_broken": 1,
    }


def test_fixed_tests_get_no_annotation_and_many_are_capped() -> None:
    document = {
        "gate": "g",
        "flaky": [_finding("t.py::fixed", "fixed")]
        + [_finding(f"t.py::test_{n:02d}") for n in range(12)],
        "broken": [],
    }

    annotations = flaky_annotations(document)

    assert len(annotations) == 10
    assert not any("fixed" in line for line in annotations)
    assert annotations[0] == (
        "::warning file=t.py,title=flaky test t.py%3A%3Atest_00::ongoing flaky "
        "test: same commit 2; failed 2 of 10 runs (20%25); cost 1 runs"
    )
    assert annotations[-1] == "::warning::and 3 more"


def test_locations_come_from_the_newest_recorded_result(
    sqlite_url: str, make_session: SessionFactory
) -> None:
    moved = [
        TestRecord(RACE, "passed", ["passed"], file="tests/test_cart.py", line=10),
        TestRecord(RACE, "passed", ["passed"], file="tests/test_cart.py", line=41),
    ]
    with Store(sqlite_url) as store:
        store.record_session(make_session(0, tests=[moved[0]]))
        store.record_session(make_session(1, tests=[moved[1]]))
        store.record_session(make_session(2, gate="other", tests=[moved[0]]))

        found = test_locations(store, "e2e-gate", None, [RACE, "t.py::absent"])

    assert found == {RACE: ("tests/test_cart.py", 41)}
