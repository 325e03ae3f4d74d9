"""How JUnit testcases become tests: identity, attempts, outcomes and times.

``CaseReader`` walks the parsed documents of one session; the rules it applies
are documented in ``docs/junit-import.md``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dateutil import parser as dateparser

from gate_tracker.exceptions import InputError
from gate_tracker.recording import LONGREPR_LIMIT, MESSAGE_LIMIT
from gate_tracker.records import FAILED_OUTCOMES, TestRecord
from gate_tracker.redaction import failure_signature, redact

MAX_DEPTH = 100
"""Suites nested deeper than this are refused rather than read."""

MAX_ATTEMPTS = 50
"""Attempts kept per test: the stored list of attempts has a bounded width."""

NANOSECONDS_ABOVE_S = 86_400
"""A whole-number duration above one day is read as nanoseconds."""

WARN_DURATION = "GT301"
WARN_TIMESTAMP = "GT302"
WARN_UNNAMED = "GT303"
WARN_REPEATED = "GT304"
WARN_RESULTS = "GT305"
WARN_COUNTS = "GT306"
WARN_SUITE_RESULT = "GT307"
WARN_ATTEMPTS = "GT308"

_RESULT_PRECEDENCE = ("error", "failure", "skipped")
_FLAKY_ELEMENTS = ("flakyFailure", "flakyError")
_RERUN_ELEMENTS = ("rerunFailure", "rerunError")
_FAILING_ELEMENTS = {
    "failure": "failed",
    "error": "error",
    "flakyFailure": "failed",
    "flakyError": "error",
    "rerunFailure": "failed",
    "rerunError": "error",
}
_SKIPPED_STATUSES = frozenset(
    {"disabled", "skipped", "skip", "ignored", "notrun", "not_run", "pending"}
)
_STATUS_OUTCOMES = {
    **dict.fromkeys(_SKIPPED_STATUSES, "skipped"),
    "failed": "failed",
    "fail": "failed",
    "failure": "failed",
    "errored": "error",
    "error": "error",
}
_XFAIL_TYPE = "pytest.xfail"
_REDACTION_SPAN = 2
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_EPOCH = re.compile(r"(\d{9,13})(?:\.\d+)?")
_EPOCH_MILLIS_DIGITS = 12
_DEFAULT_DAYS = (datetime(2000, 1, 1), datetime(2001, 2, 2))


def junit_test_id(location: str, classname: str, name: str) -> str:
    """The test id of a testcase: ``location::classname::name``.

    ``location`` is the testcase's ``file`` attribute, else the ``file`` of
    its nearest suite, else the name of its suite; it is left out when it
    equals ``classname`` (Surefire, Go). Empty parts are left out, so a
    testcase with only a name is known by its name. Two testcases with the
    same name under different class names, files or suites are two tests.
    """
    parts = (location if location != classname else "", classname, name)
    return "::".join(part for part in parts if part)


def local_name(tag: str) -> str:
    """An element's tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


@dataclass
class Document:
    """One parsed document: its name for messages and its elements' lines."""

    name: str
    lines: dict[ET.Element, int]
    top_suite_seconds: list[float] = field(default_factory=list)
    case_seconds: float = 0.0

    def line(self, element: ET.Element) -> int:
        """The line ``element`` starts on, or 0 when unknown."""
        return self.lines.get(element, 0)


# -- warnings -----------------------------------------------------------------


@dataclass
class _Problem:
    code: str
    document: str
    text: str
    first_line: int | None
    first_detail: str
    times: int = 1


class _Warnings:
    """Warnings grouped by kind and document, so a big file gives a few lines."""

    def __init__(self) -> None:
        self._problems: dict[tuple[str, str, str], _Problem] = {}

    def note(
        self, code: str, document: str, line: int | None, text: str, detail: str
    ) -> None:
        key = (code, document, text)
        problem = self._problems.get(key)
        if problem is None:
            self._problems[key] = _Problem(code, document, text, line, detail)
        else:
            problem.times += 1

    def lines(self) -> list[str]:
        return [_warning_line(problem) for problem in self._problems.values()]


def _warning_line(problem: _Problem) -> str:
    where = f"{problem.code} {problem.document}".rstrip()
    if problem.times > 1:
        first = f"line {problem.first_line}: " if problem.first_line else ""
        return (
            f"{where}: {problem.text}: {problem.times} times, first at "
            f"{first}{problem.first_detail}"
        )
    if problem.first_line:
        where += f" line {problem.first_line}"
    return f"{where}: {problem.text}: {problem.first_detail}"


# -- reading testcases --------------------------------------------------------


@dataclass(frozen=True)
class _Suite:
    name: str
    file: str

    @property
    def location(self) -> str:
        return self.file or self.name


@dataclass
class _Attempt:
    outcome: str
    message: str | None = None
    longrepr: str | None = None


@dataclass
class _Test:
    test_id: str
    file: str | None
    line: int | None
    attempts: list[_Attempt] = field(default_factory=list)
    duration_s: float = 0.0


class CaseReader:
    """Reads the documents of one session, one after the other, into tests."""

    def __init__(self) -> None:
        self.hostname: str | None = None
        self._warnings = _Warnings()
        self._tests: dict[str, _Test] = {}
        self._unnamed: dict[tuple[str, str], int] = {}
        self._starts: list[datetime] = []
        self._ends: list[datetime] = []
        self._duration_s = 0.0

    def read(self, document: Document, root: ET.Element) -> None:
        """Read the testcases under ``root``, a <testsuites> or <testsuite>.

        Raises ``InputError`` when suites nest deeper than ``MAX_DEPTH``.
        """
        if local_name(root.tag) == "testsuite":
            self._read_suite(document, root, parent=None, depth=1)
        else:
            self._walk(document, root, suite=None, depth=1)

        self._check_counts(document, root)
        self._duration_s += self._document_seconds(document, root)

    def warnings(self) -> list[str]:
        """One line per kind of problem seen in each document."""
        return self._warnings.lines()

    def _warn(
        self, code: str, document: Document, element: ET.Element, text: str, detail: str
    ) -> None:
        self._warnings.note(code, document.name, document.line(element), text, detail)

    def _walk(
        self,
        document: Document,
        element: ET.Element,
        suite: _Suite | None,
        depth: int,
    ) -> None:
        if depth > MAX_DEPTH:
            raise InputError(
                f"{document.name} line {document.line(element)}: suites nested "
                f"more than {MAX_DEPTH} deep; this is not a report a test tool "
                "wrote. Leave it out"
            )

        for child in element:
            tag = local_name(child.tag)
            if tag == "testsuite":
                self._read_suite(document, child, parent=suite, depth=depth + 1)
            elif tag == "testsuites":
                self._walk(document, child, suite, depth + 1)
            elif tag == "testcase":
                self._read_case(document, child, suite)
            elif tag in ("failure", "error") and suite is not None:
                self._read_suite_result(document, child, suite)

    def _read_suite(
        self,
        document: Document,
        element: ET.Element,
        parent: _Suite | None,
        depth: int,
    ) -> None:
        suite = _Suite(
            name=_attr(element, "name") or (parent.name if parent else ""),
            file=_attr(element, "file") or (parent.file if parent else ""),
        )
        self.hostname = self.hostname or _attr(element, "hostname") or None

        seconds = self._duration(document, element)
        if parent is None and seconds is not None:
            document.top_suite_seconds.append(seconds)
        self._note_times(document, element, seconds)

        self._walk(document, element, suite, depth)

    def _note_times(
        self, document: Document, element: ET.Element, seconds: float | None
    ) -> None:
        stamp = element.get("timestamp")
        if stamp is None:
            return

        moment, problem = read_timestamp(stamp)
        if problem:
            self._warn(WARN_TIMESTAMP, document, element, problem, repr(stamp))
        if moment is None:
            return

        self._starts.append(moment)
        if seconds is not None:
            self._ends.append(moment + timedelta(seconds=seconds))

    def _read_case(
        self, document: Document, element: ET.Element, suite: _Suite | None
    ) -> None:
        classname = _attr(element, "classname") or _attr(element, "class")
        file = _attr(element, "file") or (suite.file if suite else "")
        location = file or (suite.location if suite else "")
        name = _attr(element, "name") or self._unnamed_name(
            document, element, location, classname
        )
        test_id = junit_test_id(location, classname, name)

        seconds = self._duration(document, element) or 0.0
        document.case_seconds += seconds
        attempts = self._attempts(document, element, test_id)

        test = self._tests.get(test_id)
        if test is None:
            test = _Test(test_id, file or None, _line_attr(element))
            self._tests[test_id] = test
        else:
            self._warn(
                WARN_REPEATED,
                document,
                element,
                "testcase repeated; its results are read as further attempts",
                test_id,
            )
        test.attempts.extend(attempts)
        test.duration_s += seconds

    def _unnamed_name(
        self, document: Document, element: ET.Element, location: str, classname: str
    ) -> str:
        # Numbered in document order within their class, so that unnamed
        # testcases stay apart and keep the same id from run to run.
        key = (location, classname)
        self._unnamed[key] = self._unnamed.get(key, 0) + 1
        name = f"[unnamed {self._unnamed[key]}]"
        self._warn(WARN_UNNAMED, document, element, "testcase without a name", name)
        return name

    def _attempts(
        self, document: Document, element: ET.Element, test_id: str
    ) -> list[_Attempt]:
        children = [(local_name(child.tag), child) for child in element]
        flaky = [child for tag, child in children if tag in _FLAKY_ELEMENTS]
        reruns = [child for tag, child in children if tag in _RERUN_ELEMENTS]
        results = [(tag, c) for tag, c in children if tag in _RESULT_PRECEDENCE]

        # Surefire writes the failed attempts of a test that then passed as
        # flaky elements, and the attempts after a first failure as rerun
        # elements: flaky ones come first, rerun ones last.
        main = self._main_attempt(document, element, results, test_id)
        return [
            *(_failing_attempt(child) for child in flaky),
            main,
            *(_failing_attempt(child) for child in reruns),
        ]

    def _main_attempt(
        self,
        document: Document,
        element: ET.Element,
        results: list[tuple[str, ET.Element]],
        test_id: str,
    ) -> _Attempt:
        status = _attr(element, "status").lower()
        if not results:
            return _Attempt(_STATUS_OUTCOMES.get(status, "passed"))

        kinds = {tag for tag, _ in results}
        chosen = next(kind for kind in _RESULT_PRECEDENCE if kind in kinds)
        if len(kinds) > 1:
            shown = ", ".join(f"<{k}>" for k in _RESULT_PRECEDENCE if k in kinds)
            text = f"testcase holds {shown}; the worst, <{chosen}>, counts"
            self._warn(WARN_RESULTS, document, element, text, test_id)
        if status in _SKIPPED_STATUSES and chosen != "skipped":
            text = f"testcase has status {status!r} but holds <{chosen}>, which counts"
            self._warn(WARN_RESULTS, document, element, text, test_id)

        result = next(child for tag, child in results if tag == chosen)
        if chosen == "skipped":
            xfail = _attr(result, "type") == _XFAIL_TYPE
            return _Attempt("xfailed" if xfail else "skipped")
        return _failing_attempt(result)

    def _read_suite_result(
        self, document: Document, element: ET.Element, suite: _Suite
    ) -> None:
        # A failure outside any testcase (a class fixture, a crashed suite)
        # becomes a test of its own, so the session cannot pass without it.
        tag = local_name(element.tag)
        test_id = junit_test_id(suite.location, "", f"[suite {tag}]")
        text = f"<{tag}> outside any testcase; recorded as a test"
        self._warn(WARN_SUITE_RESULT, document, element, text, test_id)

        test = self._tests.setdefault(test_id, _Test(test_id, suite.file or None, None))
        test.attempts.append(_failing_attempt(element))

    def _duration(self, document: Document, element: ET.Element) -> float | None:
        value = element.get("time")
        if value is None or not value.strip():
            return None

        seconds, problem = read_duration(value)
        if problem:
            self._warn(WARN_DURATION, document, element, problem, repr(value))
        return seconds

    def _check_counts(self, document: Document, root: ET.Element) -> None:
        top = [root] if local_name(root.tag) == "testsuite" else list(root)
        for suite in top:
            declared = _attr(suite, "tests")
            if local_name(suite.tag) != "testsuite" or not declared.isdigit():
                continue
            listed = sum(1 for e in suite.iter() if local_name(e.tag) == "testcase")
            if int(declared) != listed:
                name = _attr(suite, "name") or "an unnamed suite"
                detail = f"{name} declares {declared}, lists {listed}"
                text = "suite's test count differs from its testcases, which count"
                self._warn(WARN_COUNTS, document, suite, text, detail)

    def _document_seconds(self, document: Document, root: ET.Element) -> float:
        if local_name(root.tag) == "testsuites":
            seconds = self._duration(document, root)
            if seconds is not None:
                return seconds
        if document.top_suite_seconds:
            return sum(document.top_suite_seconds)
        return document.case_seconds

    def tests(self) -> list[TestRecord]:
        """The tests read so far, in the order they first appeared."""
        return [self._record(test) for test in self._tests.values()]

    def _record(self, test: _Test) -> TestRecord:
        attempts = test.attempts
        if len(attempts) > MAX_ATTEMPTS:
            text = (
                f"more than {MAX_ATTEMPTS} attempts; the first "
                f"{MAX_ATTEMPTS - 1} and the last are kept"
            )
            detail = f"{test.test_id} ({len(attempts)} attempts)"
            self._warnings.note(WARN_ATTEMPTS, "", None, text, detail)
            attempts = [*attempts[: MAX_ATTEMPTS - 1], attempts[-1]]

        record = TestRecord(
            test_id=test.test_id,
            outcome=attempts[-1].outcome,
            attempts=[attempt.outcome for attempt in attempts],
            duration_s=round(test.duration_s, 6),
            file=test.file,
            line=test.line,
        )
        failing = [a for a in attempts if a.outcome in FAILED_OUTCOMES]
        if failing:
            record.message = failing[-1].message
            record.longrepr = failing[-1].longrepr
            if record.message:
                record.signature = failure_signature(record.message)
        return record

    def times(self, started_at: datetime | None) -> tuple[datetime, datetime]:
        """The session's start and end: given, else from suite timestamps, else now."""
        duration = timedelta(seconds=self._duration_s)
        if started_at is not None:
            start = in_utc(started_at)
            return start, start + duration

        if self._starts:
            start = min(self._starts)
            finish = max(self._ends) if self._ends else start + duration
            return start, max(start, finish)

        text = "no suite has a usable timestamp; the session starts now"
        detail = "pass started_at (--started-at) to date it"
        self._warnings.note(WARN_TIMESTAMP, "", None, text, detail)
        start = datetime.now(timezone.utc)
        return start, start + duration


def _attr(element: ET.Element, name: str) -> str:
    return (element.get(name) or "").strip()


def _line_attr(element: ET.Element) -> int | None:
    value = _attr(element, "line")
    return int(value) if value.isdigit() else None


def _failing_attempt(element: ET.Element) -> _Attempt:
    outcome = _FAILING_ELEMENTS[local_name(element.tag)]
    message_attr = element.get("message") or ""
    text = _element_text(element)

    message = _first_line(message_attr) or _first_line(text)
    longrepr = text.strip() or message_attr.strip()
    return _Attempt(
        outcome,
        message=redact(message[: _REDACTION_SPAN * MESSAGE_LIMIT])[:MESSAGE_LIMIT]
        or None,
        longrepr=_redacted_end(longrepr) or None,
    )


def _element_text(element: ET.Element) -> str:
    # Surefire's rerun and flaky elements hold the trace in <stackTrace>;
    # captured output in <system-out>/<system-err> is not the failure.
    parts = [element.text or ""]
    for child in element:
        if local_name(child.tag) == "stackTrace":
            parts.append(child.text or "")
    return "".join(parts)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _redacted_end(text: str) -> str:
    """The redacted end of ``text``, where the error is, as the plugin keeps it."""
    # Only twice the kept length is redacted, which bounds the cost on huge
    # texts; a secret would have to be longer than the limit to reach from
    # the dropped part into the kept one.
    dropped_first = max(len(text) - _REDACTION_SPAN * LONGREPR_LIMIT, 0)
    redacted = redact(text[dropped_first:])
    if not dropped_first and len(redacted) <= LONGREPR_LIMIT:
        return redacted

    kept = redacted[-LONGREPR_LIMIT:]
    dropped = dropped_first + len(redacted) - len(kept)
    return f"[... {dropped} characters cut ...]\n" + kept


# -- values -------------------------------------------------------------------


def read_duration(value: str) -> tuple[float | None, str | None]:
    """Seconds from a ``time`` attribute, and what was wrong with it, if anything.

    Thousands separators (``2,503.1``), a decimal comma (``0,5``) and
    scientific notation are read; a whole number above a day is taken as
    nanoseconds. A negative, infinite or non-numeric value gives None.
    """
    text = value.strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")

    try:
        seconds = float(text)
    except ValueError:
        return None, "duration is not a number; left at 0"
    if not math.isfinite(seconds):
        return None, "duration is not a finite number; left at 0"
    if seconds < 0:
        return None, "duration is negative; left at 0"

    if seconds > NANOSECONDS_ABOVE_S and value.strip().isdigit():
        return seconds / 1e9, "duration looks like nanoseconds; read as such"
    return seconds, None


def read_timestamp(value: str) -> tuple[datetime | None, str | None]:
    """A timestamp in UTC, and what was wrong with it, if anything.

    ISO 8601 in its variants, RFC 2822 and other spellings with a full date,
    and epoch seconds or milliseconds are read; a time without a zone is
    taken as UTC. Go's zero time (year 1) means "unknown" and gives None.
    """
    text = value.strip()
    if not text:
        return None, "empty timestamp; ignored"

    epoch = _EPOCH.fullmatch(text)
    if epoch:
        number = float(text)
        if len(epoch.group(1)) >= _EPOCH_MILLIS_DIGITS:
            number /= 1000
        return datetime.fromtimestamp(number, timezone.utc), None

    moment = _parse_date(text)
    if moment is None:
        return None, "unreadable timestamp; ignored"
    if moment.year <= 1:
        return None, "zero timestamp (Go's zero time) means unknown; ignored"
    return in_utc(moment), None


def _parse_date(text: str) -> datetime | None:
    try:
        return dateparser.isoparse(text)
    except (ValueError, OverflowError):
        pass

    # A spelling without a full date would be completed from the defaults:
    # reading it with two different defaults tells.
    try:
        first, second = (dateparser.parse(text, default=d) for d in _DEFAULT_DAYS)
    except (ValueError, OverflowError):
        return None
    return first if first == second else None


def in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
