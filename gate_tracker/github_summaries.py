"""Job summaries and annotations for ``status`` and ``flaky``.

Both are built from the commands' documented ``--json`` objects, so what a
job summary says is exactly what ``--json`` prints. The GitHub Actions
primitives (the summary file, workflow commands, escaping) live in
``gate_tracker.github_actions``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from gate_tracker.github_actions import (
    TESTS_SHOWN,
    capped_annotations,
    code_span,
    error_annotation,
    escape_markdown,
    markdown_table,
    notice_annotation,
    publish,
    publishing_wanted,
    shown_duration,
    table_code,
    test_file_of,
    verdict_label,
    warning_annotation,
)
from gate_tracker.redaction import redact

if TYPE_CHECKING:
    from gate_tracker.storage import Store

log = logging.getLogger(__name__)


# -- status ---------------------------------------------------------------------


def publish_status(
    status: Mapping[str, Any],
    *,
    enabled: bool | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Write ``status``'s job summary and print its annotations.

    ``status`` is the ``status --json`` document. ``enabled``, ``stream`` and
    the result are those of ``github_actions.publish``.
    """
    if not publishing_wanted(enabled, environ):
        return False
    return publish(
        status_summary_markdown(status),
        status_annotations(status),
        enabled=enabled,
        stream=stream,
        environ=environ,
    )


def status_summary_markdown(status: Mapping[str, Any]) -> str:
    """The job-summary section for ``status``, from its ``--json`` document.

    It gives the objective line, the CI streak when it differs, what ended
    the streak and a table of the last runs in scope.
    """
    met = bool(status["met"])
    mark = "✅" if met else "❌"
    lines = [
        f"### gate-tracker status: {escape_markdown(status['gate'])}",
        "",
        f"**{mark} {escape_markdown(status['message'])}**",
        "",
        _scope_line(status),
    ]
    if status.get("ci_streak") is not None and status["ci_streak"] != status["streak"]:
        lines += [
            "",
            f"CI streak: {status['ci_streak']} consecutive green runs (the "
            "difference is runs green only thanks to reruns or re-run attempts).",
        ]

    broken = status.get("broken_by")
    if broken:
        lines += [
            "",
            f"Streak ended by {_run_link(broken)}: "
            f"{escape_markdown(broken.get('why') or broken['verdict'])}",
        ]
        lines += _tests_of_note_list(broken)

    runs = status.get("runs") or []
    if not runs:
        lines += [
            "",
            "No runs in scope: record one with `pytest --gate NAME`, or collect "
            "history with `gate-tracker collect github`.",
        ]
        return "\n".join(lines) + "\n"

    lines += ["", f"#### Last {len(runs)} runs in scope", ""]
    lines += markdown_table(
        [
            "when (UTC)",
            "commit",
            "event",
            "run",
            "verdict",
            "duration",
            "tests of note",
        ],
        (_run_row(run) for run in runs),
    )
    return "\n".join(lines) + "\n"


def status_annotations(status: Mapping[str, Any]) -> list[str]:
    """Annotations for ``status``: an error when the objective is not met.

    A met objective gives a notice. When a run green only thanks to reruns
    ended the streak, each of its rerun tests also gets a warning on its file.
    """
    gate = str(status["gate"])
    if status["met"]:
        return [notice_annotation(status["message"], title=f"{gate}: objective met")]

    message = str(status["message"])
    broken = status.get("broken_by")
    if broken:
        message += f"; streak ended by {_run_label(broken)}: "
        message += str(broken.get("why") or broken["verdict"])
    elif not status.get("runs"):
        message += "; no runs in scope"
    annotations = [error_annotation(message, title=f"{gate}: objective not met")]

    if broken:
        warnings = [
            warning_annotation(
                f"passed only on rerun in {_run_label(broken)}, ending the streak",
                title=f"flaky test {test}",
                file=test_file_of(test),
            )
            for test in broken.get("rerun_tests") or []
        ]
        annotations += capped_annotations(warnings)
    return annotations


def _run_label(run: Mapping[str, Any]) -> str:
    if run.get("run_id"):
        label = f"run {run['run_id']} attempt {run.get('attempt') or 1}"
    else:
        label = f"local run {run.get('id')}"
    if run.get("commit"):
        label += f" of {str(run['commit'])[:10]}"
    return label


def _scope_line(status: Mapping[str, Any]) -> str:
    policy = status.get("policy") or {}
    parts = []
    if status.get("repository"):
        parts.append(f"in {escape_markdown(status['repository'])}")
    parts.append(f"on {escape_markdown(policy.get('branch') or 'any branch')}")
    events = ", ".join(policy.get("events") or [])
    if events:
        parts.append(f"events {escape_markdown(events)}")
    parts.append("strict" if policy.get("strict", True) else "rerun passes count")
    return "Scope: " + " · ".join(parts)


def _run_link(run: Mapping[str, Any], *, short: bool = False) -> str:
    label = escape_markdown(_run_number(run) if short else _run_label(run))
    url = run.get("url")
    return f"[{label}]({url})" if url else label


def _run_number(run: Mapping[str, Any]) -> str:
    if run.get("run_id"):
        return f"{run['run_id']}#{run.get('attempt') or 1}"
    return f"local {run.get('id')}"


def _run_row(run: Mapping[str, Any]) -> list[str]:
    started = str(run.get("started_at") or "")[:16].replace("T", " ")
    notes = "<br>".join(_tests_of_note_cells(run)) or "-"
    return [
        escape_markdown(started),
        escape_markdown(str(run.get("commit") or "unknown")[:10]),
        escape_markdown(str(run.get("event") or "")),
        _run_link(run, short=True),
        verdict_label(str(run["verdict"])),
        shown_duration(run.get("duration_s")),
        notes,
    ]


def _tests_of_note_cells(run: Mapping[str, Any], limit: int = 3) -> list[str]:
    cells = []
    for label in ("failed", "rerun"):
        tests = list(run.get(f"{label}_tests") or [])
        if not tests:
            continue
        shown = ", ".join(table_code(redact(test)) for test in tests[:limit])
        more = f" and {len(tests) - limit} more" if len(tests) > limit else ""
        cells.append(f"{label}: {shown}{more}")
    return cells


def _tests_of_note_list(run: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for label in ("failed", "rerun"):
        tests = list(run.get(f"{label}_tests") or [])
        if tests:
            lines.append("")
        for test in tests[:TESTS_SHOWN]:
            lines.append(f"- {label}: {code_span(redact(test))}")
        if len(tests) > TESTS_SHOWN:
            lines.append(f"- …and {len(tests) - TESTS_SHOWN} more {label} tests")
    return lines


# -- flaky -----------------------------------------------------------------------


def flaky_summary_markdown(flaky: Mapping[str, Any]) -> str:
    """The job-summary section for ``flaky``, from its ``--json`` document."""
    window = flaky.get("window") or {}
    active = [f for f in flaky.get("flaky") or [] if f.get("state") != "fixed"]
    broken = list(flaky.get("broken") or [])
    lines = [
        f"### gate-tracker flaky tests: {escape_markdown(str(flaky['gate']))}",
        "",
        f"**{len(active)} flaky, {len(broken)} broken** over "
        f"{window.get('days', '?')} days ({window.get('runs', 0)} runs, "
        f"{window.get('unclean_trials', 0)} of {window.get('trials', 0)} trials "
        "not clean).",
    ]
    if active:
        lines += ["", "#### Flaky tests, by impact", ""]
        lines += markdown_table(
            ["#", "test", "state", "evidence", "failure rate", "cost"],
            (
                [str(rank), *_finding_cells(finding)]
                for rank, finding in enumerate(active[:TESTS_SHOWN], start=1)
            ),
        )
    if broken:
        lines += ["", "#### Broken tests (failing every run since)", ""]
        lines += markdown_table(
            ["test", "broke at", "failing runs", "cost"],
            (_broken_cells(finding) for finding in broken[:TESTS_SHOWN]),
        )
    return "\n".join(lines) + "\n"


def flaky_annotations(
    flaky: Mapping[str, Any],
    locations: Mapping[str, tuple[str | None, int | None]] | None = None,
) -> list[str]:
    """A warning per flaky (not fixed) or broken test, on its file and line.

    ``locations`` maps test ids to their recorded file and line; without one
    the annotation goes on the file named in the test id.
    """
    locations = locations or {}
    annotations = []
    for finding in flaky.get("flaky") or []:
        if finding.get("state") == "fixed":
            continue
        test_id = str(finding["test_id"])
        file, line = locations.get(test_id, (test_file_of(test_id), None))
        message = (
            f"{finding.get('state')} flaky test: {_evidence_text(finding)}; "
            f"{_rate_text(finding)}; cost {finding.get('runs_broken', 0)} runs"
        )
        annotations.append(
            warning_annotation(
                message, title=f"flaky test {test_id}", file=file, line=line
            )
        )
    for finding in flaky.get("broken") or []:
        test_id = str(finding["test_id"])
        file, line = locations.get(test_id, (test_file_of(test_id), None))
        annotations.append(
            warning_annotation(
                f"broken: {_broken_text(finding)}",
                title=f"broken test {test_id}",
                file=file,
                line=line,
            )
        )
    return capped_annotations(annotations)


def publish_flaky(
    flaky: Mapping[str, Any],
    *,
    db_url: str | None = None,
    enabled: bool | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Write ``flaky``'s job summary and print a warning per flaky test.

    ``flaky`` is the ``flaky --json`` document. With ``db_url`` the warnings
    carry each test's recorded file and line. ``enabled``, ``stream`` and the
    result are those of ``github_actions.publish``.
    """
    if not publishing_wanted(enabled, environ):
        return False

    findings = [*flaky.get("flaky", []), *flaky.get("broken", [])]
    tests = [str(finding["test_id"]) for finding in findings]
    locations = _recorded_locations(db_url, flaky, tests) if db_url and tests else {}
    return publish(
        flaky_summary_markdown(flaky),
        flaky_annotations(flaky, locations),
        enabled=enabled,
        stream=stream,
        environ=environ,
    )


def test_locations(
    store: Store, gate: str, repository: str | None, test_ids: Iterable[str]
) -> dict[str, tuple[str | None, int | None]]:
    """The newest recorded file and line of each of ``test_ids`` in ``gate``."""
    import sqlalchemy as sa

    from gate_tracker.schema import gate_runs, test_results

    wanted = sorted(set(test_ids))
    if not wanted:
        return {}
    conditions = [
        gate_runs.c.gate == gate,
        test_results.c.test_id.in_(wanted),
        test_results.c.file.is_not(None),
    ]
    if repository is not None:
        conditions.append(gate_runs.c.repository == repository)
    query = (
        sa.select(test_results.c.test_id, test_results.c.file, test_results.c.line)
        .join(gate_runs, gate_runs.c.id == test_results.c.run_id)
        .where(*conditions)
        .order_by(test_results.c.id.desc())
    )

    found: dict[str, tuple[str | None, int | None]] = {}
    with store.reading() as conn:
        for row in conn.execute(query):
            found.setdefault(row.test_id, (row.file, row.line))
    return found


test_locations.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _recorded_locations(
    db_url: str, flaky: Mapping[str, Any], tests: list[str]
) -> dict[str, tuple[str | None, int | None]]:
    from gate_tracker.storage import Store

    try:
        with Store(db_url, create=False) as store:
            return test_locations(
                store, str(flaky["gate"]), flaky.get("repository"), tests
            )
    except Exception:  # annotations without lines beat no annotations
        log.warning("cannot read the tests' locations from %s", db_url, exc_info=True)
        return {}


def _finding_cells(finding: Mapping[str, Any]) -> list[str]:
    return [
        table_code(redact(str(finding["test_id"]))),
        escape_markdown(str(finding.get("state"))),
        escape_markdown(_evidence_text(finding)),
        escape_markdown(_rate_text(finding)),
        escape_markdown(f"{finding.get('runs_broken', 0)} runs"),
    ]


def _broken_cells(finding: Mapping[str, Any]) -> list[str]:
    broken = finding.get("broken_at") or {}
    return [
        table_code(redact(str(finding["test_id"]))),
        escape_markdown(str(broken.get("commit") or "unknown commit")[:10]),
        str(broken.get("failing_runs", "-")),
        escape_markdown(f"{finding.get('runs_broken', 0)} runs"),
    ]


def _evidence_text(finding: Mapping[str, Any]) -> str:
    labels = {"rerun": "rerun", "same_commit": "same commit", "flips": "flips"}
    evidence = finding.get("evidence") or {}
    shown = [f"{labels.get(k, k)} {n}" for k, n in evidence.items() if n]
    return ", ".join(shown) or "no evidence"


def _rate_text(finding: Mapping[str, Any]) -> str:
    rate = finding.get("failure_rate") or {}
    estimate = rate.get("estimate", 0.0)
    return (
        f"failed {finding.get('failures', 0)} of {finding.get('runs', 0)} runs "
        f"({estimate:.0%})"
    )


def _broken_text(finding: Mapping[str, Any]) -> str:
    broken = finding.get("broken_at") or {}
    commit = str(broken.get("commit") or "an unknown commit")[:10]
    return (
        f"failing in every run since {commit} ({broken.get('failing_runs', '?')} runs)"
    )
