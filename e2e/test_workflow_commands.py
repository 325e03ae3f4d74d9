"""The workflows' own commands, run here in the order GitHub Actions runs them.

The steps come from ``.github/workflows/*.yml`` and ``action.yml`` themselves,
so this breaks when a workflow changes in a way the product does not follow.
Each step runs under bash as the runner starts it, with the variables GitHub
sets (``GITHUB_ACTIONS``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_RUN_ID`` ...) and
the workflow's ``env`` with its expressions evaluated. What cannot run here is
stood in for, and said so: checkout and setup-python (this checkout and this
Python are used), installing the product (it is installed already), and the
upload and download of artifacts (the fake GitHub server of the test suite
serves the uploaded files to the collector). ``make e2e-gate`` is expanded
with ``make -n`` and its pytest command run on a sample project, since our own
e2e suite cannot run inside itself.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from conftest import PROJECTS

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
REPOSITORY = "acme/shop"
FLAKY_TEST = "test_flaky.py::test_warms_up_a_cache"
STOOD_IN_FOR = ("actions/checkout@", "actions/setup-python@")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_JOB_RUN_IDS = itertools.count(7_000_001)
_OPERAND = re.compile(r"^(?:'(?P<text>[^']*)'|(?P<number>\d+)|(?P<path>[\w.-]+))$")


# -- the fake GitHub API, from the unit test suite -------------------------------------


def _fake_github_module() -> ModuleType:
    # Other e2e modules load it too: one copy per process, whoever is first.
    loaded = sys.modules.get("fake_github")
    if loaded is not None:
        return loaded
    path = REPO / "tests" / "fake_github.py"
    spec = importlib.util.spec_from_file_location("fake_github", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_github"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def github() -> Iterator[Any]:
    """The fake GitHub REST API with ``acme/shop`` and its ``e2e-gate.yml``."""
    fake = _fake_github_module()
    server = fake.FakeGitHub()
    repository = server.add_repository(REPOSITORY)
    repository.workflows.insert(
        0, fake.FakeWorkflow(8_000_001, "e2e-gate", ".github/workflows/e2e-gate.yml")
    )
    try:
        yield server
    finally:
        server.close()


# -- playing a workflow job here ------------------------------------------------------


@dataclass
class Played:
    """What a job did: each step's result, and the artifacts it uploaded."""

    steps: list[tuple[str, subprocess.CompletedProcess[str] | None]] = field(
        default_factory=list
    )
    uploads: dict[str, Path] = field(default_factory=dict)
    failed: bool = False

    def output(self, name: str) -> subprocess.CompletedProcess[str]:
        for step_name, result in self.steps:
            if step_name == name and result is not None:
                return result
        raise AssertionError(f"no step {name!r} ran: {[n for n, _ in self.steps]}")


@dataclass
class Runner:
    """One job's runner: its workspace, contexts and environment."""

    workspace: Path
    contexts: dict[str, dict[str, Any]]
    env: dict[str, str]
    gate_project: Path | None = None

    def play(self, job: Mapping[str, Any]) -> Played:
        played = Played()
        job_env = self._evaluated(job.get("env") or {})
        for step in job["steps"]:
            if played.failed and "always()" not in str(step.get("if", "")):
                continue
            self._check_condition(step)
            self._step(step, {**self.env, **job_env}, played)
        return played

    def _step(
        self, step: Mapping[str, Any], env: dict[str, str], played: Played
    ) -> None:
        name = step.get("name") or step.get("uses") or step["run"]
        uses = step.get("uses", "")
        if uses == "./":
            self._action(step, env, played)
        elif uses.startswith("actions/upload-artifact@"):
            inputs = self._evaluated(step["with"])
            played.uploads[inputs["name"]] = self.workspace / inputs["path"]
            played.steps.append((name, None))
        elif uses.startswith(STOOD_IN_FOR):
            played.steps.append((name, None))
        elif "pip install" in step.get("run", ""):
            # Never install here: it would replace the product under test.
            assert _installs_the_product(step), f"cannot run {step['run']!r} here"
            played.steps.append((name, None))
        else:
            step_env = {**env, **self._evaluated(step.get("env") or {})}
            result = self._bash(step["run"], step_env)
            played.steps.append((name, result))
            played.failed |= result.returncode != 0

    def _action(
        self, step: Mapping[str, Any], env: dict[str, str], played: Played
    ) -> None:
        # A composite action's steps see its inputs: the defaults, then `with:`.
        action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
        given = self._evaluated(step.get("with") or {})
        inputs = {
            name: given.get(name, str(spec.get("default", "")))
            for name, spec in action["inputs"].items()
        }
        inner = Runner(
            self.workspace,
            {**self.contexts, "inputs": inputs},
            self.env,
            self.gate_project,
        )
        inputs.update(inner._evaluated(inputs))
        failed_before = played.failed
        for inner_step in action["runs"]["steps"]:
            if played.failed and not failed_before:
                break  # a composite action stops at its first failing step
            before = len(played.steps)
            inner._step(inner_step, env, played)
            if len(played.steps) > before:
                name = f"{step.get('name')} / {inner_step['name']}"
                played.steps[-1] = (name, played.steps[-1][1])

    def _bash(
        self, script: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        if script.startswith("make e2e-gate"):
            script = self._gate_command(script, env)
        # How the runner starts a `run:` step with the default shell on Linux.
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def _gate_command(self, script: str, env: dict[str, str]) -> str:
        # Our Makefile's recipe for the gate, with the workflow's arguments,
        # pointed at a sample project instead of our own e2e suite.
        dry = subprocess.run(
            ["bash", "-c", script.replace("make ", f"make -n -C {REPO} ", 1)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        (command,) = [line for line in dry.stdout.splitlines() if " -m pytest " in line]
        words = shlex.split(command)
        assert words[1:4] == ["-m", "pytest", "e2e"], command
        assert self.gate_project is not None
        words[0], words[3] = sys.executable, str(self.gate_project)
        return shlex.join(words)

    def _evaluated(self, table: Mapping[str, Any]) -> dict[str, str]:
        return {key: self.evaluate(str(value)) for key, value in table.items()}

    def evaluate(self, text: str) -> str:
        """``text`` with each ``${{ a.b || 'c' }}`` replaced by its value."""
        return _EXPRESSION.sub(lambda found: self._expression(found.group(1)), text)

    def _expression(self, expression: str) -> str:
        for operand in expression.split("||"):
            value = self._operand(operand.strip())
            if value not in ("", None):
                return str(value)
        return ""

    def _operand(self, operand: str) -> Any:
        found = _OPERAND.match(operand)
        assert found, f"the local runner cannot evaluate {operand!r}: keep it simple"
        if found["path"] is None:
            return found["text"] if found["text"] is not None else found["number"]
        value: Any = self.contexts
        for part in found["path"].split("."):
            assert isinstance(value, dict), operand
            value = value.get(part)
        return value

    def _check_condition(self, step: Mapping[str, Any]) -> None:
        condition = step.get("if")
        assert condition in (None, "always()"), f"unknown condition {condition!r}"


def _installs_the_product(step: Mapping[str, Any]) -> bool:
    run = step.get("run", "")
    return bool(
        re.search(r"-m pip install\b.*\s(?:\.|\"\$ACTION_PATH\")$", run.strip())
    )


def _job(workflow: str, job: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text(encoding="utf-8"))
    return {**document["jobs"][job], "workflow_name": document["name"]}


def _runner(
    tmp_path: Path,
    github: Any,
    *,
    workflow: str,
    job: str,
    run: Any | None = None,
    event: str = "push",
) -> Runner:
    """A fresh runner for ``job`` of ``workflow``, with GitHub's variables."""
    workspace = tmp_path / f"{workflow}-{job}-{run.id if run else 'job'}"
    workspace.mkdir()
    summary = tmp_path / f"summary-{workspace.name}.md"
    run_id = str(run.id if run else next(_JOB_RUN_IDS))
    attempt = str(len(run.attempts) if run else 1)
    sha = run.sha if run else "ab" * 20
    github_context = {
        "run_id": run_id,
        "run_attempt": attempt,
        "token": github.token,
        "workspace": str(workspace),
        "action_path": str(REPO),
        "repository": REPOSITORY,
        "event_name": event,
    }
    env = {
        **_user_environment(),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_ATTEMPT": attempt,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SHA": sha,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_JOB": job,
        "GITHUB_WORKFLOW": _job(workflow, job)["workflow_name"],
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": github.base_url,
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(REPO),
        # setup-python puts its Python first on PATH; ours is the installed one.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return Runner(workspace, {"github": github_context, "inputs": {}}, env)


def _user_environment() -> dict[str, str]:
    # Nothing of the session running this suite leaks into the runner's jobs.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GITHUB_", "GATE_TRACKER_", "PYTEST_", "CI"))
    }
    env["COLUMNS"] = "200"
    return env


# -- the three uses, end to end ------------------------------------------------


def _play_gate_runs(tmp_path: Path, github: Any) -> list[tuple[Any, Played, str]]:
    """Two e2e-gate runs on main: a clean pass, then a pass only on rerun.

    Each run is played as its job would run, then its uploaded record is
    served by the fake API as that run's artifact.
    """
    project = tmp_path / "flaky-project"
    shutil.copytree(PROJECTS / "flaky", project)
    (project / ".warm").write_text("warm")
    repository = github.repositories[REPOSITORY]
    start = datetime.now(timezone.utc) - timedelta(hours=3)

    runs = []
    for number in range(2):
        if number == 1:
            (project / ".warm").unlink()  # a cold cache: the test fails once
        run = github.add_run(repository, start + timedelta(hours=number))
        runner = _runner(
            tmp_path, github, workflow="e2e-gate.yml", job="e2e-gate", run=run
        )
        runner.gate_project = project

        played = runner.play(_job("e2e-gate.yml", "e2e-gate"))

        for name, path in played.uploads.items():
            github.add_artifact(run, name, {path.name: path.read_bytes()})
        summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
        runs.append((run, played, summary))
    return runs


def test_the_workflows_run_here_in_order_with_summaries_and_annotations(
    tmp_path: Path, github: Any
) -> None:
    """e2e-gate twice, then the weekly flake report, then the release check.

    One test, because each workflow reads what the ones before it left: the
    records the gate uploaded, collected from the fake GitHub API.
    """
    if shutil.which("make") is None:
        pytest.skip("make is not installed: the gate's step is `make e2e-gate`")

    gate_runs = _play_gate_runs(tmp_path, github)
    _check_gate_runs(gate_runs)
    _check_flake_report(tmp_path, github)
    _check_release_check(tmp_path, github, newest=gate_runs[-1][0])


def _check_gate_runs(gate_runs: list[tuple[Any, Played, str]]) -> None:
    for run, played, summary in gate_runs:
        gate = played.output("Run the gate")
        assert gate.returncode == 0, gate.stdout + gate.stderr
        assert list(played.uploads) == [f"gate-record-{run.id}-1"]
        assert summary.startswith("### gate-tracker: e2e-gate\n")
        assert f"run {run.id} attempt 1" in summary

    clean, flaky = (summary for _, _, summary in gate_runs)
    assert "**✅ pass**" in clean
    assert "Failing and rerun tests" not in clean
    assert "**⚠️ flaky-pass**" in flaky
    assert f"| `{FLAKY_TEST}` | passed | failed → passed |" in flaky


def _check_flake_report(tmp_path: Path, github: Any) -> None:
    runner = _runner(
        tmp_path, github, workflow="flake-report.yml", job="flake-report",
        event="schedule",
    )  # fmt: skip

    played = runner.play(_job("flake-report.yml", "flake-report"))

    collect = played.output("Collect the gate's history")
    report = played.output("Write the weekly flake report")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert report.returncode == 0, report.stdout + report.stderr
    assert not played.failed
    reports = played.uploads[f"flake-report-{runner.env['GITHUB_RUN_ID']}-1"]
    report_md = (reports / "report.md").read_text(encoding="utf-8")
    assert (reports / "index.html").is_file()
    assert FLAKY_TEST in (reports / "summary.json").read_text(encoding="utf-8")
    assert "**0/20 consecutive clean passes - NOT MET**" in report_md
    assert f"| {FLAKY_TEST.replace('_', chr(92) + '_')} | rerun 1 |" in report_md

    summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert report_md.strip() in summary
    assert github.token not in summary + collect.stdout + collect.stderr


def _check_release_check(tmp_path: Path, github: Any, *, newest: Any) -> None:
    runner = _runner(
        tmp_path, github, workflow="release.yml", job="gate-check",
        event="workflow_dispatch",
    )  # fmt: skip

    played = runner.play(_job("release.yml", "gate-check"))

    collect = played.output("Collect the gate's history / Run gate-tracker")
    status = played.output("Check the objective / Run gate-tracker")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert status.returncode == 1, status.stdout + status.stderr
    # The check failed, so the release job, which needs it, never starts.
    assert played.failed
    assert _job("release.yml", "release")["needs"] == "gate-check"

    run = f"run {newest.id} attempt 1 of {newest.sha[:10]}"
    annotations = [line for line in status.stdout.splitlines() if line.startswith("::")]
    assert annotations == [
        "::error title=e2e-gate%3A objective not met::0/20 consecutive clean passes"
        f" - NOT MET; streak ended by {run}: passed only thanks to reruns"
        f" (flaky-pass); strict policy: 1 test passed on rerun: {FLAKY_TEST}",
        "::warning file=test_flaky.py,title=flaky test test_flaky.py%3A%3A"
        f"test_warms_up_a_cache::passed only on rerun in {run}, ending the streak",
    ]
    summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert "**❌ 0/20 consecutive clean passes - NOT MET**" in summary
    assert "CI streak: 2 consecutive green runs" in summary
    assert f"- rerun: `{FLAKY_TEST}`" in summary
    assert summary.count("| ⚠️ flaky-pass |") == 1
    assert summary.count("| ✅ pass |") == 1
    assert github.token not in summary + status.stdout + collect.stdout


def test_the_action_records_a_run_and_lists_flaky_tests_as_documented(
    tmp_path: Path, github: Any
) -> None:
    """The action's record and flaky commands, in a job of another repository."""
    runner = _runner(tmp_path, github, workflow="release.yml", job="gate-check")
    shutil.copytree(PROJECTS / "flaky", runner.workspace, dirs_exist_ok=True)
    job = {
        "steps": [
            {
                "name": "Record",
                "uses": "./",
                "with": {"command": "record", "gate": "g", "args": "-n 2 --reruns 1"},
            },
            {"name": "Flaky", "uses": "./", "with": {"command": "flaky"}},
            {"name": "Typo", "uses": "./", "with": {"command": "flakey"}},
        ]
    }

    played = runner.play(job)

    record = played.output("Record / Run gate-tracker")
    flaky = played.output("Flaky / Run gate-tracker")
    assert record.returncode == 0, record.stdout + record.stderr
    assert "gate-tracker: gate 'g' verdict flaky-pass" in record.stdout
    assert (runner.workspace / "gate-record.json").is_file()
    assert flaky.returncode == 0, flaky.stdout + flaky.stderr
    assert flaky.stdout.startswith(
        "gate g: 1 flaky, 0 broken over 30 days (1 runs, 1 trials, 1 not clean)"
    )
    assert (
        "::warning file=test_flaky.py,line=10,title=flaky test test_flaky.py%3A%3A"
        "test_warms_up_a_cache::new flaky test: rerun 1; failed 1 of 1 runs (100%25);"
        " cost 1 runs"
    ) in flaky.stdout.splitlines()
    typo = played.output("Typo / Run gate-tracker")
    assert typo.returncode == 2
    assert typo.stdout.startswith(
        "::error title=gate-tracker::unknown command 'flakey': use record, status,"
    )
    summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary.startswith("### gate-tracker: g\n")
    assert "### gate-tracker flaky tests: g" in summary
