"""Secrets planted everywhere a run touches never reach what gate-tracker writes.

Failing tests put tokens in their messages, captured output and logs; the
session gets secrets in its environment and arguments; the database URL has
a password. The whole flow runs (record, import, collect, report, metrics,
logs), then every file gate-tracker wrote, every line it printed and every
database row are searched for each secret.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fake_github import FakeGitHub, FakeJob

from gate_tracker.cli import main

TIMEOUT_S = 120

SECRETS = {
    "github token": "ghp_" + "Zq8XkR2mW4nB6vC1dF3gH5jK7lP9sT0uY2aE",
    "fine-grained token": "github_pat_"
    + "11AAAAAAA0"
    + "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz" * 2,
    "aws key id": "AKIA" + "Q4WXYZ7ABCDEFGH2",
    "aws secret": "sEcReT/" + "K7MDENGbPxRfiCYq1w2e3r4t5y6u7i8o9p0a",
    "gcp key": "AIza" + "SyB-9876543210zyxwvutsrqponmlkjihgf",
    "slack token": "xoxb-" + "2048-4096-Qp9Wo8Ie7Ru6Ty5",
    "stripe key": "sk_live_" + "51HxYzAbCdEfGhIjKlMnOpQr",
    "jwt": "eyJhbGciOiJIUzI1NiJ9."
    + "eyJzdWIiOiJjaS1ib3QifQ."
    + "Xk2vQ9rT4mN7pL1sW8yB3cF6hJ0dG5aZ",
    "bearer": "Bearer " + "opaque-bearer-" + "7f3k9q2m5x8w1z4v",
    "password pair": "Pa55-w0rd-" + "from-password-pair",
    "api key pair": "api-key-value-" + "0a9b8c7d6e5f",
    "url password": "url-pass-" + "4f8e2d6c",
    "env secret": "env-only-secret-" + "91c3e7a5",
    "argument secret": "arg-secret-" + "c0ffee42",
    "database password": "Db-Pass-" + "8d1e5f",
}

_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--api-token")
    parser.addoption("--service-password")
    parser.addoption("--service-url")
"""

_TESTS = f"""
import logging
import os
import sys

def test_passes():
    pass

def test_token_in_the_message():
    token = {SECRETS["github token"]!r}
    other = "{SECRETS["fine-grained token"]}"
    raise PermissionError("GitHub refused " + token + " and " + other)

def test_secrets_in_captured_output():
    print("AWS_SECRET_ACCESS_KEY={SECRETS["aws secret"]} id {SECRETS["aws key id"]}")
    print("password={SECRETS["password pair"]}", file=sys.stderr)
    logging.getLogger("app").warning("calling with {SECRETS["jwt"]}")
    assert False, "slack {SECRETS["slack token"]} stripe {SECRETS["stripe key"]}"

def test_headers_and_urls():
    headers = {{"Authorization": "{SECRETS["bearer"]}"}}
    url = "https://deploy:{SECRETS["url password"]}@deploy.acme.io/hook"
    url += "?api_key={SECRETS["api key pair"]}"
    assert headers == {{}}, url + " key={SECRETS["gcp key"]}"

def test_environment_secret():
    assert os.environ["SERVICE_SECRET"] != "{SECRETS["env secret"]}", "env leaked"
"""


def _search(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def _environment(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GATE_TRACKER_")) and key != "CI"
    }
    return {
        **env,
        "SERVICE_SECRET": SECRETS["env secret"],
        "AWS_SECRET_ACCESS_KEY": SECRETS["aws secret"],
        # Only our plugin loads in the session, for a faster start.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        **extra,
    }


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put gate-tracker's logger back as it was after in-process commands."""
    logger = logging.getLogger("gate_tracker")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def _gate_tracker(url: str, *args: str, env: dict[str, str]) -> Result:
    # In process, for speed: the environment is set for the command's run.
    arguments = ["--db", url, "--log-format", "json", "-vv", *args]
    return CliRunner().invoke(main, arguments, env=env)


def _database_text(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row))
                for table in sa.inspect(conn).get_table_names()
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgresql
def test_no_planted_secret_reaches_anything_gate_tracker_writes(
    pg_url: str,
    fake_github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli_logging: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    url = (
        sa.engine.make_url(pg_url)
        .set(password=SECRETS["database password"])
        .render_as_string(hide_password=False)
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(_CONFTEST)
    (project / "test_e2e.py").write_text(_TESTS)
    out = tmp_path / "out"
    out.mkdir()
    secret_args = [
        f"--api-token={SECRETS['github token']}",
        "--service-password",
        SECRETS["argument secret"],
        f"--service-url=https://ci:{SECRETS['url password']}@svc.acme.io/",
    ]
    env = _environment(GITHUB_TOKEN=fake_github.token)

    # Record: the plugin writes the database and a JSON record.
    session = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA"),
            *("-p", "gate_tracker.plugin"),
            *("--gate", "e2e-gate", "--gate-db", url),
            *("--gate-record", str(out / "record.json")),
            *("--junitxml", str(tmp_path / "pytest-junit.xml"), *secret_args),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    junit = (tmp_path / "pytest-junit.xml").read_bytes()

    # Import: the record again, and pytest's own JUnit XML, secrets and all.
    commands = [
        ("import record", ["import", "record", str(out / "record.json")]),
        (
            "import junit",
            [
                "import",
                "junit",
                "--gate",
                "e2e-gate",
                str(tmp_path / "pytest-junit.xml"),
            ],
        ),
    ]

    # Collect: two CI runs whose artifacts hold the JUnit XML and the record.
    repository = fake_github.repositories["acme/shop"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = fake_github.add_run(
        repository, now - timedelta(hours=2), [FakeJob("e2e-gate", "failure")]
    )
    second = fake_github.add_run(
        repository, now - timedelta(hours=1), [FakeJob("e2e-gate", "failure")]
    )
    fake_github.add_artifact(first, f"e2e-junit-{first.id}-1", {"junit.xml": junit})
    fake_github.add_artifact(
        second,
        f"gate-record-{second.id}-1",
        {"record.json": (out / "record.json").read_bytes()},
    )
    commands += [
        (
            "collect",
            [
                *fake_github.collect_args(),
                *("--gate", "e2e-gate", "--no-progress", "--request-interval", "0"),
            ],
        ),
        ("status", ["status", "--gate", "e2e-gate", "--branch", "*", "--json"]),
        ("runs", ["runs", "--gate", "e2e-gate", "--branch", "*"]),
        ("flaky", ["flaky", "--gate", "e2e-gate", "--branch", "*"]),
        ("report", ["report", "--gate", "e2e-gate", "--out", str(out / "report")]),
        ("metrics", ["metrics", "--out", str(out / "metrics.txt")]),
        ("db current", ["db", "current"]),
    ]
    results = {name: _gate_tracker(url, *args, env=env) for name, args in commands}

    # The planted secrets did reach the places a leak would come from.
    assert session.returncode == 1, session.stdout + session.stderr
    assert "GitHub refused " + SECRETS["github token"] in session.stdout
    assert SECRETS["aws secret"].encode() in junit
    for name, result in results.items():
        assert result.exit_code in (0, 1), f"{name}: {result.output}"
    assert results["collect"].exit_code == 0, results["collect"].output
    assert "collected 2 runs" in results["collect"].stdout

    leaks: dict[str, list[str]] = {}
    ours = [line for line in session.stdout.splitlines() if "gate-tracker" in line]
    leaks["pytest lines of gate-tracker"] = _search("\n".join(ours))
    for name, result in results.items():
        leaks[f"{name} stdout"] = _search(result.stdout)
        leaks[f"{name} stderr"] = _search(result.stderr)
    written = [path for path in out.rglob("*") if path.is_file()]
    assert {p.name for p in written} >= {"record.json", "report.md", "metrics.txt"}
    for path in written:
        leaks[str(path.relative_to(tmp_path))] = _search(
            path.read_bytes().decode("utf-8", "replace")
        )
    stored = _database_text(pg_url)
    leaks["database rows"] = _search(stored)

    assert {where: found for where, found in leaks.items() if found} == {}
    assert "[REDACTED]" in stored
    assert stored.count("test_token_in_the_message") >= 2
