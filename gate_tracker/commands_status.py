"""``gate-tracker status`` (the release check) and ``gate-tracker runs``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from gate_tracker.cli import EXIT_NOT_MET, EXIT_OK, Context
from gate_tracker.config import DEFAULT_BRANCH, DEFAULT_EVENTS, DEFAULT_REQUIRED
from gate_tracker.exceptions import ConfigurationError
from gate_tracker.github_summaries import publish_status
from gate_tracker.objective import ANY_BRANCH, Objective, Policy, evaluate
from gate_tracker.records import StoredRun
from gate_tracker.storage import Store

STATUS_FORMAT = "gate-tracker-status"
STATUS_VERSION = 1
_PAGE_MINIMUM = 50
_COMMIT_PREFIX = re.compile(r"[0-9a-fA-F]{4,64}")


def scope_options(command: Any) -> Any:
    """The options that choose a gate and the runs in scope."""
    options = [
        click.option(
            "--gate",
            metavar="NAME",
            help="Gate to check. Default: the configured gate, or the only one stored.",
        ),
        click.option(
            "--repo",
            "repository",
            metavar="OWNER/NAME",
            help="Repository of the gate's runs.",
        ),
        click.option(
            "--branch",
            metavar="BRANCH",
            help=f"Branch in scope (default {DEFAULT_BRANCH}; '{ANY_BRANCH}' for any).",
        ),
        click.option(
            "--event",
            "events",
            multiple=True,
            metavar="EVENT",
            help="Event in scope, repeatable (default: "
            + ", ".join(DEFAULT_EVENTS)
            + "; 'local' for runs outside CI).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _commit_prefix(value: str | None) -> str | None:
    if value is not None and not _COMMIT_PREFIX.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a commit SHA or a prefix of at least 4 hex digits"
        )
    return value


@dataclass
class Scope:
    gate: str
    repository: str | None
    policy: Policy


def resolve_scope(
    ctx: Context,
    store: Store,
    *,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: Sequence[str],
    required: int | None = None,
    count_rerun_passes: bool = False,
) -> Scope:
    """The gate, repository and policy from options, settings and the data."""
    settings = ctx.settings
    gate = gate or settings.string("gate") or _only_gate(store)
    repository = repository or settings.string("repo") or _only_repository(store, gate)
    branch = branch or settings.string("branch") or DEFAULT_BRANCH
    policy = Policy(
        required=required or settings.integer("required", DEFAULT_REQUIRED, minimum=1),
        count_rerun_passes=count_rerun_passes
        or settings.boolean("count_rerun_passes", False),
        branch=None if branch == ANY_BRANCH else branch,
        events=tuple(events) or settings.strings("events", DEFAULT_EVENTS),
    )
    return Scope(gate=gate, repository=repository, policy=policy)


def _only_gate(store: Store) -> str:
    gates = sorted({gate for gate, _ in store.gates()})
    if len(gates) == 1:
        return gates[0]
    if not gates:
        raise ConfigurationError(
            f"no gate runs are stored in {store.shown_url}; record one with "
            "`pytest --gate NAME`, or collect history with "
            "`gate-tracker collect github`"
        )
    raise ConfigurationError(
        "several gates are stored (" + ", ".join(gates) + "): choose one with --gate, "
        "or set gate in [tool.gate-tracker]"
    )


def _only_repository(store: Store, gate: str) -> str | None:
    repositories = sorted(
        {repo for name, repo in store.gates() if name == gate and repo}
    )
    if len(repositories) > 1:
        raise ConfigurationError(
            f"gate {gate!r} has runs in several repositories ("
            + ", ".join(repositories)
            + "): choose one with --repo, or set repo in [tool.gate-tracker]"
        )
    return None


def load_objective(store: Store, scope: Scope) -> Objective:
    """Evaluate the objective, reading pages of runs only until both streaks end.

    A page boundary can separate a CI run's attempts; when the run that ended
    the strict streak is a re-run attempt, one more page settles it.
    """
    policy = scope.policy
    page = max(policy.required * 2, _PAGE_MINIMUM)
    runs: list[StoredRun] = []
    while True:
        batch = store.runs(
            scope.gate,
            repository=scope.repository,
            branch=policy.branch,
            events=policy.events,
            limit=page,
            offset=len(runs),
        )
        runs.extend(batch)
        objective = evaluate(runs, policy, gate=scope.gate, repository=scope.repository)
        if len(batch) < page or _settled(objective):
            return objective


def _settled(objective: Objective) -> bool:
    broken, ci_broken = objective.broken_by, objective.ci_broken_by
    return broken is not None and ci_broken is not None and broken.attempt == 1


# -- the JSON document ------------------------------------------------------------


def run_document(run: StoredRun, failed: list[str], rerun: list[str]) -> dict[str, Any]:
    """One run as ``status --json`` and ``runs --json`` show it."""
    return {
        "id": run.id,
        "verdict": run.verdict,
        "reason": run.reason,
        "commit": run.commit,
        "branch": run.branch,
        "event": run.event,
        "run_id": run.ci_run_id,
        "attempt": run.attempt,
        "started_at": run.started_at.isoformat(),
        "duration_s": None if run.duration_s is None else round(run.duration_s, 3),
        "source": run.sources,
        "url": run.url,
        "counts": run.counts,
        "failed_tests": failed,
        "rerun_tests": rerun,
    }


def status_document(
    objective: Objective,
    notes: dict[int, tuple[list[str], list[str]]],
    shown: Sequence[StoredRun],
) -> dict[str, Any]:
    """The documented object ``status --json`` prints (docs/status-json.md)."""
    policy = objective.policy

    def described(run: StoredRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return run_document(run, *notes.get(run.id, ([], [])))

    broken = described(objective.broken_by)
    if broken is not None:
        broken["why"] = objective.broken_reason
    return {
        "format": STATUS_FORMAT,
        "version": STATUS_VERSION,
        "gate": objective.gate,
        "repository": objective.repository,
        "required": objective.required,
        "streak": objective.streak,
        "ci_streak": objective.ci_streak,
        "met": objective.met,
        "policy": {
            "strict": not policy.count_rerun_passes,
            "count_rerun_passes": policy.count_rerun_passes,
            "branch": policy.branch,
            "events": list(policy.events),
        },
        "history_exhausted": not objective.complete,
        "runs": [described(run) for run in shown],
        "broken_by": broken,
        "message": headline(objective),
    }


def headline(objective: Objective) -> str:
    """``14/20 consecutive clean passes - NOT MET``."""
    state = "MET" if objective.met else "NOT MET"
    return f"{objective.streak}/{objective.required} consecutive clean passes - {state}"


# -- the commands ---------------------------------------------------------------


@click.command()
@scope_options
@click.option(
    "--required",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"Consecutive clean passes required (default {DEFAULT_REQUIRED}).",
)
@click.option(
    "--count-rerun-passes",
    is_flag=True,
    help="Let runs green only thanks to reruns (flaky-pass) count.",
)
@click.option(
    "--last",
    "last",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="How many recent runs to show (default: the required count).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the documented JSON object instead of text.",
)
@click.option(
    "--commit",
    metavar="SHA",
    callback=lambda _ctx, _param, value: _commit_prefix(value),
    help="Also report the burn-in of this commit (or SHA prefix): its trials "
    "and the clean-pass rate they prove.",
)
@click.option(
    "--github-summary/--no-github-summary",
    default=None,
    help="Write the job summary and annotations of GitHub Actions (default: "
    "when GITHUB_ACTIONS=true). Annotations go to stderr with --json.",
)
@click.pass_obj
def status(
    ctx: Context,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
    required: int | None,
    count_rerun_passes: bool,
    last: int | None,
    as_json: bool,
    commit: str | None,
    github_summary: bool | None,
) -> None:
    """Check the objective: N consecutive clean passes of the gate.

    Exit status: 0 when the objective is met, 1 when it is not (also when no
    run is in scope), 2 for usage, configuration or database errors.
    """
    with ctx.open_store() as store:
        scope = resolve_scope(
            ctx,
            store,
            gate=gate,
            repository=repository,
            branch=branch,
            events=events,
            required=required,
            count_rerun_passes=count_rerun_passes,
        )
        objective = load_objective(store, scope)
        shown = objective.runs[: scope.policy.required if last is None else last]
        wanted = {run.id for run in shown}
        if objective.broken_by is not None:
            wanted.add(objective.broken_by.id)
        notes = store.tests_of_note(wanted)

        from gate_tracker.history import load_outlook

        outlook = load_outlook(store, objective, ctx.settings, commit=commit)

    document = status_document(objective, notes, shown)
    document.update(outlook.to_dict())
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        from gate_tracker.status_text import render_status

        render_status(document, objective)
        click.echo("\n".join(outlook.lines()))
    publish_status(
        document, enabled=github_summary, stream=sys.stderr if as_json else None
    )
    sys.exit(EXIT_OK if objective.met else EXIT_NOT_MET)


@click.command()
@scope_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="How many runs to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def runs(
    ctx: Context,
    gate: str | None,
    repository: str | None,
    branch: str | None,
    events: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """List recorded runs of a gate, newest first, with the same filters as status."""
    with ctx.open_store() as store:
        scope = resolve_scope(
            ctx, store, gate=gate, repository=repository, branch=branch, events=events
        )
        policy = scope.policy
        found = store.runs(
            scope.gate,
            repository=scope.repository,
            branch=policy.branch,
            events=policy.events,
            limit=limit,
        )
        notes = store.tests_of_note(run.id for run in found)

    documents = [run_document(run, *notes[run.id]) for run in found]
    if as_json:
        click.echo(json.dumps({"gate": scope.gate, "runs": documents}, indent=2))
        return

    from gate_tracker.status_text import render_runs

    render_runs(scope.gate, documents)
