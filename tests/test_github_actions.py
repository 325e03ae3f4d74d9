"""Tests for gate_tracker.github_actions: job summaries and annotations."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gate_tracker.github_actions import (
    ANNOTATIONS_SHOWN,
    SUMMARY_LIMIT_BYTES,
    TESTS_SHOWN,
    annotation_location,
    append_step_summary,
    capped_annotations,
    error_annotation,
    escape_markdown,
    in_github_actions,
    notice_annotation,
    session_summary_markdown,
    warning_annotation,
)
from gate_tracker.records import SessionRecord, TestRecord
from gate_tracker.storage import Store
from tests.job_summaries import actions_env, cells, render

SessionFactory = Callable[..., SessionRecord]
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


# -- detection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GITHUB_ACTIONS": "true"}, True),
        ({"GITHUB_ACTIONS": "false"}, False),
        ({"GITHUB_ACTIONS": "1"}, False),
        ({"CI": "true"}, False),
        ({}, False),
    ],
)
def test_only_github_actions_own_variable_set_to_true_counts(
    environ: dict[str, str], expected: bool
) -> None:
    assert in_github_actions(environ) is expected


# -- the summary file ------------------------------------------------------------


def test_summary_is_appended_after_earlier_steps_with_a_blank_line(
    tmp_path: Path,
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")

    written = append_step_summary("### mine\n\nbody", actions_env(summary))

    assert written is True
    assert summary.read_text(encoding="utf-8") == (
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n### mine\n\nbody\n"
    )


def test_summary_starts_a_missing_file_without_a_leading_blank_line(
    tmp_path: Path,
) -> None:
    summary = tmp_path / "step_summary.md"

    assert append_step_summary("hello\n\n\n", actions_env(summary)) is True

    assert summary.read_text(encoding="utf-8") == "hello\n"


def test_nothing_is_written_outside_github_actions(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    environ = {"GITHUB_STEP_SUMMARY": str(summary)}

    assert append_step_summary("hello", environ) is False

    assert not summary.exists()


def test_nothing_is_written_when_github_gives_no_summary_file() -> None:
    assert append_step_summary("hello", {"GITHUB_ACTIONS": "true"}) is False


def test_secrets_are_redacted_before_reaching_the_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"

    append_step_summary(f"token {TOKEN} and password=hunter2", actions_env(summary))

    text = summary.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert "hunter2" not in text
    assert "[REDACTED]" in text


def test_an_unwritable_summary_is_a_logged_warning_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    summary = tmp_path / "a-directory"
    summary.mkdir()

    with caplog.at_level(logging.WARNING, logger="gate_tracker.github_actions"):
        written = append_step_summary("hello", actions_env(summary))

    assert written is False
    assert f"cannot append to the job summary {summary}" in caplog.text


def test_a_summary_that_would_pass_githubs_limit_is_cut_at_a_line_end(
    tmp_path: Path,
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_bytes(b"x" * (SUMMARY_LIMIT_BYTES - 1000) + b"\n")
    markdown = "\n".join(f"line {number:04d} é" for number in range(500))

    written = append_step_summary(markdown, actions_env(summary))

    data = summary.read_bytes()
    assert written is True
    assert len(data) <= SUMMARY_LIMIT_BYTES
    text = data.decode("utf-8")
    assert text.endswith("job summary limit.*\n")
    kept = [line for line in text.splitlines() if line.startswith("line ")]
    assert kept[0] == "line 0000 é"
    assert re.fullmatch(r"line \d{4} é", kept[-1])
    assert 10 < len(kept) < 500


def test_a_full_summary_gets_nothing_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_bytes(b"x" * SUMMARY_LIMIT_BYTES)

    with caplog.at_level(logging.WARNING, logger="gate_tracker.github_actions"):
        written = append_step_summary("hello", actions_env(summary))

    assert written is False
    assert summary.stat().st_size == SUMMARY_LIMIT_BYTES
    assert "is full" in caplog.text


# -- annotations -------------------------------------------------------------------


def test_error_annotation_with_every_property() -> None:
    line = error_annotation(
        "14/20 consecutive clean passes",
        title="e2e-gate objective NOT MET",
        file="e2e/test_cli.py",
        line=12,
    )

    assert line == (
        "::error file=e2e/test_cli.py,line=12,title=e2e-gate objective NOT MET"
        "::14/20 consecutive clean passes"
    )


def test_annotation_without_properties_has_no_space_before_the_message() -> None:
    assert warning_annotation("careful") == "::warning::careful"
    assert notice_annotation("note") == "::notice::note"


def test_annotation_message_escapes_percent_and_line_breaks() -> None:
    line = error_annotation("100% broken\r\nnext line\n::error::injected")

    assert line == "::error::100%25 broken%0D%0Anext line%0A::error::injected"
    assert "\n" not in line


def test_annotation_properties_escape_colons_and_commas_too() -> None:
    line = warning_annotation(
        "msg", title="a: b, c\n%", file="tests/odd,name:x.py", line=3
    )

    assert line == (
        "::warning file=tests/odd%2Cname%3Ax.py,line=3,title=a%3A b%2C c%0A%25::msg"
    )


def test_annotation_line_needs_a_file_and_a_positive_number() -> None:
    assert warning_annotation("m", line=4) == "::warning::m"
    assert warning_annotation("m", file="a.py", line=0) == "::warning file=a.py::m"


def test_annotation_title_and_message_are_redacted() -> None:
    line = error_annotation(f"failed with {TOKEN}", title=f"token={TOKEN}")

    assert TOKEN not in line
    assert line.count("[REDACTED]") == 2


def test_capped_annotations_keep_nine_and_count_the_rest() -> None:
    annotations = [warning_annotation(f"flaky {number}") for number in range(14)]

    capped = capped_annotations(annotations)

    assert len(capped) == ANNOTATIONS_SHOWN
    assert capped[:9] == annotations[:9]
    assert capped[-1] == "::warning::and 5 more"


def test_capped_annotations_leave_ten_or_fewer_alone() -> None:
    annotations = [error_annotation(f"e {number}") for number in range(10)]

    assert capped_annotations(annotations, "error") == annotations


def test_annotation_location_prefers_the_recorded_file_and_line() -> None:
    located = TestRecord(
        "tests/test_a.py::TestX::test_y", "failed", ["failed"], file="src/a.py", line=7
    )
    unlocated = TestRecord("e2e/test_b.py::test_z[1]", "failed", ["failed"])
    odd = TestRecord("not a node id", "failed", ["failed"])

    assert annotation_location(located) == ("src/a.py", 7)
    assert annotation_location(unlocated) == ("e2e/test_b.py", None)
    assert annotation_location(odd) == (None, None)


# -- Markdown ----------------------------------------------------------------------


def test_escaped_text_renders_literally_even_inside_a_table_cell() -> None:
    hostile = "<script>alert(1)</script> | *bold* _it_ [link](http://x) `code` &amp;"

    html = render(f"| cell |\n|---|\n| {escape_markdown(hostile)} |\n")

    assert "<script>" not in html
    assert cells(html)[1] == [
        "&lt;script&gt;alert(1)&lt;/script&gt; | *bold* _it_ [link](http://x) "
        "`code` &amp;amp;"
    ]


def test_escaped_text_is_one_line() -> None:
    assert escape_markdown("first\r\nsecond\nthird\n") == "first second third"


# -- the session summary -------------------------------------------------------------


def test_passing_session_summary_shows_verdict_counts_and_provenance(
    make_session: SessionFactory,
) -> None:
    session = make_session(3, verdict="pass", run_id="777", attempt=2)
    session.reason = "1 test passed on the first attempt"

    markdown = session_summary_markdown(session)

    html = render(markdown)
    assert markdown.startswith("### gate-tracker: e2e-gate\n")
    assert "<strong>✅ pass</strong>: 1 test passed on the first attempt" in html
    assert cells(html)[:2] == [
        [
            "verdict",
            "tests",
            "passed",
            "failed",
            "error",
            "skipped",
            "xfailed",
            "xpassed",
            "rerun",
            "duration",
        ],
        ["✅ pass", "1", "1", "0", "0", "0", "0", "0", "0", "1 min 00 s"],
    ]
    assert (
        'commit 000000300000 · on main · event push · <a href="'
        'https://github.com/acme/shop/actions/runs/777">run 777 attempt 2</a>'
    ) in html
    assert "Failing and rerun tests" not in markdown


def test_failing_session_summary_lists_failures_before_reruns(
    make_session: SessionFactory,
) -> None:
    tests = [
        TestRecord("tests/test_a.py::test_ok", "passed", ["passed"]),
        TestRecord("tests/test_a.py::test_flaky", "passed", ["failed", "passed"]),
        TestRecord(
            "tests/test_a.py::test_broken",
            "failed",
            ["failed", "failed"],
            message="AssertionError: assert 1 == 2",
        ),
    ]
    session = make_session(verdict="fail", tests=tests, shard="2/4")

    html = render(session_summary_markdown(session))

    assert "<h3>gate-tracker: e2e-gate (shard 2/4)</h3>" in html
    assert "<h4>Failing and rerun tests (2)</h4>" in html
    assert cells(html)[1][:4] == ["❌ fail", "3", "2", "1"]
    assert cells(html)[2:] == [
        ["test", "outcome", "attempts", "message"],
        [
            "<code>tests/test_a.py::test_broken</code>",
            "failed",
            "failed → failed",
            "AssertionError: assert 1 == 2",
        ],
        ["<code>tests/test_a.py::test_flaky</code>", "passed", "failed → passed", "-"],
    ]


def test_hostile_test_ids_and_messages_cannot_break_the_table(
    make_session: SessionFactory,
) -> None:
    tests = [
        TestRecord(
            "tests/test_x.py::test_p[a|b-<img src=x>-`tick`]",
            "failed",
            ["failed"],
            message=f"line one | <b>two</b>\nline three {TOKEN}",
        )
    ]
    session = make_session(verdict="fail", tests=tests)

    markdown = session_summary_markdown(session)

    html = render(markdown)
    assert "<img" not in html
    assert "<b>" not in html
    assert TOKEN not in markdown
    row = cells(html)[-1]
    assert row == [
        "<code>tests/test_x.py::test_p[a|b-&lt;img src=x&gt;-`tick`]</code>",
        "failed",
        "failed",
        "line one | &lt;b&gt;two&lt;/b&gt; line three [REDACTED]",
    ]


def test_long_lists_of_failures_are_cut_with_a_count(
    make_session: SessionFactory,
) -> None:
    tests = [
        TestRecord(f"tests/test_many.py::test_{n:03d}", "failed", ["failed"])
        for n in range(TESTS_SHOWN + 7)
    ]
    session = make_session(verdict="fail", tests=tests)

    markdown = session_summary_markdown(session)

    assert f"Failing and rerun tests ({TESTS_SHOWN + 7})" in markdown
    assert markdown.count("tests/test_many.py::") == TESTS_SHOWN
    assert markdown.rstrip().endswith("…and 7 more in the run's record.")


def test_long_messages_are_shortened_in_the_table(make_session: SessionFactory) -> None:
    tests = [TestRecord("t.py::test_long", "error", ["error"], message="x" * 500)]
    session = make_session(verdict="fail", tests=tests)

    row = cells(render(session_summary_markdown(session)))[-1]

    assert row[3] == "x" * 199 + "…"


# -- the plugin: a summary of every recorded session -----------------------------------


SUITE = """
    import pathlib

    def test_ok():
        pass

    def test_flaky():
        flag = pathlib.Path(__file__).parent / "failed-once"
        if not flag.exists():
            flag.write_text("x")
            assert False, "first attempt fails"

    def test_broken():
        assert 1 == 2, "<b>broken</b> | for good"
"""


def _github_job(monkeypatch: pytest.MonkeyPatch, summary: Path) -> None:
    for name, value in {
        **actions_env(summary),
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "f" * 40,
        "GITHUB_REF_NAME": "main",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GATE_TRACKER_DB", raising=False)


def test_recorded_session_appends_its_table_to_the_job_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    _github_job(monkeypatch, summary)
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gate", "g", "--gate-db",
        f"sqlite:///{pytester.path / 'gate.db'}", "--reruns", "1",
    )  # fmt: skip

    assert result.ret == 1
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n\n### gate-tracker: g\n")
    html = render(text)
    rows = cells(html)
    assert rows[1][:9] == ["❌ fail", "3", "2", "1", "0", "0", "0", "0", "2"]
    assert rows[2:] == [
        ["test", "outcome", "attempts", "message"],
        [
            "<code>test_suite.py::test_broken</code>",
            "failed",
            "failed → failed",
            "AssertionError: &lt;b&gt;broken&lt;/b&gt; | for good",
        ],
        [
            "<code>test_suite.py::test_flaky</code>",
            "passed",
            "failed → passed",
            "AssertionError: first attempt fails",
        ],
    ]
    assert (
        '<a href="https://github.com/acme/shop/actions/runs/4242/attempts/1">'
        "run 4242 attempt 1</a>"
    ) in html


def test_an_unwritable_job_summary_leaves_the_session_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "not-a-file"
    summary.mkdir()
    _github_job(monkeypatch, summary)
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    db = f"sqlite:///{pytester.path / 'gate.db'}"

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "--gate", "g", "--gate-db", db
    )

    assert result.ret == 0
    result.stdout.fnmatch_lines(["gate-tracker: gate 'g' verdict pass (run 1)*"])
    with Store(db) as store:
        assert [run.verdict for run in store.runs("g")] == ["pass"]
