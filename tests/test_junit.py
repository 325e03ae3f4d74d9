"""JUnit XML import: real tools' reports, identity, attempts, odd values, safety."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa

from gate_tracker.exceptions import InputError
from gate_tracker.junit import (
    junit_record_id,
    junit_test_id,
    parse_timestamp,
    read_junit_path,
    read_junit_paths,
    session_from_junit,
)
from gate_tracker.junit_testcases import MAX_ATTEMPTS, MAX_DEPTH, read_duration
from gate_tracker.recording import LONGREPR_LIMIT
from gate_tracker.records import CIContext, SessionRecord, TestRecord
from gate_tracker.redaction import redact
from gate_tracker.schema import test_results
from gate_tracker.storage import Store
from tests.conftest import CORPUS, DATA

JUNIT_CORPUS = CORPUS / "A-junit-xml"
JUNIT_DATA = DATA / "junit"
T_START = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


def _read(xml: str, **options: object) -> tuple[SessionRecord, list[str]]:
    options.setdefault("started_at", T_START)
    return session_from_junit(
        [("report.xml", xml.encode("utf-8"))], gate="e2e", **options
    )


def _tests(xml: str) -> dict[str, TestRecord]:
    session, _warnings = _read(xml)
    return {test.test_id: test for test in session.tests}


def _suite(*cases: str, attrs: str = 'name="pytest"') -> str:
    body = "\n".join(cases)
    return (
        f'<?xml version="1.0"?>\n<testsuites>\n<testsuite {attrs}>\n{body}\n'
        "</testsuite>\n</testsuites>\n"
    )


# -- the corpus: every file imports with its real counts, or fails clearly --------


@dataclass(frozen=True)
class Counts:
    """What a report holds, counted by reading it, under the documented rules."""

    tests: int
    verdict: str
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    xfailed: int = 0
    rerun: int = 0


@dataclass(frozen=True)
class Broken:
    """A report that must be refused: words the error says, and the line."""

    says: str
    line: int | None = None


EXPECTED: dict[str, Counts | Broken] = {
    # Four testcases with no attributes at all: one each of pass, skip, failure, error.
    "EnricoMi__publish-unit-test-result-action/no-attributes.xml": Counts(
        4, "fail", passed=1, failed=1, error=1, skipped=1
    ),
    # Cases at three nesting levels, all passing.
    "EnricoMi__publish-unit-test-result-action/testsuite-in-testsuite.xml": Counts(
        5, "pass", passed=5
    ),
    "EnricoMi__publish-unit-test-result-action/unsupported-unicode.xml": Counts(
        7, "fail", passed=1, failed=2, error=2, skipped=2
    ),
    # Bazel's wrapper: one testcase with an <error>.
    "EnricoMi__publish-unit-test-result-action/suite-logs.xml": Counts(
        1, "fail", error=1
    ),
    "EnricoMi__publish-unit-test-result-action/corrupt-xml.xml": Broken(
        "not well-formed XML", line=11
    ),
    "EnricoMi__publish-unit-test-result-action/non-junit.xml": Broken(
        "root element is <suites>", line=2
    ),
    # The suite claims 6 tests but lists none: nothing ran that we can see.
    "EnricoMi__publish-unit-test-result-action/no-cases-but-tests.xml": Counts(
        0, "incomplete"
    ),
    "EnricoMi__publish-unit-test-result-action/xunit.xml": Counts(2, "pass", passed=2),
    # tst: 17 + 14 cases; status='disabled' counts as skipped.
    "EnricoMi__publish-unit-test-result-action/disabled.xml": Counts(
        31, "fail", passed=6, failed=19, error=1, skipped=5
    ),
    "EnricoMi__publish-unit-test-result-action/junit.gloo.elastic.spark.tf.xml": Counts(
        22, "pass", passed=20, skipped=2
    ),
    # Surefire: error + 3 rerunError, failure + 3 rerunFailure, two flaky passes.
    "EnricoMi__publish-unit-test-result-action/flaky.xml": Counts(
        4, "fail", passed=2, failed=1, error=1, rerun=4
    ),
    "EnricoMi__publish-unit-test-result-action/empty.xml": Broken("file is empty"),
    "mikepenz__action-junit-report/container-structure-test.xml": Counts(
        3, "pass", passed=3
    ),
    "mikepenz__action-junit-report/perl-result.xml": Counts(1, "pass", passed=1),
    # status="disabled" yet holding a <failure>: the failure counts.
    "mikepenz__action-junit-report/testFailedDisabled.xml": Counts(1, "fail", failed=1),
    # 4239 testcases in 400 suites (one per file). Too many to count by eye, so
    # these were counted with a throwaway ElementTree script keyed by
    # (suite name, classname, name): 31 keys repeat within their suite (97
    # extra testcases), which the rules read as attempts of one test.
    "dorny__test-reporter/jest-test-results.xml": Counts(
        4142, "fail", passed=4110, failed=2, skipped=30, rerun=31
    ),
    "dorny__test-reporter/jest-junit.xml": Counts(
        6, "fail", passed=1, failed=4, skipped=1
    ),
    "dorny__test-reporter/python-xunit-pytest.xml": Counts(
        10, "fail", passed=6, failed=2, skipped=1, xfailed=1
    ),
    # The same classname and name twice: one test, two attempts.
    "jenkinsci__junit-plugin/junit-report-bad-duration.xml": Counts(
        1, "flaky-pass", passed=1, rerun=1
    ),
    # Same names under different class names stay eight tests.
    "jenkinsci__junit-plugin/junit-report-testsuite-time-attrs.xml": Counts(
        8, "pass", passed=8
    ),
    # Two flakyFailure elements, then a pass.
    "jenkinsci__junit-plugin/TEST-io.olamy.FlakyTest.xml": Counts(
        1, "flaky-pass", passed=1, rerun=1
    ),
    "jenkinsci__junit-plugin/junit-report-empty-testcasename.xml": Counts(
        1, "fail", failed=1
    ),
    # Two passing cases and an <error> directly in a third-level suite.
    "jenkinsci__junit-plugin/junit-report-nested-testsuites.xml": Counts(
        3, "fail", passed=2, error=1
    ),
    "jenkinsci__flaky-test-handler-plugin/flaky-report-1.xml": Counts(
        5, "fail", passed=4, failed=1, rerun=2
    ),
    "gmazzo__publish-report-annotations/TEST-emulator-_app-.xml": Counts(
        3, "fail", passed=2, failed=1
    ),
    # Three "[build failed]"/"[setup failed]" pseudo-cases in three packages.
    "jstemmer__go-junit-report/013-report.xml": Counts(5, "fail", passed=2, error=3),
    "jstemmer__go-junit-report/012-report.xml": Counts(
        11, "fail", passed=6, failed=4, skipped=1
    ),
    # 1 + 0 + 18 + 12 + 29 cases in five package suites.
    "gotestyourself__gotestsum/junitxml-report.golden": Counts(
        60, "fail", passed=42, failed=13, skipped=5
    ),
}

needs_corpus = pytest.mark.skipif(
    not JUNIT_CORPUS.is_dir(),
    reason=f"the JUnit corpus is not here ({JUNIT_CORPUS}); it ships beside the repo",
)


@needs_corpus
def test_the_expectations_cover_every_corpus_file() -> None:
    files = {
        str(path.relative_to(JUNIT_CORPUS))
        for path in JUNIT_CORPUS.rglob("*")
        if path.is_file()
    }

    assert files == set(EXPECTED)


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_corpus_file_imports_with_its_real_counts_or_fails_clearly(
    name: str,
) -> None:
    expected = EXPECTED[name]
    path = JUNIT_CORPUS / name

    if isinstance(expected, Broken):
        with pytest.raises(InputError) as raised:
            session_from_junit(read_junit_path(path).documents, gate="e2e")
        message = str(raised.value)
        assert message.startswith(str(path))
        assert expected.says in message
        if expected.line is not None:
            assert f" line {expected.line}:" in message
        return

    session, _warnings = session_from_junit(
        read_junit_path(path).documents, gate="e2e", started_at=T_START
    )
    counts = session.counts()
    assert len(session.tests) == expected.tests
    assert len({test.test_id for test in session.tests}) == expected.tests
    assert session.verdict == expected.verdict
    assert {k: v for k, v in counts.items() if v} == {
        k: v for k, v in vars(expected).items() if k not in ("tests", "verdict") and v
    }


# -- attempts ---------------------------------------------------------------------


def test_repeated_testcases_become_attempts_in_document_order() -> None:
    tests = _tests(
        _suite(
            '<testcase classname="Pay" name="pay"><failure message="503"/></testcase>',
            '<testcase classname="Pay" name="ship"/>',
            '<testcase classname="Pay" name="pay"/>',
            '<testcase classname="Pay" name="ship"><failure message="x"/></testcase>',
        )
    )

    pay, ship = tests["pytest::Pay::pay"], tests["pytest::Pay::ship"]
    assert (pay.attempts, pay.outcome) == (["failed", "passed"], "passed")
    assert (ship.attempts, ship.outcome) == (["passed", "failed"], "failed")
    assert pay.message == "503"


def test_a_test_that_passes_on_retry_makes_the_session_a_flaky_pass() -> None:
    session, warnings = _read(
        _suite(
            '<testcase classname="c" name="t"><failure message="x"/></testcase>',
            '<testcase classname="c" name="t" time="2"/>',
        )
    )

    assert session.verdict == "flaky-pass"
    assert session.tests[0].duration_s == 2.0
    assert any(
        w.startswith("GT304 report.xml line 5: testcase repeated") for w in warnings
    )


def test_attempts_continue_across_the_documents_of_one_session() -> None:
    first = _suite('<testcase classname="c" name="t"><error message="e"/></testcase>')
    retry = _suite('<testcase classname="c" name="t"/>')

    session, _warnings = session_from_junit(
        [("run.xml", first.encode()), ("retry.xml", retry.encode())], gate="e2e"
    )

    [test] = session.tests
    assert test.attempts == ["error", "passed"]


def test_surefire_rerun_and_flaky_elements_are_attempts() -> None:
    documents = read_junit_path(JUNIT_DATA / "surefire-flaky.xml").documents

    session, _warnings = session_from_junit(documents, gate="e2e")

    tests = {t.test_id: t for t in session.tests}
    prefix = "example.ExampleTests::"
    assert tests[prefix + "throwsAlways"].attempts == ["error"] * 4
    assert tests[prefix + "failsAssertionAlways"].attempts == ["failed"] * 4
    assert tests[prefix + "failsAssertionOnlyFirstAttempt"].attempts == [
        "failed",
        "passed",
    ]
    assert tests[prefix + "throwsOnlyFirstAttempt"].attempts == ["error", "passed"]
    assert tests[prefix + "throwsOnlyFirstAttempt"].outcome == "passed"
    assert tests[prefix + "throwsOnlyFirstAttempt"].message == (
        "First attempt throws exception"
    )


def test_a_flaky_test_keeps_its_last_failure_without_captured_output() -> None:
    documents = read_junit_path(JUNIT_DATA / "surefire-flaky-junit4.xml").documents

    session, _warnings = session_from_junit(documents, gate="e2e")

    [test] = session.tests
    assert test.test_id == "io.olamy.FlakyTest::testApp"
    assert test.attempts == ["failed", "failed", "passed"]
    assert test.message == "try one more time maybe"
    assert test.signature == "try one more time maybe"
    assert test.longrepr is not None
    assert "FlakyTest.java:32" in test.longrepr
    assert "this will fail maybe" not in test.longrepr
    assert session.verdict == "flaky-pass"


def test_attempts_beyond_the_limit_keep_the_first_ones_and_the_last() -> None:
    cases = ['<testcase classname="c" name="t"/>'] * (MAX_ATTEMPTS + 10)
    cases.append('<testcase classname="c" name="t"><failure message="m"/></testcase>')

    session, warnings = _read(_suite(*cases))

    [test] = session.tests
    assert len(test.attempts) == MAX_ATTEMPTS
    assert test.attempts[-1] == "failed" and test.outcome == "failed"
    assert any(w.startswith("GT308") and "(61 attempts)" in w for w in warnings)


# -- outcomes -----------------------------------------------------------------------


def test_pytest_xfail_is_xfailed_and_other_skips_are_skipped() -> None:
    tests = _tests(
        _suite(
            '<testcase classname="t" name="x"><skipped type="pytest.xfail"/>',
            '</testcase><testcase classname="t" name="s"><skipped type="pytest.skip"/>',
            "</testcase>",
        )
    )

    assert tests["pytest::t::x"].outcome == "xfailed"
    assert tests["pytest::t::s"].outcome == "skipped"


def test_skipped_failure_and_error_at_once_count_as_the_error() -> None:
    session, warnings = _read(
        _suite(
            '<testcase classname="c" name="t"><skipped/><failure message="f"/>'
            '<error message="e"/></testcase>'
        )
    )

    [test] = session.tests
    assert (test.outcome, test.message) == ("error", "e")
    assert (
        "GT305 report.xml line 4: testcase holds <error>, <failure>, <skipped>; "
        "the worst, <error>, counts: pytest::c::t"
    ) in warnings


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("disabled", "skipped"),
        ("ignored", "skipped"),
        ("notrun", "skipped"),
        ("failed", "failed"),
        ("errored", "error"),
        ("run", "passed"),
        ("passed", "passed"),
    ],
)
def test_a_status_attribute_decides_a_testcase_without_result_elements(
    status: str, outcome: str
) -> None:
    [test] = _tests(_suite(f'<testcase name="t" status="{status}"/>')).values()

    assert test.outcome == outcome


def test_a_result_element_wins_over_a_disabled_status() -> None:
    session, warnings = _read(
        _suite('<testcase name="t" status="disabled"><failure>bad</failure></testcase>')
    )

    assert session.tests[0].outcome == "failed"
    assert any("status 'disabled' but holds <failure>" in w for w in warnings)


def test_an_error_outside_any_testcase_is_a_failing_test_of_its_suite() -> None:
    documents = read_junit_path(JUNIT_DATA / "nested-suite-error.xml").documents

    session, warnings = session_from_junit(documents, gate="e2e")

    tests = {t.test_id: t for t in session.tests}
    assert tests["test.3rdlevel::[suite error]"].outcome == "error"
    assert tests["test.3rdlevel::[suite error]"].message == "bla bla"
    assert tests["test.fs.FileSystemTest::testPrefix"].outcome == "passed"
    assert session.verdict == "fail"
    assert any(w.startswith("GT307") and "line 9" in w for w in warnings)


def test_a_report_without_testcases_is_incomplete() -> None:
    session, warnings = _read(_suite(attrs='name="pytest" tests="6" failures="1"'))

    assert (session.verdict, session.reason) == ("incomplete", "no tests ran")
    assert any(
        w.startswith("GT306") and "pytest declares 6, lists 0" in w for w in warnings
    )


# -- identity --------------------------------------------------------------------


def test_same_name_under_different_classes_stays_two_tests() -> None:
    tests = _tests(
        _suite(
            '<testcase classname="test.Rest.get" name="testInterface"/>',
            '<testcase classname="test.Rest.post" name="testInterface"/>',
        )
    )

    assert sorted(tests) == [
        "pytest::test.Rest.get::testInterface",
        "pytest::test.Rest.post::testInterface",
    ]


def test_the_file_attribute_comes_first_in_the_identity() -> None:
    [test] = _tests(
        _suite(
            '<testcase file="tests/test_a.py" line="7" classname="tests.test_a"'
            ' name="t"/>'
        )
    ).values()

    assert test.test_id == "tests/test_a.py::tests.test_a::t"
    assert (test.file, test.line) == ("tests/test_a.py", 7)


def test_the_suite_name_tells_apart_same_named_tests_of_different_files() -> None:
    """jest-junit names each suite after its file and leaves classname empty."""
    xml = (
        "<testsuites>"
        '<testsuite name="a.test.js"><testcase classname="" name="works"/></testsuite>'
        '<testsuite name="b.test.js"><testcase classname="" name="works"/></testsuite>'
        "</testsuites>"
    )

    assert sorted(_tests(xml)) == ["a.test.js::works", "b.test.js::works"]


def test_a_suite_named_like_the_class_adds_nothing_to_the_identity() -> None:
    xml = (
        '<testsuite name="pkg/sub">'
        '<testcase classname="pkg/sub" name="TestA"/></testsuite>'
    )

    assert list(_tests(xml)) == ["pkg/sub::TestA"]


@pytest.mark.parametrize(
    ("parts", "test_id"),
    [
        (("f.py", "mod.Class", "test"), "f.py::mod.Class::test"),
        (("Suite", "", "test"), "Suite::test"),
        (("", "", "test"), "test"),
        (("pkg", "pkg", "Test"), "pkg::Test"),
        (("", "cls", ""), "cls"),
    ],
)
def test_the_identity_rule(parts: tuple[str, str, str], test_id: str) -> None:
    assert junit_test_id(*parts) == test_id


def test_unnamed_testcases_get_numbered_ids_that_repeat_on_reimport() -> None:
    xml = _suite(
        '<testcase classname="C"/>',
        '<testcase classname="C" name=""><failure/></testcase>',
        '<testcase classname="D"/>',
    )

    first, warnings = _read(xml)
    second, _warnings = _read(xml)

    ids = [t.test_id for t in first.tests]
    assert ids == [
        "pytest::C::[unnamed 1]",
        "pytest::C::[unnamed 2]",
        "pytest::D::[unnamed 1]",
    ]
    assert ids == [t.test_id for t in second.tests]
    assert (
        "GT303 report.xml: testcase without a name: 3 times, first at line 4: "
        "[unnamed 1]"
    ) in warnings


# -- messages ---------------------------------------------------------------------


def test_failure_messages_are_redacted_and_long_text_is_cut_at_the_end() -> None:
    secret = "ghp_" + "a1B2c3D4e5" * 4
    last_line = f"AuthError: token={secret} rejected"
    trace = "at frame\n" * LONGREPR_LIMIT + last_line
    xml = _suite(
        f'<testcase name="t"><failure message="login with {secret} failed">'
        f"{trace}</failure></testcase>"
    )

    [test] = _tests(xml).values()

    assert test.message == "login with [REDACTED] failed"
    assert test.signature == "login with [REDACTED] failed"
    assert test.longrepr is not None
    assert secret not in test.longrepr
    assert test.longrepr.endswith("\n" + redact(last_line))
    assert test.longrepr.startswith("[... ")
    kept = test.longrepr.split("\n", 1)[1]
    dropped = len(redact(trace)) - LONGREPR_LIMIT
    assert len(kept) == LONGREPR_LIMIT
    assert test.longrepr.startswith(f"[... {dropped} characters cut ...]\n")


def test_without_a_message_attribute_the_first_line_of_the_text_is_the_message() -> (
    None
):
    [test] = _tests(
        _suite(
            '<testcase name="t">'
            "<failure>\n\nError: expect(x)\n  at y:1</failure></testcase>"
        )
    ).values()

    assert test.message == "Error: expect(x)"
    assert test.longrepr == "Error: expect(x)\n  at y:1"


# -- documents --------------------------------------------------------------------


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE testsuites [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuites><testsuite name="&lol3;"/></testsuites>
"""


def test_billion_laughs_is_refused_naming_the_file_and_line() -> None:
    with pytest.raises(InputError) as raised:
        session_from_junit([("laughs.xml", BILLION_LAUGHS.encode())], gate="e2e")

    message = str(raised.value)
    assert message.startswith("laughs.xml line 3: the document declares")
    assert "lol" in message


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = b'<!ENTITY secret "leaked">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def entity_server() -> Iterator[str]:
    """A local HTTP server that notes every request made to it."""
    _CountingHandler.requests = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_external_entities_are_refused_and_never_fetched(entity_server: str) -> None:
    xml = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE testsuites [<!ENTITY xxe SYSTEM "{entity_server}/passwd">]>\n'
        '<testsuites><testsuite name="&xxe;"/></testsuites>\n'
    )

    with pytest.raises(InputError, match=r"^xxe\.xml line 2: .*entit"):
        session_from_junit([("xxe.xml", xml.encode())], gate="e2e")
    assert _CountingHandler.requests == []


def test_an_external_dtd_is_never_fetched(entity_server: str) -> None:
    xml = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE testsuites SYSTEM "{entity_server}/junit.dtd">\n'
        '<testsuites><testsuite name="s"><testcase name="t"/></testsuite>'
        "</testsuites>\n"
    )

    session, _warnings = _read(xml)

    assert [t.test_id for t in session.tests] == ["s::t"]
    assert _CountingHandler.requests == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "report.xml: the file is empty"),
        (b"  \n\t\n", "report.xml: the file is empty"),
        (
            b"<testsuites><testsuite>",
            "report.xml line 1: not well-formed XML (no element found)",
        ),
        (
            b"<testsuites>\n<testsuite name='&nope;'/></testsuites>",
            "report.xml line 2: not well-formed XML (undefined entity)",
        ),
        (
            b"<testsuites>\n<testcase name='a\x08b'/></testsuites>",
            "report.xml line 2: not well-formed XML (not well-formed (invalid token))",
        ),
        (
            b"<?xml version='1.0'?>\n\n<results><test/></results>",
            "report.xml line 3: not JUnit XML: the root element is <results>",
        ),
    ],
)
def test_broken_documents_are_refused_naming_file_and_line(
    content: bytes, says: str
) -> None:
    with pytest.raises(InputError) as raised:
        session_from_junit([("report.xml", content)], gate="e2e")

    assert str(raised.value).startswith(says)


def test_suites_nested_beyond_reason_are_refused_not_a_crash() -> None:
    depth = MAX_DEPTH + 5
    xml = (
        "<testsuites>"
        + "<testsuite>" * depth
        + "</testsuite>" * depth
        + "</testsuites>"
    )

    with pytest.raises(InputError, match=f"nested more than {MAX_DEPTH} deep"):
        _read(xml)


def test_testsuites_inside_testsuites_are_read() -> None:
    xml = (
        "<testsuites><testsuites>"
        '<testsuite name="inner"><testcase name="t"/></testsuite>'
        "</testsuites></testsuites>"
    )

    assert list(_tests(xml)) == ["inner::t"]


def test_a_truncated_file_names_its_path_and_line() -> None:
    path = JUNIT_DATA / "pytest-truncated.xml"

    with pytest.raises(InputError) as raised:
        session_from_junit(read_junit_path(path).documents, gate="e2e")

    assert str(raised.value).startswith(f"{path} line 11: not well-formed XML")


def test_a_byte_order_mark_and_crlf_lines_are_read() -> None:
    path = JUNIT_DATA / "xunit-net-bom.xml"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    session, _warnings = session_from_junit(read_junit_path(path).documents, gate="e2e")

    assert [t.test_id for t in session.tests] == [
        "Rhino Collection::mytestapp.Tests.AttriubteTests.SetTestNoFeature",
        "Rhino Collection::mytestapp.Tests.AttriubteTests.GetTestNoFeature",
    ]
    assert session.tests[0].duration_s == 0.454035


def test_utf16_with_a_byte_order_mark_is_read() -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<testsuite name="s"><testcase name="ünï"/></testsuite>'
    )

    session, _warnings = session_from_junit(
        [("utf16.xml", xml.encode("utf-16"))], gate="e2e"
    )

    assert [t.test_id for t in session.tests] == ["s::ünï"]


def test_a_namespaced_report_is_read() -> None:
    xml = (
        '<t:testsuite xmlns:t="urn:x" name="s"><t:testcase name="a">'
        '<t:failure message="m"/></t:testcase></t:testsuite>'
    )

    [test] = _tests(xml).values()

    assert (test.test_id, test.outcome) == ("s::a", "failed")


# -- durations and timestamps -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds", "problem"),
    [
        ("1.5", 1.5, None),
        (" 100 ", 100.0, None),
        ("4.50611114501953e-05", 4.50611114501953e-05, None),
        ("2,503.1", 2503.1, None),
        ("1,234,567", 1234567.0, None),
        ("0,25", 0.25, None),
        ("999638317", 0.999638317, "looks like nanoseconds"),
        ("-345345", None, "negative"),
        ("abc", None, "not a number"),
        ("1.2.3", None, "not a number"),
        ("nan", None, "not a finite number"),
        ("inf", None, "not a finite number"),
    ],
)
def test_durations_as_tools_write_them(
    value: str, seconds: float | None, problem: str | None
) -> None:
    read, complaint = read_duration(value)

    assert read == (pytest.approx(seconds) if seconds is not None else None)
    if problem is None:
        assert complaint is None
    else:
        assert complaint is not None and problem in complaint


def test_an_unreadable_duration_leaves_zero_and_warns_with_the_line() -> None:
    session, warnings = _read(_suite('<testcase name="t" time="fast"/>'))

    assert session.tests[0].duration_s == 0.0
    assert (
        "GT301 report.xml line 4: duration is not a number; left at 0: 'fast'"
        in warnings
    )


def test_many_bad_values_give_one_warning_line_with_a_count() -> None:
    _session, warnings = _read(
        _suite(*(f'<testcase name="t{i}" time="-1"/>' for i in range(3)))
    )

    assert [w for w in warnings if w.startswith("GT301")] == [
        "GT301 report.xml: duration is negative; left at 0: 3 times, first at "
        "line 4: '-1'"
    ]


UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2020-09-04T16:18:04.966371", datetime(2020, 9, 4, 16, 18, 4, 966371, UTC)),
        ("2025-11-15T11:51:49-05:00", datetime(2025, 11, 15, 16, 51, 49, tzinfo=UTC)),
        ("2020-10-27T21:39:41Z", datetime(2020, 10, 27, 21, 39, 41, tzinfo=UTC)),
        ("2024-08-14 17:04:17", datetime(2024, 8, 14, 17, 4, 17, tzinfo=UTC)),
        (
            "Mon, 12 Oct 2020 20:17:41 GMT",
            datetime(2020, 10, 12, 20, 17, 41, tzinfo=UTC),
        ),
        ("2020/10/12 20:17:41", datetime(2020, 10, 12, 20, 17, 41, tzinfo=UTC)),
        ("12 Oct 2020", datetime(2020, 10, 12, tzinfo=UTC)),
        ("1602533861", datetime(2020, 10, 12, 20, 17, 41, tzinfo=UTC)),
        ("1602533861500", datetime(2020, 10, 12, 20, 17, 41, 500000, UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("20:17:41", None),
        ("soon", None),
        ("", None),
    ],
)
def test_timestamps_as_tools_write_them(value: str, moment: datetime | None) -> None:
    assert parse_timestamp(value) == moment


def test_the_session_spans_its_suites_timestamps() -> None:
    xml = (
        "<testsuites>"
        '<testsuite name="b" timestamp="2026-11-02T09:05:00" time="30">'
        '<testcase name="t"/></testsuite>'
        '<testsuite name="a" timestamp="2026-11-02T09:00:00+00:00" time="10">'
        '<testcase name="t"/></testsuite>'
        "</testsuites>"
    )

    session, warnings = session_from_junit([("r.xml", xml.encode())], gate="e2e")

    assert session.started_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert session.finished_at == datetime(2026, 11, 2, 9, 5, 30, tzinfo=UTC)
    assert warnings == []


def test_a_given_start_wins_and_the_report_time_gives_the_end() -> None:
    xml = (
        '<testsuites time="2,503.1">'
        '<testsuite name="s" timestamp="2020-01-01T00:00:00"><testcase name="t"/>'
        "</testsuite></testsuites>"
    )

    session, _warnings = _read(xml)

    assert session.started_at == T_START
    assert session.finished_at == T_START + timedelta(seconds=2503.1)


def test_without_timestamps_the_session_starts_now_and_says_so() -> None:
    before = datetime.now(UTC)

    session, warnings = session_from_junit(
        [
            (
                "go.xml",
                _suite(
                    '<testcase name="t"/>',
                    attrs='name="p" timestamp="0001-01-01T00:00:00Z"',
                ).encode(),
            )
        ],
        gate="e2e",
    )

    assert before <= session.started_at <= datetime.now(UTC)
    assert any(w.startswith("GT302 go.xml line 3: zero timestamp") for w in warnings)
    assert any(w.startswith("GT302: no suite has a usable timestamp") for w in warnings)


# -- sessions, ids and paths ---------------------------------------------------------


def test_the_session_carries_what_the_caller_says() -> None:
    ci = CIContext("github-actions", repository="acme/shop", run_id="9", run_attempt=2)

    session, _warnings = _read(
        _suite('<testcase name="t"/>', attrs='name="s" hostname="runner-7"'),
        commit="abc123",
        branch="main",
        event="push",
        ci=ci,
        shard="2/4",
    )

    assert (session.source, session.gate, session.shard) == ("junit", "e2e", "2/4")
    assert (session.commit, session.branch, session.event) == ("abc123", "main", "push")
    assert session.run_key == "ci:github-actions:acme/shop:9:2"
    assert session.hostname == "runner-7"
    assert (session.verdict, session.reason) == (
        "pass",
        "1 test, none failed or needed a rerun",
    )


def test_the_record_id_depends_on_the_contents_alone() -> None:
    a, b = (b"<testsuite name='a'/>", b"<testsuite name='b'/>")

    same = junit_record_id([("x.xml", a), ("y.xml", b)])

    assert same == junit_record_id([("other/y.xml", b), ("other/x.xml", a)])
    assert same != junit_record_id([("x.xml", a)])
    assert len(same) == 64


def test_a_directory_is_one_source_of_its_xml_files_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.xml").write_text(_suite('<testcase classname="c" name="t"/>'))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.xml").write_text(_suite('<testcase name="u"/>'))
    (tmp_path / "a.xml").write_text(
        _suite('<testcase classname="c" name="t"><failure/></testcase>')
    )
    (tmp_path / "notes.txt").write_text("not a report")

    [source] = read_junit_paths([tmp_path])
    session, _warnings = session_from_junit(source.documents, gate="e2e")

    names = [
        Path(name).relative_to(tmp_path).as_posix() for name, _ in source.documents
    ]
    assert names == ["a.xml", "b.xml", "nested/c.xml"]
    assert [(t.test_id, t.attempts) for t in session.tests] == [
        ("pytest::c::t", ["failed", "passed"]),
        ("pytest::u", ["passed"]),
    ]


def test_a_missing_path_or_an_empty_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        read_junit_path(tmp_path / "missing.xml")
    with pytest.raises(InputError, match=r"holds no \*\.xml file"):
        read_junit_path(tmp_path)


def test_importing_the_same_report_twice_stores_it_once(sqlite_url: str) -> None:
    documents = read_junit_path(JUNIT_DATA / "pytest-xunit2.xml").documents
    first, _ = session_from_junit(documents, gate="e2e")
    again, _ = session_from_junit(documents, gate="e2e")

    with Store(sqlite_url) as store:
        stored = store.record_session(first)
        repeated = store.record_session(again)
        with store.reading() as conn:
            rows = conn.execute(
                sa.select(test_results.c.test_id, test_results.c.outcome).order_by(
                    test_results.c.id
                )
            ).all()

    assert stored.stored and not repeated.stored
    assert repeated.run_id == stored.run_id
    assert len(rows) == 10
    assert rows[6] == ("pytest::tests.test_lib::test_expected_failure", "xfailed")
