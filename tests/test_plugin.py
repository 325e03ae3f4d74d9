"""The pytest plugin, exercised through real pytest subprocesses (pytester)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gate_tracker.record_file import read_record
from gate_tracker.storage import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)

FLAKY_ONCE = """
    import pathlib

    def test_flaky(tmp_path_factory):
        flag = pathlib.Path(__file__).parent / "failed-once"
        if not flag.exists():
            flag.write_text("x")
            assert False, "first attempt fails"
"""


@pytest.fixture
def gate_db(pytester: pytest.Pytester) -> str:
    return f"sqlite:///{pytester.path / 'gate.db'}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run outside CI unless they set GitHub's variables themselves."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "GATE_TRACKER_")):
            monkeypatch.delenv(name)


def record(pytester: pytest.Pytester, gate_db: str, *args: str) -> pytest.RunResult:
    """Run pytest in a subprocess, recording the gate ``g`` into ``gate_db``."""
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gate", "g", "--gate-db", gate_db, *args
    )


def runs(gate_db: str) -> list[Any]:
    with Store(gate_db) as store:
        return store.runs("g")


def stored_tests(gate_db: str) -> dict[str, tuple[str, str, str | None]]:
    """Stored tests of the newest run: test id -> (outcome, attempts, worker)."""
    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT test_id, outcome, attempts, worker FROM test_results "
            "WHERE run_id = (SELECT max(id) FROM gate_runs)"
        ).fetchall()
    return {
        test_id: (outcome, attempts, worker)
        for test_id, outcome, attempts, worker in rows
    }


def test_passing_session_is_a_pass_with_header_and_summary(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\ndef test_two(): pass\n")

    result = record(pytester, gate_db)

    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "gate-tracker: recording gate 'g' into sqlite:///*gate.db",
            "gate-tracker: gate 'g' verdict pass (run 1) - 2 tests, none failed or "
            "needed a rerun",
        ]
    )
    [run] = runs(gate_db)
    assert (run.verdict, run.event, run.counts["passed"], run.exit_status) == (
        "pass",
        "local",
        2,
        0,
    )
    assert stored_tests(gate_db) == {
        "test_a.py::test_one": ("passed", "passed", None),
        "test_a.py::test_two": ("passed", "passed", None),
    }


def test_quiet_hides_the_header_and_summary(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")

    result = record(pytester, gate_db, "-q")

    assert "gate-tracker" not in result.stdout.str()
    assert runs(gate_db)[0].verdict == "pass"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_failure_then_pass_on_rerun_is_flaky_pass(
    pytester: pytest.Pytester, gate_db: str, workers: list[str]
) -> None:
    pytester.makepyfile(test_f=FLAKY_ONCE, test_ok="def test_ok(): pass\n")

    result = record(pytester, gate_db, "--reruns", "1", *workers)

    assert result.ret == 0
    [run] = runs(gate_db)
    assert run.verdict == "flaky-pass"
    assert run.counts["rerun"] == 1
    stored = stored_tests(gate_db)
    assert stored["test_f.py::test_flaky"][:2] == ("passed", "failed,passed")
    assert stored["test_ok.py::test_ok"][:2] == ("passed", "passed")
    if workers:
        assert {worker for _, _, worker in stored.values()} <= {"gw0", "gw1"}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_final_failure_is_fail_with_message_and_signature(
    pytester: pytest.Pytester, gate_db: str, workers: list[str]
) -> None:
    pytester.makepyfile(
        test_a="""
        def test_port():
            raise ConnectionError("connect to 127.0.0.1:43121 failed after 0.52s")
        def test_ok():
            pass
        """
    )

    result = record(pytester, gate_db, "--reruns", "1", *workers)

    assert result.ret == 1
    [run] = runs(gate_db)
    assert run.verdict == "fail"
    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        message, signature, attempts = conn.execute(
            "SELECT message, signature, attempts FROM test_results "
            "WHERE outcome = 'failed'"
        ).fetchone()
    assert message == "ConnectionError: connect to 127.0.0.1:43121 failed after 0.52s"
    assert signature == "ConnectionError: connect to <ip>:<n> failed after <n>s"
    assert attempts == "failed,failed"


def test_worker_crash_with_reruns_is_rescheduled_and_recorded_twice(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_crash="""
        import os, pathlib

        def test_crash():
            flag = pathlib.Path(__file__).parent / "crashed-once"
            if not flag.exists():
                flag.write_text("x")
                os._exit(1)
        """
    )

    result = record(pytester, gate_db, "-n", "2", "--reruns", "1")

    assert result.ret == 0
    [run] = runs(gate_db)
    assert run.verdict == "flaky-pass"
    outcome, attempts, _ = stored_tests(gate_db)["test_crash.py::test_crash"]
    assert (outcome, attempts) == ("passed", "crashed,passed")


def test_worker_crash_without_reruns_is_a_failure(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_crash="import os\ndef test_crash():\n    os._exit(1)\n")

    result = record(pytester, gate_db, "-n", "2")

    assert result.ret == 1
    assert runs(gate_db)[0].verdict == "fail"
    assert stored_tests(gate_db)["test_crash.py::test_crash"][:2] == (
        "failed",
        "crashed",
    )


def test_setup_and_teardown_errors_are_errors(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_fixtures="""
        import pytest

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("no database")

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("cleanup failed")

        def test_setup(broken_setup):
            pass

        def test_teardown(broken_teardown):
            pass
        """
    )

    result = record(pytester, gate_db)

    assert result.ret == 1
    stored = stored_tests(gate_db)
    assert stored["test_fixtures.py::test_setup"][:2] == ("error", "error")
    assert stored["test_fixtures.py::test_teardown"][:2] == ("error", "error")
    assert runs(gate_db)[0].counts["error"] == 2


def test_strict_xpass_fails_while_xfail_and_skip_pass(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_marks="""
        import pytest

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        @pytest.mark.xfail(reason="fixed?")
        def test_xpass():
            pass

        @pytest.mark.skip(reason="not here")
        def test_skip():
            pass
        """
    )
    pytester.makepyfile(
        test_strict=(
            "import pytest\n@pytest.mark.xfail(strict=True)\n"
            "def test_strict():\n    pass\n"
        )
    )

    result = record(pytester, gate_db, "test_marks.py")
    second = record(pytester, gate_db, "test_strict.py")

    assert (result.ret, second.ret) == (0, 1)
    first_run, strict_run = sorted(runs(gate_db), key=lambda run: run.id)
    assert first_run.verdict == "pass"
    assert (
        first_run.counts["xfailed"],
        first_run.counts["xpassed"],
        first_run.counts["skipped"],
    ) == (1, 1, 1)
    assert strict_run.verdict == "fail"


def test_exit_first_keeps_what_ran(pytester: pytest.Pytester, gate_db: str) -> None:
    pytester.makepyfile(
        test_a="def test_1(): pass\ndef test_2(): assert 0\ndef test_3(): pass\n"
    )

    result = record(pytester, gate_db, "-x")

    assert result.ret == 1
    [run] = runs(gate_db)
    assert run.verdict == "fail"
    assert set(stored_tests(gate_db)) == {"test_a.py::test_1", "test_a.py::test_2"}


def test_keyboard_interrupt_before_a_failure_is_cancelled(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_a=(
            "def test_1(): pass\ndef test_2(): raise KeyboardInterrupt\n"
            "def test_3(): pass\n"
        )
    )

    result = record(pytester, gate_db)

    assert result.ret == 2
    [run] = runs(gate_db)
    assert run.verdict == "cancelled"
    assert "KeyboardInterrupt" in run.reason
    assert set(stored_tests(gate_db)) == {"test_a.py::test_1"}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-k", "one"], "selection narrowed by -k"),
        (["test_a.py::test_one"], "selection narrowed by node ids"),
        (["--deselect", "test_a.py::test_two"], "selection narrowed by --deselect"),
    ],
)
def test_narrowed_selection_is_incomplete(
    pytester: pytest.Pytester, gate_db: str, args: list[str], reason: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\ndef test_two(): pass\n")

    result = record(pytester, gate_db, *args)

    assert result.ret == 0
    [run] = runs(gate_db)
    assert (run.verdict, run.reason) == ("incomplete", reason)


def test_marker_expression_is_part_of_the_definition(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makeini("[pytest]\nmarkers = smoke: quick checks\n")
    pytester.makepyfile(
        test_a=(
            "import pytest\n@pytest.mark.smoke\ndef test_one(): pass\n"
            "def test_two(): pass\n"
        )
    )

    record(pytester, gate_db, "-m", "smoke")

    [run] = runs(gate_db)
    assert run.verdict == "pass"
    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        selection = json.loads(
            conn.execute("SELECT selection FROM gate_sessions").fetchone()[0]
        )
    assert selection["markexpr"] == "smoke"
    assert selection["narrowed_by"] == []


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_collection_error_is_incomplete(
    pytester: pytest.Pytester, gate_db: str, workers: list[str]
) -> None:
    pytester.makepyfile(
        test_ok="def test_ok(): pass\n", test_broken="import no_such_module\n"
    )

    result = record(pytester, gate_db, *workers)

    assert result.ret != 0
    [run] = runs(gate_db)
    assert run.verdict == "incomplete"
    assert "collection error" in run.reason


def test_no_tests_is_incomplete(pytester: pytest.Pytester, gate_db: str) -> None:
    pytester.makepyfile(test_empty="X = 1\n")

    result = record(pytester, gate_db)

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert runs(gate_db)[0].verdict == "incomplete"


def test_unwritable_database_keeps_a_pending_record_and_the_exit_status(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    bad_url = f"sqlite:///{blocker / 'gate.db'}"

    result = record(pytester, bad_url)

    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*GateTrackerWarning: GT101 run not stored: *; kept it in *pending*.json*"]
    )
    [pending] = (pytester.path / ".gate-tracker" / "pending").glob("*.json")
    kept = read_record(pending)
    assert (kept.verdict, [t.test_id for t in kept.tests]) == (
        "pass",
        ["test_a.py::test_one"],
    )


def test_database_from_a_newer_version_is_left_alone(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")
    Store(gate_db).close()
    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")

    result = record(pytester, gate_db)

    assert result.ret == 0
    result.stdout.fnmatch_lines(["*GT101 run not stored: *newer gate-tracker*"])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM gate_runs").fetchone() == (0,)


def test_recording_off_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    disabled = pytester.runpytest_subprocess("-p", "no:gate_tracker", "--co", "-q")

    assert result.ret == 0 and disabled.ret == 0
    assert "gate-tracker:" not in result.stdout.str()
    assert not (pytester.path / ".gate-tracker").exists()


def test_recording_off_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import sys

        def test_modules():
            heavy = {"sqlalchemy", "github", "matplotlib", "scipy"}
            assert heavy.isdisjoint(sys.modules), heavy & set(sys.modules)
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == 0


def test_session_end_imports_bypass_assertion_rewriting(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    # An installed plugin's whole distribution is marked for rewriting, as the
    # conftest marks it here (an editable install is not); objective stands
    # for any gate-tracker module imported outside the session's end.
    pytester.makeconftest(
        """
        import json, pathlib, sys
        import pytest

        pytest.register_assert_rewrite("gate_tracker")
        import gate_tracker.objective

        def pytest_unconfigure(config):
            hook = config.pluginmanager.rewrite_hook
            loaders = {
                name: type(sys.modules[name].__loader__).__name__
                for name in ("gate_tracker.objective", "gate_tracker.session_store",
                             "gate_tracker.direct_write", "test_a")
            }
            loaders["hooks in sys.meta_path"] = sys.meta_path.count(hook)
            pathlib.Path("loaders.json").write_text(json.dumps(loaders))
        """
    )
    pytester.makepyfile(test_a="def test_one(): assert [1] == [2]\n")

    result = record(
        pytester, gate_db, "-W", "ignore::pytest.PytestAssertRewriteWarning"
    )

    result.stdout.fnmatch_lines(["*At index 0 diff: 1 != 2*"])  # rewritten test
    loaders = json.loads((pytester.path / "loaders.json").read_text())
    assert loaders == {
        "gate_tracker.objective": "AssertionRewritingHook",
        "gate_tracker.session_store": "SourceFileLoader",
        "gate_tracker.direct_write": "SourceFileLoader",
        "test_a": "AssertionRewritingHook",
        "hooks in sys.meta_path": 1,
    }
    assert runs(gate_db)[0].verdict == "fail"


def test_test_file_named_with_undecodable_bytes_is_stored_escaped(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    # Linux file names are bytes: Python hands undecodable ones over as lone
    # surrogates, which neither a database nor a UTF-8 record can hold.
    name = os.fsdecode(b"test_\xff.py")
    (pytester.path / name).write_text("def test_one():\n    assert False\n")

    # pytester decodes pytest's output as UTF-8, which this name is not.
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", name),
            *("--gate", "g", "--gate-db", gate_db, "--gate-record", "record.json"),
        ],
        cwd=pytester.path,
        capture_output=True,
        errors="backslashreplace",
    )

    assert result.returncode == 1
    assert "gate-tracker: warning" not in result.stdout
    assert runs(gate_db)[0].verdict == "fail"
    record_file = read_record(pytester.path / "record.json")
    assert record_file.selection["paths"] == ["test_\\udcff.py"]
    assert [t.test_id for t in record_file.tests] == ["test_\\udcff.py::test_one"]
    assert stored_tests(gate_db) == {
        "test_\\udcff.py::test_one": ("failed", "failed", None)
    }
    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT file FROM test_results").fetchall() == [
            ("test_\\udcff.py",)
        ]


def test_gate_from_ini_and_database_from_environment(
    pytester: pytest.Pytester, gate_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ngate_tracker_gate = g\n")
    pytester.makepyfile(test_a="def test_one(): pass\n")
    monkeypatch.setenv("GATE_TRACKER_DB", gate_db)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == 0
    assert runs(gate_db)[0].verdict == "pass"


def test_default_database_is_under_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_a="def test_one(): pass\n")

    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gate", "g")

    assert (
        runs(f"sqlite:///{pytester.path / '.gate-tracker' / 'gate.db'}")[0].verdict
        == "pass"
    )


def test_record_file_matches_the_stored_run(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_f=FLAKY_ONCE)

    record(pytester, gate_db, "--reruns", "2", "--gate-record", "out/record.json")

    document = json.loads((pytester.path / "out" / "record.json").read_text())
    assert (document["format"], document["version"]) == ("gate-tracker-record", 1)
    session = document["session"]
    assert session["verdict"] == "flaky-pass"
    assert session["reruns"] == 2
    assert session["tests"][0]["attempts"] == ["failed", "passed"]
    assert session["counts"]["passed"] == 1


def test_github_actions_context_and_shards_form_one_run(
    pytester: pytest.Pytester, gate_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_a="def test_one(): pass\n", test_b="def test_two(): assert 0\n"
    )
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "777",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
        "GITHUB_WORKFLOW": "e2e",
        "GITHUB_JOB": "e2e-gate",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    for name, value in github.items():
        monkeypatch.setenv(name, value)

    record(pytester, gate_db, "test_a.py", "--gate-shard", "1/2")
    record(pytester, gate_db, "test_b.py", "--gate-shard", "2/2")
    record(pytester, gate_db, "test_b.py", "--gate-shard", "2/2")

    [run] = runs(gate_db)
    assert (run.repository, run.ci_run_id, run.attempt, run.event, run.branch) == (
        "acme/shop",
        "777",
        2,
        "push",
        "main",
    )
    assert run.commit == "a" * 40
    assert run.url == "https://github.com/acme/shop/actions/runs/777/attempts/2"
    assert (run.sessions, run.verdict, run.counts["passed"], run.counts["failed"]) == (
        2,
        "fail",
        1,
        1,
    )


def test_secrets_in_arguments_are_not_stored(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makeconftest(
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--api-token')\n"
        "    parser.addoption('--target')\n"
    )
    pytester.makepyfile(test_a="def test_one(): pass\n")

    record(
        pytester,
        gate_db,
        "--api-token",
        "hunter2",
        "--target",
        "https://user:pa55word@example.test/",
    )

    path = gate_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        args = json.loads(conn.execute("SELECT args FROM gate_sessions").fetchone()[0])
    assert "hunter2" not in json.dumps(args) and "pa55word" not in json.dumps(args)
    assert args[args.index("--api-token") + 1] == "[REDACTED]"


def test_recording_twice_into_one_database_stores_two_runs(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")

    record(pytester, gate_db)
    record(pytester, gate_db)

    assert [run.verdict for run in runs(gate_db)] == ["pass", "pass"]


def test_fail_on_flaky_exit_status_is_the_final_one(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_f=FLAKY_ONCE)

    result = record(pytester, gate_db, "--reruns", "1", "--fail-on-flaky")

    [run] = runs(gate_db)
    assert (run.verdict, run.exit_status) == ("flaky-pass", result.ret)
    assert result.ret == 7


def test_pending_record_imports_later(pytester: pytest.Pytester, gate_db: str) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")
    blocker = pytester.path / "blocker"
    blocker.write_text("")
    record(pytester, f"sqlite:///{blocker / 'x.db'}")
    [pending] = (pytester.path / ".gate-tracker" / "pending").glob("*.json")

    first = pytester.run(
        sys.executable,
        "-m",
        "gate_tracker",
        "--db",
        gate_db,
        "import",
        "record",
        str(pending),
    )
    again = pytester.run(
        sys.executable,
        "-m",
        "gate_tracker",
        "--db",
        gate_db,
        "import",
        "record",
        str(pending),
    )

    assert (first.ret, again.ret) == (0, 0)
    first.stdout.fnmatch_lines(["*: g pass, 1 test, stored as run 1"])
    again.stdout.fnmatch_lines(["*: g pass, 1 test, already stored in run 1"])
    assert len(runs(gate_db)) == 1


def test_broken_record_file_is_named_in_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"format": "gate-tracker-record", "version": 1, "session": {"gate": 3}}'
    )
    database = f"sqlite:///{tmp_path / 'gate.db'}"

    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gate_tracker",
            "--db",
            database,
            "import",
            "record",
            str(broken),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert f"{broken}: field session.verdict: missing" in result.stderr


def test_sigterm_ends_the_session_through_pytest_and_keeps_what_ran(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_a="""
        import os, signal

        def test_1():
            pass

        def test_2():
            os.kill(os.getpid(), signal.SIGTERM)

        def test_3():
            pass
        """
    )

    result = record(pytester, gate_db)

    assert result.ret == pytest.ExitCode.INTERRUPTED
    [run] = runs(gate_db)
    assert (run.verdict, run.reason) == (
        "cancelled",
        "interrupted (SIGTERM) before any failure",
    )
    assert set(stored_tests(gate_db)) == {"test_a.py::test_1"}


def test_pytest_exit_is_incomplete_not_cancelled(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_a="import pytest\ndef test_1():\n    pytest.exit('staging is down')\n"
    )

    record(pytester, gate_db)

    [run] = runs(gate_db)
    assert (run.verdict, run.reason) == (
        "incomplete",
        "stopped by pytest.exit(): staging is down",
    )


def test_all_tests_skipped_is_incomplete(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(
        test_a="import pytest\npytestmark = pytest.mark.skip('no server')\n"
        "def test_1(): pass\ndef test_2(): pass\n"
    )

    record(pytester, gate_db)

    [run] = runs(gate_db)
    assert (run.verdict, run.reason) == (
        "incomplete",
        "no test ran: all 2 tests were skipped",
    )


def test_secrets_in_test_ids_are_redacted_and_still_complete(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    token = "ghp_" + "a" * 36
    pytester.makepyfile(
        test_a=f"import pytest\n@pytest.mark.parametrize('t', ['{token}'])\n"
        "def test_login(t): pass\n"
    )

    record(pytester, gate_db, "--gate-record", "record.json")

    [run] = runs(gate_db)
    assert run.verdict == "pass"
    assert list(stored_tests(gate_db)) == ["test_a.py::test_login[[REDACTED]]"]
    assert token not in (pytester.path / "record.json").read_text()


def test_recording_options_without_a_gate_are_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")

    result = pytester.runpytest_subprocess("--gate-record", "r.json")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--gate-record needs a gate to record: add --gate NAME*"]
    )


def test_an_overlong_shard_name_is_a_usage_error(
    pytester: pytest.Pytester, gate_db: str
) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")

    result = record(pytester, gate_db, "--gate-shard", "s" * 101)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the shard name is longer than 100 characters*"])


def test_a_plain_path_is_a_sqlite_database(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")

    pytester.runpytest_subprocess("--gate", "g", "--gate-db", "dbs/gate.db")

    assert runs(f"sqlite:///{pytester.path / 'dbs' / 'gate.db'}")[0].verdict == "pass"
