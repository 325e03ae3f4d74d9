"""Record gate runs with the plugin, then ask ``gate-tracker status``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from conftest import Workspace

LOCAL = ("--event", "local", "--branch", "*")


@pytest.mark.smoke
def test_healthy_suite_records_a_pass(workspace: Callable[[str], Workspace]) -> None:
    shop = workspace("shop")

    gate = shop.pytest("--gate", "shop-gate", "-n", "2", "--reruns", "1")
    status = shop.gate_tracker("status", *LOCAL, "--required", "1")

    assert gate.returncode == 0, gate.stdout
    assert "gate-tracker: gate 'shop-gate' verdict pass (run 1)" in gate.stdout
    assert status.returncode == 0
    assert "1/1 consecutive clean passes - MET" in status.stdout


@pytest.mark.smoke
def test_flaky_suite_passes_in_ci_terms_but_not_strictly(
    workspace: Callable[[str], Workspace],
) -> None:
    flaky = workspace("flaky")

    gate = flaky.pytest("--gate", "g", "-n", "2", "--reruns", "2")
    document = flaky.status_json(*LOCAL, "--required", "1")

    assert gate.returncode == 0
    assert (document["streak"], document["ci_streak"], document["met"]) == (0, 1, False)
    assert document["broken_by"]["rerun_tests"] == [
        "test_flaky.py::test_warms_up_a_cache"
    ]
    assert document["runs"][0]["verdict"] == "flaky-pass"


def test_streak_counts_up_and_a_regression_resets_it(
    workspace: Callable[[str], Workspace],
) -> None:
    shop = workspace("shop")
    for _ in range(3):
        assert shop.pytest("--gate", "g", "-q").returncode == 0
    assert shop.status_json(*LOCAL, "--required", "3")["met"] is True

    (shop.path / "test_regression.py").write_text(
        "def test_new():\n    assert 1 + 1 == 3\n"
    )
    failed = shop.pytest("--gate", "g", "-q")
    status = shop.gate_tracker("status", *LOCAL, "--required", "3")

    assert failed.returncode == 1
    assert status.returncode == 1
    assert "0/3 consecutive clean passes - NOT MET" in status.stdout
    assert "failed: test_regression.py::test_new" in status.stdout


def test_exit_statuses_of_status(workspace: Callable[[str], Workspace]) -> None:
    broken = workspace("broken")

    no_data = broken.gate_tracker("status")
    broken.pytest("--gate", "g")
    not_met = broken.gate_tracker("status", *LOCAL)
    bad_option = broken.gate_tracker("status", "--required", "zero")

    assert no_data.returncode == 2 and "there is no database at" in no_data.stderr
    assert not_met.returncode == 1
    assert bad_option.returncode == 2


def test_unwritable_database_keeps_the_run_for_import(
    workspace: Callable[[str], Workspace],
) -> None:
    shop = workspace("shop")
    (shop.path / "readonly").write_text("a file, not a directory")

    gate = shop.pytest(
        "--gate", "g", "--gate-db", f"sqlite:///{shop.path / 'readonly' / 'gate.db'}"
    )
    [pending] = (shop.path / ".gate-tracker" / "pending").glob("*.json")
    imported = shop.gate_tracker("import", "record", str(pending))

    assert gate.returncode == 0
    assert "GT101 run not stored" in gate.stdout
    assert imported.returncode == 0 and "stored as run 1" in imported.stdout
    assert shop.status_json(*LOCAL, "--required", "1")["met"] is True


def test_counts_in_the_database_match_pytest_summary(
    workspace: Callable[[str], Workspace],
) -> None:
    shop = workspace("shop")

    gate = shop.pytest("--gate", "g", "-n", "2")

    assert "4 passed, 1 skipped" in gate.stdout
    with sqlite3.connect(shop.path / ".gate-tracker" / "gate.db") as conn:
        counts = conn.execute(
            "SELECT passed, failed, skipped FROM gate_runs"
        ).fetchone()
    assert counts == (4, 0, 1)
