"""The weekly flake report: its model, its three files and its charts.

Most tests read one generated year of runs (``report_history``), recorded once
through the real Store. The rendered files are compared with the expected
files in ``tests/data/report/``; set ``GATE_TRACKER_REGENERATE=1`` to rewrite
them after a deliberate change, and read the diff before committing it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import report_history as year
from click.testing import CliRunner, Result
from conftest import DATA, SessionFactory
from job_summaries import cells, render

from gate_tracker import report_charts, reporting
from gate_tracker.cli import main
from gate_tracker.config import Settings
from gate_tracker.exceptions import StorageError
from gate_tracker.objective import Policy, evaluate
from gate_tracker.records import TestRecord
from gate_tracker.reporting import Report, ReportScope, build_report, write_report
from gate_tracker.storage import Store

EXPECTED = DATA / "report"
REGENERATE_ENV = "GATE_TRACKER_REGENERATE"
YEAR_SCOPE = ReportScope(year.GATE, year.REPOSITORY, Policy())
_DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
_VERSION = re.compile(r"gate-tracker \d+\.\d+\.\d+\S*")


@pytest.fixture(scope="module")
def year_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding the generated year of runs."""
    url = f"sqlite:///{tmp_path_factory.mktemp('year') / 'gate.db'}"
    with Store(url) as store:
        year.record_year(store)
    return url


@pytest.fixture(scope="module")
def year_report(year_db: str) -> Report:
    """The report of the year as of ``year.NOW``, charts over the whole year."""
    with Store(year_db) as store:
        return build_report(
            store, YEAR_SCOPE, Settings(), now=year.NOW, trend=timedelta(days=365)
        )


@pytest.fixture(scope="module")
def written(
    year_report: Report, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The report's files, by name relative to the report folder."""
    out = tmp_path_factory.mktemp("report")
    return {
        path.relative_to(out).as_posix(): path
        for path in write_report(year_report, out)
    }


def _scrubbed(name: str, text: str) -> str:
    # The generation time is fixed by the test; the version changes on release.
    text = _VERSION.sub("gate-tracker VERSION", text)
    text = _DATA_URI.sub("data:image/png;base64,SCRUBBED", text)
    if name == "summary.json":
        document = json.loads(text)
        document["gate_tracker_version"] = "VERSION"
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return text


# -- the rendered files against the expected ones ----------------------------------


@pytest.mark.parametrize("name", ["report.md", "index.html", "summary.json"])
def test_rendered_file_matches_the_expected_file(
    written: dict[str, Path], name: str
) -> None:
    rendered = _scrubbed(name, written[name].read_text(encoding="utf-8"))
    expected_path = EXPECTED / name
    if os.environ.get(REGENERATE_ENV):
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_text(rendered, encoding="utf-8")

    assert rendered == expected_path.read_text(encoding="utf-8")


def test_report_writes_its_files_and_five_charts(
    written: dict[str, Path], year_report: Report
) -> None:
    assert year_report.trend_per == "week"
    assert sorted(written) == [
        "charts/duration.png",
        "charts/flaky-impact.png",
        "charts/outcome-grid.png",
        "charts/pass-rate.png",
        "charts/streak.png",
        "index.html",
        "report.md",
        "summary.json",
    ]
    assert not list(written["report.md"].parent.rglob("*.partial"))


# -- what the report says against what the history holds ------------------------------


def test_week_counts_match_the_generated_sessions(year_report: Report) -> None:
    since = year.NOW - timedelta(days=7)
    sessions = [s for s in year.year_of_sessions() if since <= s.started_at < year.NOW]
    verdicts = Counter(s.verdict for s in sessions)

    figures = year_report.period

    assert figures.runs == len(sessions)
    assert {v: n for v, n in figures.by_verdict.items() if n} == dict(verdicts)
    assert figures.trials == sum(
        1
        for s in sessions
        if s.ci and s.ci.run_attempt == 1 and s.verdict != "cancelled"
    )


def test_flaky_tests_have_the_states_the_history_was_built_with(
    year_report: Report,
) -> None:
    states = {f.test_id: f.state for f in year_report.flakes.flaky}
    broken = {f.test_id: f for f in year_report.flakes.broken}

    assert states[year.RENDER] == "new"
    assert states[year.CARD] == "ongoing"
    assert states[year.CART] == "fixed"
    assert year.REFUND not in states
    assert broken[year.REFUND].broken_at is not None
    assert broken[year.REFUND].broken_at.started_at >= year.REFUND_BROKEN_AT
    assert [sorted(g.tests) for g in year_report.flakes.groups] == [
        [year.LOGOUT, year.SSO]
    ]


def test_fix_first_is_costliest_first_and_names_the_regression_and_the_group(
    year_report: Report,
) -> None:
    items = year_report.fix_first
    subjects = [item.subject for item in items]

    assert [item.cost for item in items] == sorted(
        (item.cost for item in items), reverse=True
    )
    assert items[0].kind == "broken"
    assert items[0].subject == year.REFUND
    assert f"{year.LOGOUT}, {year.SSO}" in subjects
    assert year.SSO not in subjects
    assert year.CART not in subjects


def test_streak_over_time_is_what_status_would_have_said_at_each_moment(
    year_db: str,
) -> None:
    with Store(year_db) as store:
        runs = list(reversed(store.runs(year.GATE, repository=year.REPOSITORY)))
    points = report_charts.streak_points(
        reporting.trial_steps(runs, YEAR_SCOPE), year.START
    )

    # Cut the history every 17 days and evaluate the objective on what was
    # known then, as `status` would have.
    checked = []
    for cut in range(17, 365, 17):
        moment = year.START + timedelta(days=cut)
        known = [run for run in runs if run.started_at < moment]
        then = evaluate(known, Policy(), gate=year.GATE, repository=year.REPOSITORY)
        point = [p for p in points if p.at < moment][-1]
        checked.append(((point.strict, point.ci), (then.streak, then.ci_streak)))

    assert all(drawn == status for drawn, status in checked), checked
    assert len({status for _, status in checked}) > 5
    assert max(p.strict for p in points) >= 10
    assert max(p.ci for p in points) > max(p.strict for p in points)


def test_slowest_test_is_the_one_that_slowed_down_over_the_year(
    year_report: Report,
) -> None:
    since = year.NOW - timedelta(days=7)
    ran = [
        s
        for s in year.year_of_sessions()
        if since <= s.started_at < year.NOW
        and year.FULL_ORDER in {t.test_id for t in s.tests}
    ]

    slowest = year_report.slowest[0]

    assert slowest.test_id == year.FULL_ORDER
    assert slowest.runs == len(ran)
    assert 43.0 < slowest.mean_s < 47.0
    assert slowest.previous_mean_s is not None
    assert year.EXPORT not in [t.test_id for t in year_report.slowest]


# -- safety: secrets, escaping, self-containment --------------------------------------


def test_planted_secrets_are_in_the_database_but_in_no_report_file(
    year_db: str, written: dict[str, Path]
) -> None:
    database = Path(year_db.removeprefix("sqlite:///")).read_bytes()
    everything = b"".join(path.read_bytes() for path in written.values())

    assert year.PLANTED_TOKEN.encode() in database
    assert year.PLANTED_PASSWORD.encode() in database
    assert year.PLANTED_TOKEN.encode() not in everything
    assert year.PLANTED_PASSWORD.encode() not in everything
    assert b"[REDACTED]" in everything


def test_markdown_shows_a_hostile_test_id_as_text_in_an_intact_table(
    written: dict[str, Path],
) -> None:
    html = render(written["report.md"].read_text(encoding="utf-8"))
    rows = [row for row in cells(html) if row and "test_render" in row[0]]

    assert "<b>bold</b>" not in html
    assert "<em>x</em>" not in html
    assert rows
    assert (
        rows[0][0] == "tests/e2e/test_ui.py::test_render[&lt;b&gt;bold&lt;/b&gt;|*x*]"
    )
    assert len(rows[0]) == 7


class _Resources(HTMLParser):
    """Every tag, and every attribute that makes a browser load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "srcset", "poster", "data") or (
                tag == "link" and name == "href"
            ):
                self.loads.append(value or "")


def test_html_is_one_file_with_the_charts_embedded_and_nothing_to_fetch(
    written: dict[str, Path],
) -> None:
    page = written["index.html"].read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(page)

    embedded = [base64.b64decode(src.split(",", 1)[1]) for src in parser.loads]
    charts = [
        written[name].read_bytes() for name in sorted(written) if name.endswith(".png")
    ]

    assert "script" not in parser.tags
    assert "link" not in parser.tags
    assert all(src.startswith("data:image/png;base64,") for src in parser.loads)
    assert sorted(embedded) == sorted(charts)
    assert "default-src 'none'" in page
    assert "&lt;b&gt;bold&lt;/b&gt;|*x*" in page


def test_summary_json_is_versioned_and_lists_its_files(
    written: dict[str, Path], year_report: Report
) -> None:
    document = json.loads(written["summary.json"].read_text(encoding="utf-8"))

    assert document["format"] == "gate-tracker-report"
    assert document["version"] == 1
    assert document["objective"]["streak"] == year_report.objective.streak
    assert document["forecast"] == year_report.forecast.to_dict()
    assert [f["test_id"] for f in document["flaky"]["new"]] == [year.RENDER]
    assert sorted(document["files"]) == sorted(written)


def test_charts_are_the_same_bytes_when_the_report_is_built_again(
    year_db: str, year_report: Report
) -> None:
    with Store(year_db) as store:
        again = build_report(
            store, YEAR_SCOPE, Settings(), now=year.NOW, trend=timedelta(days=365)
        )

    assert [c.png for c in again.charts] == [c.png for c in year_report.charts]


# -- small histories, both databases --------------------------------------------------


def _recent_history(url: str, make_session: SessionFactory, runs: int) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    flaky = TestRecord(
        "tests/test_pay.py::test_card",
        "passed",
        ["failed", "passed"],
        2.0,
        message="TimeoutError: gateway",
        signature="TimeoutError: gateway",
    )
    with Store(url) as store:
        for index in range(runs):
            tests = [TestRecord("tests/test_a.py::test_ok", "passed", ["passed"], 0.5)]
            verdict = "pass"
            if index % 3 == 1:
                tests.append(flaky)
                verdict = "flaky-pass"
            started = now - timedelta(hours=runs - index)
            store.record_session(
                make_session(index, tests=tests, verdict=verdict, started_at=started)
            )
    return now


def test_report_of_three_runs_on_either_database(
    any_db_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    now = _recent_history(any_db_url, make_session, 3)

    with Store(any_db_url) as store:
        built = build_report(
            store,
            ReportScope("e2e-gate", "acme/shop", Policy()),
            Settings(),
            now=now + timedelta(minutes=1),
        )
    paths = write_report(built, tmp_path / "out")

    assert built.period.runs == 3
    assert built.trend_per == "day"
    assert built.period.by_verdict["flaky-pass"] == 1
    assert built.objective.streak == 1
    assert [s.test_id for s in built.slowest] == [
        "tests/test_pay.py::test_card",
        "tests/test_a.py::test_ok",
    ]
    assert built.slowest[0].previous_mean_s is None
    assert [f.state for f in built.flakes.flaky] == ["new"]
    assert len(built.charts) == 5
    assert len(paths) == 8


def test_report_with_no_runs_in_the_period_says_so(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    now = _recent_history(sqlite_url, make_session, 2)

    with Store(sqlite_url) as store:
        built = build_report(
            store,
            ReportScope("e2e-gate", "acme/shop", Policy()),
            Settings(),
            now=now + timedelta(days=400),
        )
    write_report(built, tmp_path)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")

    assert built.period.runs == 0
    assert built.charts == []
    assert "Clean-pass rate: no trials, against no trials" in markdown
    assert "No charts: no runs in the trend period." in markdown


def test_write_report_into_an_unwritable_place_names_it(
    year_report: Report, tmp_path: Path
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")

    with pytest.raises(StorageError, match=r"cannot write the report into .*taken"):
        write_report(year_report, blocker / "out")


# -- the command ----------------------------------------------------------------------


def gate_tracker(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the real command line in this process, in ``cwd``."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), env=env or {})
    finally:
        os.chdir(previous)


def test_report_command_writes_reports_folder_and_the_job_summary(
    sqlite_url: str, make_session: SessionFactory, tmp_path: Path
) -> None:
    _recent_history(sqlite_url, make_session, 6)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}

    result = gate_tracker(tmp_path, "--db", sqlite_url, "report", env=env)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("report of e2e-gate written to reports: ")
    assert (tmp_path / "reports" / "index.html").is_file()
    assert (tmp_path / "reports" / "charts" / "streak.png").is_file()
    assert summary.read_text(encoding="utf-8").startswith("# Flake report: e2e-gate\n")
    assert "**1/20 consecutive clean passes - NOT MET**" in summary.read_text()


def test_report_command_without_runs_exits_2_with_a_message(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path / 'empty.db'}").close()

    result = gate_tracker(
        tmp_path, "--db", f"sqlite:///{tmp_path / 'empty.db'}", "report"
    )

    assert result.exit_code == 2
    assert "no gate runs are stored" in result.output
    assert not (tmp_path / "reports").exists()


def test_report_command_refuses_a_bad_period(tmp_path: Path) -> None:
    result = gate_tracker(tmp_path, "report", "--since", "soon")

    assert result.exit_code == 2
    assert "'soon' is not a duration" in result.output


def test_slowest_tests_are_ranked_over_the_newest_runs_of_the_period(
    sqlite_url: str, make_session: SessionFactory
) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    runs = reporting.DURATION_RUNS + 10
    with Store(sqlite_url) as store:
        for index in range(runs):
            # Only the oldest ten runs of the period have the slow test.
            tests = [TestRecord("t::steady", "passed", ["passed"], 2.0)]
            if index < 10:
                tests.append(TestRecord("t::once_slow", "passed", ["passed"], 90.0))
            started = now - timedelta(minutes=10 * (runs - index))
            store.record_session(make_session(index, tests=tests, started_at=started))
        stored = list(reversed(store.runs("e2e-gate")))

        slowest = reporting.slowest_tests(
            store, stored, now - timedelta(days=1), now, timedelta(days=1)
        )

    assert [(t.test_id, t.runs) for t in slowest] == [
        ("t::steady", reporting.DURATION_RUNS)
    ]
