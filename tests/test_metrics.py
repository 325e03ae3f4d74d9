"""OpenMetrics output: parsed back with prometheus_client's own parser."""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import SessionFactory
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gate_tracker.cli import main
from gate_tracker.config import Settings
from gate_tracker.metrics import GateMetrics, gate_metrics, render_metrics
from gate_tracker.objective import Policy, evaluate
from gate_tracker.records import VERDICTS, TestRecord
from gate_tracker.storage import Store

DOCS = Path(__file__).resolve().parents[1] / "docs" / "report.md"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
CART = "tests/test_cart.py::test_checkout"


def _samples(text: str) -> dict[str, list[Sample]]:
    """Samples by sample name, from text the OpenMetrics parser accepts."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matching = [
        s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, matching
    return float(matching[0].value)


def _figures(**changes: object) -> GateMetrics:
    values: dict[str, object] = {
        "gate": "e2e-gate",
        "repository": "acme/shop",
        "streak": 3,
        "ci_streak": 5,
        "required": 20,
        "runs_by_verdict": {"pass": 10, "fail": 2},
        "clean_pass_rate": 0.8,
        "clean_pass_interval": (0.6, 0.9),
        "flaky_tests": 2,
        "last_run_timestamp": 1_796_000_000.5,
        "last_run_verdict": "fail",
        "last_failure_timestamp": 1_796_000_000.5,
        "duration_quantiles_s": {0.5: 600.0, 0.95: 900.0},
        "duration_count": 12,
        "duration_sum_s": 7200.0,
    }
    values.update(changes)
    return GateMetrics(**values)  # type: ignore[arg-type]


def test_rendered_figures_parse_back_with_their_values_and_labels() -> None:
    text = render_metrics([_figures()]).decode()
    samples = _samples(text)
    labels = {"gate": "e2e-gate", "repository": "acme/shop"}

    assert text.endswith("# EOF\n")
    assert _value(samples, "gate_tracker_streak", policy="strict", **labels) == 3
    assert _value(samples, "gate_tracker_streak", policy="ci", **labels) == 5
    assert _value(samples, "gate_tracker_streak_required", **labels) == 20
    assert _value(samples, "gate_tracker_objective_met", **labels) == 0
    assert _value(samples, "gate_tracker_runs_total", verdict="fail", **labels) == 2
    assert _value(samples, "gate_tracker_runs_total", verdict="timeout", **labels) == 0
    assert (
        _value(samples, "gate_tracker_last_run_timestamp_seconds", **labels)
        == 1_796_000_000.5
    )
    assert _value(samples, "gate_tracker_clean_pass_ratio_lower", **labels) == 0.6
    assert _value(samples, "gate_tracker_flaky_tests", **labels) == 2
    assert (
        _value(samples, "gate_tracker_run_duration_seconds", quantile="0.95", **labels)
        == 900.0
    )
    assert _value(samples, "gate_tracker_run_duration_seconds_count", **labels) == 12


def test_last_verdict_is_a_stateset_with_exactly_one_state_set() -> None:
    samples = _samples(render_metrics([_figures()]).decode())

    states = {
        s.labels["gate_tracker_last_run_verdict"]: s.value
        for s in samples["gate_tracker_last_run_verdict"]
    }

    assert states == {verdict: float(verdict == "fail") for verdict in VERDICTS}


def test_unknown_figures_are_left_out_not_reported_as_zero() -> None:
    empty = _figures(
        gate="smoke",
        repository="",
        clean_pass_rate=None,
        clean_pass_interval=None,
        last_run_timestamp=None,
        last_run_verdict=None,
        last_failure_timestamp=None,
        duration_quantiles_s={},
        duration_count=0,
        duration_sum_s=0.0,
    )

    samples = _samples(render_metrics([_figures(), empty]).decode())

    assert {s.labels["gate"] for s in samples["gate_tracker_streak"]} == {
        "e2e-gate",
        "smoke",
    }
    for name in (
        "gate_tracker_last_run_timestamp_seconds",
        "gate_tracker_last_run_verdict",
        "gate_tracker_last_failure_timestamp_seconds",
        "gate_tracker_clean_pass_ratio",
        "gate_tracker_run_duration_seconds",
    ):
        assert {s.labels["gate"] for s in samples[name]} == {"e2e-gate"}, name


# -- figures read from a stored history ------------------------------------------


def _record_history(url: str, make_session: SessionFactory) -> list[float]:
    """Five passes, a failure, a rerun pass, two passes, then a cancelled run.

    Returns the durations of the runs that were not cancelled, oldest first.
    """
    failed = TestRecord(CART, "failed", ["failed", "failed"], 2.0, message="boom")
    rerun = TestRecord(CART, "passed", ["failed", "passed"], 2.0, message="boom")
    plans = ["pass"] * 5 + ["fail", "flaky-pass", "pass", "pass", "cancelled"]
    durations = []
    with Store(url) as store:
        for index, verdict in enumerate(plans):
            tests = [TestRecord("tests/test_a.py::test_ok", "passed", ["passed"], 0.5)]
            tests += {"fail": [failed], "flaky-pass": [rerun]}.get(verdict, [])
            duration = 60.0 * (index + 1)
            started = NOW - timedelta(hours=len(plans) - index)
            store.record_session(
                make_session(
                    index,
                    verdict=verdict,
                    tests=tests,
                    started_at=started,
                    duration_s=duration,
                )
            )
            if verdict != "cancelled":
                durations.append(duration)
    return durations


def test_figures_of_a_stored_history_on_either_database(
    any_db_url: str, make_session: SessionFactory
) -> None:
    durations = _record_history(any_db_url, make_session)

    with Store(any_db_url) as store:
        runs = store.runs("e2e-gate", repository="acme/shop")
        objective = evaluate(runs, Policy(), gate="e2e-gate", repository="acme/shop")
        figures = gate_metrics(store, objective, Settings(), now=NOW)

    failed_run = next(run for run in runs if run.verdict == "fail")

    assert (figures.streak, figures.ci_streak) == (2, 3)
    assert figures.runs_by_verdict == {
        "pass": 7,
        "fail": 1,
        "flaky-pass": 1,
        "cancelled": 1,
    }
    assert figures.last_run_verdict == "cancelled"
    assert figures.last_failure_timestamp == failed_run.started_at.timestamp()
    assert figures.flaky_tests == 1
    assert figures.clean_pass_rate == pytest.approx(7 / 9)
    assert figures.duration_count == 9
    assert figures.duration_quantiles_s[0.5] == 300.0
    assert figures.duration_quantiles_s[0.95] == pytest.approx(
        np.quantile(durations, 0.95)
    )
    assert figures.duration_sum_s == sum(durations)


# -- the command -------------------------------------------------------------------


def gate_tracker(cwd: Path, *args: str) -> Result:
    """Run the real command line in this process, in ``cwd``."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(previous)


def test_metrics_command_covers_every_gate_and_repository(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    _record_history(sqlite_url, make_session)
    with Store(sqlite_url) as store:
        store.record_session(
            make_session(50, gate="smoke", repository="acme/api", started_at=NOW)
        )

    result = gate_tracker(tmp_path, "--db", sqlite_url, "metrics")
    samples = _samples(result.output)

    assert result.exit_code == 0, result.output
    assert {
        (s.labels["gate"], s.labels["repository"])
        for s in samples["gate_tracker_streak_required"]
    } == {("e2e-gate", "acme/shop"), ("smoke", "acme/api")}
    assert _value(samples, "gate_tracker_streak", gate="smoke", policy="strict") == 1
    assert _value(samples, "gate_tracker_flaky_tests", gate="e2e-gate") == 1


def test_metrics_out_replaces_the_file_whole_and_readable(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    _record_history(sqlite_url, make_session)
    target = tmp_path / "gate.prom"
    target.write_text("old content\n")

    result = gate_tracker(
        tmp_path,
        "--db",
        sqlite_url,
        "metrics",
        "--gate",
        "e2e-gate",
        "--out",
        str(target),
    )

    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert target.read_text().endswith("# EOF\n")
    assert "old content" not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_metrics_for_an_unknown_gate_exits_2_naming_it(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    _record_history(sqlite_url, make_session)

    result = gate_tracker(tmp_path, "--db", sqlite_url, "metrics", "--gate", "nope")

    assert result.exit_code == 2
    assert "no runs of nope are stored" in result.output


def test_every_metric_the_docs_name_is_in_the_output(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    _record_history(sqlite_url, make_session)
    section = DOCS.read_text().split("## `gate-tracker metrics`")[1]
    documented = set(re.findall(r"\bgate_tracker_[a-z_]+", section))

    output = gate_tracker(tmp_path, "--db", sqlite_url, "metrics").output
    names = set(_samples(output)) | {
        family.name for family in text_string_to_metric_families(output)
    }

    assert "gate_tracker_last_failure_timestamp_seconds" in documented
    assert documented <= names


def test_documented_alert_rules_are_valid_yaml_on_documented_metrics() -> None:
    yaml = pytest.importorskip("yaml")
    block = DOCS.read_text().split("```yaml\n")[1].split("```")[0]

    rules = yaml.safe_load(block)["groups"][0]["rules"]

    assert [rule["alert"] for rule in rules] == [
        "E2EGateFailed",
        "E2EGateStreakBelowRequired",
        "E2EGateLastRunNotGreen",
    ]
    assert "gate_tracker_last_failure_timestamp_seconds" in rules[0]["expr"]
    assert "gate_tracker_streak_required" in rules[1]["expr"]
