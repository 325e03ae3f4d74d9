"""The JSON record format: one session per file, written and read back.

The plugin writes it for ``--gate-record`` and for pending runs it could not
store; ``gate-tracker import record`` and the collector read it. The format is
versioned (``"format": "gate-tracker-record"``, ``"version": 1``) and
described in ``docs/record-format.md``. Reading checks every field and names
the first wrong one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gate_tracker.exceptions import InputError
from gate_tracker.records import (
    ATTEMPT_OUTCOMES,
    OUTCOMES,
    RECORD_FORMAT,
    RECORD_VERSION,
    VERDICTS,
    CIContext,
    SessionRecord,
    TestRecord,
    session_to_dict,
)
from gate_tracker.redaction import Redactor, redact_args
from gate_tracker.verdicts import Completeness, combine_verdicts, session_verdict

# The longest text each field of a record may hold: the database's columns.
_LENGTHS = {
    "gate": 200,
    "record_id": 64,
    "shard": 100,
    "source": 20,
    "event": 50,
    "ci.provider": 30,
    "ci.repository": 200,
    "ci.run_id": 40,
}

# A record from a runner whose clock is a little ahead is still accepted.
_CLOCK_SKEW = timedelta(hours=1)

# What every database stores as an integer: a signed 32-bit column's range.
_INT_RANGE = (-(2**31), 2**31 - 1)


def write_record(session: SessionRecord, path: Path) -> None:
    """Write ``session`` to ``path`` atomically: a reader sees all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(session_to_dict(session), indent=1, ensure_ascii=False)

    # Write beside the target, then rename, so a crash leaves no torn file.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".record-", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> SessionRecord:
    """Read the record file at ``path``; raises ``InputError`` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the record: {err.strerror}") from err
    return parse_record(data, str(path))


def parse_record(data: bytes | str, origin: str) -> SessionRecord:
    """Parse a JSON record; ``origin`` names it in error messages."""
    try:
        document = json.loads(data)
    except UnicodeDecodeError as err:
        raise InputError(f"{origin}: not UTF-8 text ({err.reason})") from err
    except json.JSONDecodeError as err:
        raise InputError(
            f"{origin}: line {err.lineno}, column {err.colno}: "
            f"not valid JSON ({err.msg})"
        ) from err

    session = _Reader(origin).document(document)
    _check_consistency(session, origin)
    _redact(session)
    _reconcile_verdict(session)
    return session


def _check_consistency(session: SessionRecord, origin: str) -> None:
    def fail(where: str, problem: str) -> InputError:
        return InputError(f"{origin}: field {where}: {problem}")

    if session.finished_at < session.started_at:
        raise fail("session.finished_at", "is before session.started_at")
    if session.started_at > datetime.now(timezone.utc) + _CLOCK_SKEW:
        raise fail(
            "session.started_at", f"{session.started_at.isoformat()} is in the future"
        )
    for name in ("collected", "xdist_workers", "reruns"):
        value = getattr(session, name)
        if value is not None and value < 0:
            raise fail(f"session.{name}", f"{value} is negative")

    for name, limit in _LENGTHS.items():
        owner = session.ci if name.startswith("ci.") else session
        value = getattr(owner, name.removeprefix("ci."), None) if owner else None
        if isinstance(value, str) and len(value) > limit:
            raise fail(f"session.{name}", f"longer than {limit} characters")

    seen: set[str] = set()
    for index, test in enumerate(session.tests):
        if test.test_id in seen:
            raise fail(
                f"session.tests[{index}].test_id", f"{test.test_id!r} appears twice"
            )
        seen.add(test.test_id)


def _redact(session: SessionRecord) -> None:
    # A record may come from anywhere (an artifact, a hand-edited file): it is
    # redacted like everything the plugin writes before it is stored.
    redactor = Redactor()
    session.reason = redactor.redact(session.reason)
    session.args = redact_args(session.args)
    for test in session.tests:
        test.test_id = redactor.redact(test.test_id)
        for field_name in ("message", "signature", "longrepr"):
            value = getattr(test, field_name)
            if value:
                setattr(test, field_name, redactor.redact(value))


def _reconcile_verdict(session: SessionRecord) -> None:
    """Make the verdict no better than the record's own tests show.

    A record claiming ``pass`` whose tests failed, needed reruns or were
    never all reported cannot count towards the objective.
    """
    narrowed = session.selection.get("narrowed_by") or []
    completeness = Completeness(narrowed_by=[str(item) for item in narrowed])
    shown, why = session_verdict(session.tests, completeness)
    missing = (session.collected or 0) - len(session.tests)
    if shown in ("pass", "flaky-pass") and missing > 0:
        shown, why = "incomplete", f"{missing} collected tests never reported"

    worst = combine_verdicts([session.verdict, shown])
    if worst != session.verdict:
        session.verdict, session.reason = worst, why


class _Reader:
    """Checks a decoded record field by field, naming the path of a bad one."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(f"{self.origin}: field {where}: {problem}")

    def document(self, document: Any) -> SessionRecord:
        if not isinstance(document, dict) or document.get("format") != RECORD_FORMAT:
            raise InputError(
                f"{self.origin}: not a gate-tracker record (expected an object "
                f'with "format": "{RECORD_FORMAT}")'
            )
        version = document.get("version")
        if version != RECORD_VERSION:
            raise self.fail(
                "version",
                f"record version {version!r} is not supported (this gate-tracker "
                f"reads version {RECORD_VERSION}); upgrade gate-tracker",
            )
        body = self.mapping(document, "session", "session")
        return self.session(body)

    def session(self, body: dict[str, Any]) -> SessionRecord:
        verdict = self.text(body, "verdict", "session.verdict")
        if verdict not in VERDICTS:
            raise self.fail(
                "session.verdict", f"{verdict!r} is not one of {', '.join(VERDICTS)}"
            )

        tests_value = body.get("tests", [])
        if not isinstance(tests_value, list):
            raise self.fail("session.tests", "must be a list")

        return SessionRecord(
            gate=self.text(body, "gate", "session.gate"),
            record_id=self.text(body, "record_id", "session.record_id"),
            started_at=self.moment(body, "started_at", "session.started_at"),
            finished_at=self.moment(body, "finished_at", "session.finished_at"),
            verdict=verdict,
            reason=self.optional_text(body, "reason", "session.reason") or "",
            source=self.optional_text(body, "source", "session.source") or "record",
            shard=self.optional_text(body, "shard", "session.shard") or "",
            exit_status=self.optional_int(body, "exit_status", "session.exit_status"),
            commit=self.optional_text(body, "commit", "session.commit"),
            branch=self.optional_text(body, "branch", "session.branch"),
            event=self.optional_text(body, "event", "session.event") or "local",
            ci=self.ci(body.get("ci")),
            hostname=self.optional_text(body, "hostname", "session.hostname"),
            python_version=self.optional_text(
                body, "python_version", "session.python_version"
            ),
            pytest_version=self.optional_text(
                body, "pytest_version", "session.pytest_version"
            ),
            plugin_version=self.optional_text(
                body, "plugin_version", "session.plugin_version"
            ),
            xdist_workers=self.optional_int(
                body, "xdist_workers", "session.xdist_workers"
            )
            or 0,
            reruns=self.optional_int(body, "reruns", "session.reruns"),
            args=self.strings(body, "args", "session.args"),
            selection=self.optional_mapping(body, "selection", "session.selection"),
            collected=self.optional_int(body, "collected", "session.collected"),
            tests=[
                self.test(item, f"session.tests[{i}]")
                for i, item in enumerate(tests_value)
            ],
        )

    def ci(self, value: Any) -> CIContext | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("session.ci", "must be an object or null")
        return CIContext(
            provider=self.text(value, "provider", "session.ci.provider"),
            repository=self.optional_text(value, "repository", "session.ci.repository"),
            workflow=self.optional_text(value, "workflow", "session.ci.workflow"),
            job=self.optional_text(value, "job", "session.ci.job"),
            run_id=self.optional_text(value, "run_id", "session.ci.run_id"),
            run_attempt=self.optional_int(
                value, "run_attempt", "session.ci.run_attempt"
            ),
            event=self.optional_text(value, "event", "session.ci.event"),
            url=self.optional_text(value, "url", "session.ci.url"),
        )

    def test(self, value: Any, where: str) -> TestRecord:
        if not isinstance(value, dict):
            raise self.fail(where, "must be an object")
        outcome = self.text(value, "outcome", f"{where}.outcome")
        if outcome not in OUTCOMES:
            raise self.fail(
                f"{where}.outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}"
            )
        attempts = self.strings(value, "attempts", f"{where}.attempts") or [outcome]
        for index, attempt in enumerate(attempts):
            if attempt not in ATTEMPT_OUTCOMES:
                raise self.fail(
                    f"{where}.attempts[{index}]", f"{attempt!r} is not an outcome"
                )
        duration = value.get("duration_s", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise self.fail(f"{where}.duration_s", "must be a number")
        if not math.isfinite(duration) or duration < 0:
            raise self.fail(
                f"{where}.duration_s", f"{duration!r} is not a duration in seconds"
            )
        return TestRecord(
            test_id=self.text(value, "test_id", f"{where}.test_id"),
            outcome=outcome,
            attempts=attempts,
            duration_s=float(duration),
            worker=self.optional_text(value, "worker", f"{where}.worker"),
            message=self.optional_text(value, "message", f"{where}.message"),
            signature=self.optional_text(value, "signature", f"{where}.signature"),
            longrepr=self.optional_text(value, "longrepr", f"{where}.longrepr"),
            file=self.optional_text(value, "file", f"{where}.file"),
            line=self.optional_int(value, "line", f"{where}.line"),
        )

    # -- field readers ----------------------------------------------------------

    def mapping(self, body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = body.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, "missing, or not an object")
        return value

    def optional_mapping(
        self, body: dict[str, Any], key: str, where: str
    ) -> dict[str, Any]:
        value = body.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "must be an object")
        return value

    def text(self, body: dict[str, Any], key: str, where: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(where, "missing, or not a non-empty string")
        return self.unicode(value, where)

    def optional_text(self, body: dict[str, Any], key: str, where: str) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(where, "must be a string or null")
        return self.unicode(value, where)

    def unicode(self, value: str, where: str) -> str:
        # JSON can spell lone surrogates and NUL, which no database stores.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise self.fail(where, f"not valid Unicode text ({err.reason})") from err
        if "\x00" in value:
            raise self.fail(where, "contains a NUL character")
        return value

    def optional_int(self, body: dict[str, Any], key: str, where: str) -> int | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "must be a whole number or null")
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise self.fail(where, f"{value} is out of range")
        return value

    def strings(self, body: dict[str, Any], key: str, where: str) -> list[str]:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "must be a list of strings")
        return [self.unicode(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def moment(self, body: dict[str, Any], key: str, where: str) -> datetime:
        value = self.text(body, key, where)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as err:
            raise self.fail(where, f"{value!r} is not an ISO 8601 time") from err
        if moment.tzinfo is None:
            raise self.fail(where, f"{value!r} has no time zone (records are in UTC)")
        try:
            return moment.astimezone(timezone.utc)
        except OverflowError as err:
            raise self.fail(where, f"{value!r} is out of range") from err
