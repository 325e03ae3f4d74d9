"""Readable output of ``status`` and ``runs``: rich tables on a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gate_tracker.objective import Objective

_VERDICT_STYLE = {
    "pass": "green",
    "flaky-pass": "yellow",
    "fail": "bold red",
    "incomplete": "red",
    "timeout": "red",
    "cancelled": "dim",
}
_TESTS_SHOWN = 3


def _console() -> Console:
    # Wide enough that a pipe or CI log keeps one run per line.
    return Console(highlight=False, soft_wrap=False, width=None if _is_tty() else 160)


def _is_tty() -> bool:
    import sys

    return sys.stdout.isatty()


def render_status(document: dict[str, Any], objective: Objective) -> None:
    """Print the objective, the CI streak, what ended the streak and recent runs."""
    console = _console()
    scope = _scope_line(document)
    style = "bold green" if document["met"] else "bold red"
    console.print(f"gate {escape(document['gate'])}{scope}")
    console.print(f"[{style}]{escape(document['message'])}[/]")

    if document["ci_streak"] != document["streak"]:
        console.print(
            f"CI streak: {document['ci_streak']} consecutive green runs "
            "(the difference is runs green only thanks to reruns, "
            "or rescued by re-runs)"
        )
    if document["history_exhausted"]:
        console.print(
            "the whole history in scope is counted: "
            + (
                "1 trial"
                if len(objective.trials) == 1
                else f"{len(objective.trials)} trials"
            )
        )

    broken = document["broken_by"]
    if broken is not None:
        console.print(
            f"streak ended by: {_run_label(broken)} - {escape(broken['why'])}"
        )
        for test in broken["failed_tests"][:10]:
            console.print(f"  failed: {escape(test)}")
        for test in broken["rerun_tests"][:10]:
            console.print(f"  rerun:  {escape(test)}")

    if not document["runs"]:
        console.print(f"no runs in scope: {_NO_RUNS_HINT}")
        return
    console.print(
        _runs_table(_last_runs_title(len(document["runs"])), document["runs"])
    )


_NO_RUNS_HINT = (
    "record one with `pytest --gate NAME`, collect history with "
    "`gate-tracker collect github`, or widen the scope (--branch '*', --event local)"
)


def render_runs(gate: str, runs: Sequence[dict[str, Any]]) -> None:
    """Print a table of runs."""
    console = _console()
    if not runs:
        console.print(f"no runs of gate {escape(gate)} in scope: {_NO_RUNS_HINT}")
        return
    console.print(_runs_table(f"runs of gate {gate}", runs))


def _runs_table(title: str, runs: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in (
        "when (UTC)",
        "commit",
        "event",
        "run",
        "verdict",
        "duration",
        "tests of note",
    ):
        table.add_column(
            column, overflow="fold" if column == "tests of note" else "ellipsis"
        )
    for run in runs:
        verdict_style = _VERDICT_STYLE.get(run["verdict"], "")
        table.add_row(
            run["started_at"][:16].replace("T", " "),
            (run["commit"] or "unknown")[:10],
            run["event"],
            _run_number(run),
            f"[{verdict_style}]{run['verdict']}[/]",
            _duration(run["duration_s"]),
            escape(_tests_of_note(run)),
        )
    return table


def _scope_line(document: dict[str, Any]) -> str:
    policy = document["policy"]
    parts = []
    if document["repository"]:
        parts.append(f"in {document['repository']}")
    parts.append(f"on {policy['branch'] or 'any branch'}")
    parts.append("events " + ", ".join(policy["events"]))
    parts.append("strict" if policy["strict"] else "rerun passes count")
    return " (" + "; ".join(escape(p) for p in parts) + ")"


def _run_label(run: dict[str, Any]) -> str:
    label = f"run {_run_number(run)} at {run['started_at'][:16].replace('T', ' ')}"
    if run["commit"]:
        label += f", commit {run['commit'][:10]}"
    if run["url"]:
        label += f" ({run['url']})"
    return escape(label)


def _run_number(run: dict[str, Any]) -> str:
    if run["run_id"]:
        return f"{run['run_id']}#{run['attempt']}"
    return f"local {run['id']}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _tests_of_note(run: dict[str, Any]) -> str:
    parts = []
    for label, tests in (
        ("failed", run["failed_tests"]),
        ("rerun", run["rerun_tests"]),
    ):
        if tests:
            shown = ", ".join(tests[:_TESTS_SHOWN])
            more = f" +{len(tests) - _TESTS_SHOWN}" if len(tests) > _TESTS_SHOWN else ""
            parts.append(f"{label}: {shown}{more}")
    return "; ".join(parts)


def _last_runs_title(count: int) -> str:
    return "the last run in scope" if count == 1 else f"last {count} runs in scope"
