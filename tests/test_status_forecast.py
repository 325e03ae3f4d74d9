"""``status`` with its forecast and ``status --commit`` burn-in, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from scipy import stats

from gate_tracker.cli import main
from gate_tracker.forecast import runs_needed
from gate_tracker.storage import Store
from tests.conftest import build_session

RELEASE = "feedc0de" + "0" * 32


@pytest.fixture
def history(sqlite_url: str) -> str:
    """12 clean passes, a failure, 9 clean passes: streak 9, 21 of 22 clean."""
    with Store(sqlite_url) as store:
        for index in range(22):
            verdict = "fail" if index == 12 else "pass"
            store.record_session(build_session(index, verdict=verdict))
    return sqlite_url


def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """Run ``gate-tracker`` in ``tmp_path``, away from the repository's settings."""
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def status_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, *args: str
) -> dict[str, Any]:
    result = run_cli(tmp_path, monkeypatch, "--db", url, "status", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_status_json_carries_the_forecast_of_the_stored_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    document = status_json(tmp_path, monkeypatch, history)

    forecast = document["forecast"]
    assert (document["streak"], forecast["remaining"]) == (9, 11)
    assert forecast["pass_rate"]["trials"] == 22
    assert forecast["pass_rate"]["clean_passes"] == 21
    assert forecast["pass_rate"]["basis"] == "all"
    assert forecast["complete_probability"] == pytest.approx(
        stats.betabinom.pmf(11, 11, 21.5, 1.5), abs=1e-6
    )
    expected = runs_needed(21, 22, required=20, streak=9)
    assert forecast["runs_needed"]["median"] == expected.median
    assert forecast["runs_needed"]["p90"] == expected.p90
    assert forecast["proof"]["lower_bound"] == 0.860892
    assert "burn_in" not in document


def test_status_text_says_the_rate_the_odds_and_what_20_of_20_proves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    result = run_cli(tmp_path, monkeypatch, "--db", history, "status")

    assert result.exit_code == 1
    assert "Clean-pass rate: 95.5% (95% interval " in result.stdout
    assert "chance the next 11 trials complete 20/20" in result.stdout
    assert "20/20 would show only that the rate is above 0.861" in result.stdout


def test_the_forecast_window_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gate-tracker]\nforecast_window_runs = 10\n", encoding="utf-8"
    )

    document = status_json(tmp_path, monkeypatch, history)

    assert document["forecast"]["pass_rate"]["trials"] == 10
    assert document["forecast"]["pass_rate"]["basis"] == "window"


def test_status_commit_reports_the_burn_in_of_a_release_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    """Dispatched on a release branch: the commit counts on any branch."""
    with Store(history) as store:
        for index, verdict in enumerate(["pass", "pass", "flaky-pass", "cancelled"]):
            store.record_session(
                build_session(
                    40 + index,
                    verdict=verdict,
                    commit=RELEASE,
                    branch="release/1.0",
                    event="workflow_dispatch",
                )
            )

    document = status_json(tmp_path, monkeypatch, history, "--commit", RELEASE[:8])
    text = run_cli(
        tmp_path, monkeypatch, "--db", history, "status", "--commit", RELEASE[:8]
    )

    assert document["burn_in"] == {
        "commit": RELEASE[:8],
        "trials": 3,
        "clean_passes": 2,
        "rerun_passes": 1,
        "failures": 0,
        "confidence": 0.95,
        "lower_bound": round(float(stats.beta.ppf(0.05, 2, 2)), 6),
    }
    assert (
        "Burn-in of feedc0de: 3 trials, 2 clean passes, 1 passed on rerun, 0 failed: "
        "the clean-pass rate is above 0.135 (95% confidence)." in text.stdout
    )


def test_status_commit_without_runs_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    result = run_cli(
        tmp_path, monkeypatch, "--db", history, "status", "--commit", "0badc0de"
    )

    assert "Burn-in of 0badc0de: 0 trials," in result.stdout
    assert "no trials of this commit in scope." in result.stdout


def test_status_imports_neither_matplotlib_nor_pygithub(
    tmp_path: Path, history: str
) -> None:
    """A fresh interpreter runs ``status`` and lists the heavy modules it loaded."""
    script = (
        "import sys\n"
        "from gate_tracker.cli import main\n"
        "try:\n"
        f"    main(['--db', {history!r}, 'status', '--json'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted({name.split('.')[0] for name in sys.modules})\n"
        "print([name for name in loaded if name in ('matplotlib', 'github')])\n"
        "print('scipy' in loaded)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    *document, heavy, scipy_loaded = result.stdout.strip().splitlines()
    assert json.loads("\n".join(document))["forecast"]["pass_rate"]["trials"] == 22
    assert heavy == "[]"
    assert scipy_loaded == "True"
