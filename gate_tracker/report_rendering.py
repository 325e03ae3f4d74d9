"""Rendering of the weekly flake report: Markdown, HTML and the JSON summary.

The two jinja2 environments share the filters below. Both redact every value
they print (``finalize``); the HTML one autoescapes, and the Markdown one
escapes through the ``md`` filter, which redacts before escaping so that an
escaped secret cannot slip past the patterns.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from gate_tracker import __version__
from gate_tracker.forecast import describe
from gate_tracker.github_actions import escape_markdown
from gate_tracker.records import VERDICTS
from gate_tracker.redaction import redact

if TYPE_CHECKING:
    from datetime import datetime

    from gate_tracker.flakiness import TestFinding
    from gate_tracker.records import StoredRun
    from gate_tracker.reporting import PeriodFigures, Report

FLAKY_STATES = ("new", "ongoing", "fixed")
_WEB_URL = re.compile(r"(?i)^https?://")
_UNSAFE_IN_URL = re.compile(r"[\s<>\"']")
_EVIDENCE_LABELS = {"rerun": "rerun", "same_commit": "same commit", "flips": "flips"}


def render_markdown(report: Report) -> str:
    """``report.md``: GitHub-flavoured Markdown, fit for a job summary."""
    return (
        _environment(html=False).get_template("report.md.j2").render(_context(report))
    )


def render_html(report: Report) -> str:
    """``index.html``: one self-contained page with the charts embedded."""
    return (
        _environment(html=True).get_template("index.html.j2").render(_context(report))
    )


def summary_body(report: Report) -> dict[str, Any]:
    """The body of ``summary.json`` after its format, version and times."""
    from gate_tracker.reporting import CHART_DIR, REPORT_FILES

    objective = report.objective
    broken = objective.broken_by
    return {
        "gate": report.scope.gate,
        "repository": report.scope.repository,
        "scope": _scope_document(report),
        "period": {
            "days": report.days,
            "since": report.period.since.isoformat(),
            "until": report.period.until.isoformat(),
        },
        "objective": {
            "required": objective.required,
            "streak": objective.streak,
            "ci_streak": objective.ci_streak,
            "met": objective.met,
            "broken_by": None if broken is None else _run_document(broken),
            "broken_reason": objective.broken_reason or None,
        },
        "forecast": report.forecast.to_dict(),
        "runs": {
            "this_period": _period_document(report.period),
            "previous_period": _period_document(report.previous),
        },
        "flaky": {
            "window_days": report.flakes.policy.window_days,
            "runs": report.flakes.runs,
            "trials": report.flakes.trials,
            "unclean_trials": report.flakes.unclean_trials,
            **{
                state: [f.to_dict() for f in report.flakes.flaky if f.state == state]
                for state in FLAKY_STATES
            },
            "broken": [f.to_dict() for f in report.flakes.broken],
            "groups": [group.to_dict() for group in report.flakes.groups],
        },
        "failure_signatures": [s.to_dict() for s in _signatures(report)],
        "slowest_tests": [
            {
                "test_id": test.test_id,
                "runs": test.runs,
                "mean_s": round(test.mean_s, 6),
                "max_s": round(test.max_s, 6),
                "previous_mean_s": _round(test.previous_mean_s),
                "change": _round(test.change),
            }
            for test in report.slowest
        ],
        "fix_first": [
            {
                "kind": item.kind,
                "subject": item.subject,
                "detail": item.detail,
                "cost": round(item.cost, 6),
            }
            for item in report.fix_first
        ],
        "trend": {
            "since": report.trend_since.isoformat(),
            "per": report.trend_per,
        },
        "files": [*REPORT_FILES, *(chart.path for chart in report.charts)],
        "charts": {chart.name: chart.path for chart in report.charts},
        "chart_dir": CHART_DIR,
    }


# -- the environments -------------------------------------------------------------


def _environment(*, html: bool) -> Environment:
    environment = Environment(
        loader=PackageLoader("gate_tracker", "templates"),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    environment.filters.update(
        md=_md,
        pct=_pct,
        duration=_duration,
        when=_when,
        day=_day,
        commit=_commit,
        signed=_signed,
        change=_change,
    )
    return environment


def _finalize(value: Any) -> Any:
    # Markup is already safe and redacted (the embedded charts, escaped text).
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return redact(value)


def _context(report: Report) -> dict[str, Any]:
    flaky_by_state = [
        (state, [f for f in report.flakes.flaky if f.state == state])
        for state in FLAKY_STATES
    ]
    return {
        "report": report,
        "scope": report.scope,
        "period": report.period,
        "previous": report.previous,
        "objective": report.objective,
        "flakes": report.flakes,
        "forecast_lines": describe(report.forecast),
        "flaky_by_state": flaky_by_state,
        "state_titles": _state_titles(report),
        "signatures": _signatures(report),
        "verdicts": VERDICTS,
        "scope_line": _scope_line(report),
        "version": __version__,
        "evidence": _evidence,
        "rate": _rate,
        "run_label": _run_label,
        "run_name": _run_name,
        "run_url": run_url,
    }


def _state_titles(report: Report) -> dict[str, str]:
    policy = report.flakes.policy
    return {
        "new": f"New: first seen in the last {policy.new_within_days} days",
        "ongoing": "Ongoing",
        "fixed": f"Fixed: no flaky evidence in the last {policy.fixed_after_runs} runs",
    }


def _signatures(report: Report) -> list[Any]:
    from gate_tracker.reporting import SIGNATURES_SHOWN

    return report.flakes.signatures[:SIGNATURES_SHOWN]


# -- filters and helpers ------------------------------------------------------------


def _md(value: Any) -> Markup:
    return Markup(escape_markdown(redact(str(value))))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _day(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d")


def _commit(sha: str) -> str:
    return sha[:10]


def _signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


def _change(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.0%}"


def _rate(figures: PeriodFigures) -> str:
    if figures.clean_rate is None or figures.clean_interval is None:
        return "no trials"
    low, high = figures.clean_interval
    return (
        f"{figures.clean_rate:.1%} of {figures.trials} trials "
        f"(95% interval {low:.1%}-{high:.1%})"
    )


def _evidence(finding: TestFinding) -> str:
    shown = [
        f"{_EVIDENCE_LABELS.get(kind, kind)} {count}"
        for kind, count in finding.evidence.items()
        if count
    ]
    return ", ".join(shown) or "-"


def _run_name(run: StoredRun) -> str:
    if run.ci_run_id:
        return f"CI run {run.ci_run_id} attempt {run.attempt}"
    return f"the {run.event} run {run.id}"


def _run_label(run: StoredRun) -> Markup:
    name = escape_markdown(redact(_run_name(run)))
    url = run_url(run)
    if url is None:
        return Markup(name)
    # Inside <...> a link ends only at ">", which run_url has encoded.
    return Markup(f"[{name}](<{url}>)")


def run_url(run: StoredRun) -> str | None:
    """The run's web address, redacted and fit for a link; None unless http(s).

    Whitespace and angle brackets are percent-encoded so the address cannot
    end the link early in Markdown.
    """
    if not run.url or not _WEB_URL.match(run.url):
        return None
    return _UNSAFE_IN_URL.sub(lambda m: quote(m.group()), redact(run.url))


def _scope_line(report: Report) -> str:
    policy = report.scope.policy
    branch = f"branch {policy.branch}" if policy.branch else "any branch"
    events = ", ".join(policy.events) if policy.events else "any event"
    rule = (
        "reruns count" if policy.count_rerun_passes else "strict, reruns do not count"
    )
    return f"{branch}; events {events}; {rule}"


def _scope_document(report: Report) -> dict[str, Any]:
    policy = report.scope.policy
    return {
        "branch": policy.branch,
        "events": list(policy.events),
        "count_rerun_passes": policy.count_rerun_passes,
        "required": policy.required,
    }


def _period_document(figures: PeriodFigures) -> dict[str, Any]:
    interval = figures.clean_interval
    return {
        "since": figures.since.isoformat(),
        "until": figures.until.isoformat(),
        "runs": figures.runs,
        "by_verdict": dict(figures.by_verdict),
        "trials": figures.trials,
        "clean_passes": figures.clean_passes,
        "clean_pass_rate": {
            "estimate": _round(figures.clean_rate),
            "low": None if interval is None else round(interval[0], 6),
            "high": None if interval is None else round(interval[1], 6),
            "interval": "jeffreys",
        },
        "duration_s": {
            "median": _round(figures.median_duration_s),
            "p95": _round(figures.p95_duration_s),
        },
    }


def _run_document(run: StoredRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "verdict": run.verdict,
        "reason": run.reason,
        "commit": run.commit,
        "event": run.event,
        "run_id": run.ci_run_id,
        "attempt": run.attempt,
        "started_at": run.started_at.isoformat(),
        "url": run.url,
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)
