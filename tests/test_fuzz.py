"""Fuzzing the JUnit parser and the JSON record loader with Hypothesis.

Whatever the input, reading it ends in a session or an ``InputError``, never
another exception; and what was read is stored whole, in one transaction.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate_tracker.exceptions import GateTrackerError, InputError
from gate_tracker.junit import session_from_junit
from gate_tracker.record_file import parse_record
from gate_tracker.records import SessionRecord, TestRecord, session_to_dict
from gate_tracker.schema import gate_runs, gate_sessions, test_results
from gate_tracker.storage import Store
from tests.conftest import DATA, build_session

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
JUNIT_SEEDS = sorted((DATA / "junit").glob("*.xml"))


@contextmanager
def _store() -> Iterator[Store]:
    with (
        tempfile.TemporaryDirectory() as directory,
        Store(f"sqlite:///{Path(directory) / 'gate.db'}") as store,
    ):
        yield store


def _rows(store: Store) -> tuple[int, int, int]:
    with store.reading() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (gate_runs, gate_sessions, test_results)
        )


def _store_whole(store: Store, session: SessionRecord) -> None:
    """What the readers accept, the store takes whole, in one transaction.

    When storing fails anyway the test fails, after checking that nothing
    was half written.
    """
    before = _rows(store)
    try:
        outcome = store.record_session(session)
    except BaseException:
        assert _rows(store) == before, "a failed write left rows behind"
        raise

    assert outcome.stored
    runs, sessions, tests = _rows(store)
    assert (runs, sessions, tests) == (1, 1, len(session.tests))


# -- JUnit XML ---------------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        "testsuites",
        "testsuite",
        "testcase",
        "failure",
        "error",
        "skipped",
        "system-out",
        "system-err",
        "properties",
        "property",
        "rerunFailure",
        "flakyFailure",
        "flakyError",
        "rerunError",
    ]
)
_ATTRIBUTES = st.sampled_from(
    [
        "name",
        "classname",
        "time",
        "timestamp",
        "tests",
        "failures",
        "errors",
        "skipped",
        "file",
        "line",
        "message",
        "type",
        "hostname",
        "value",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "0.5",
            "-1",
            "1,234.5",
            "NaN",
            "inf",
            "1e308",
            "12345678901234567890",
            "2026-12-03T10:00:00",
            "2026-12-03 10:00:00Z",
            "1733220000000",
            "",
            " ",
        ]
    ),
)


@st.composite
def _elements(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_NAMES)
    attributes = draw(st.dictionaries(_ATTRIBUTES, _VALUES, max_size=5))
    text = "".join(
        f" {key}={quoteattr(_xml_safe(value))}" for key, value in attributes.items()
    )
    children = draw(st.lists(_elements(depth + 1), max_size=4)) if depth < 3 else []
    body = _xml_safe(draw(st.text(max_size=20)))
    body = body.replace("&", "&amp;").replace("<", "&lt;")
    return f"<{name}{text}>{body}{''.join(children)}</{name}>"


def _xml_safe(value: str) -> str:
    # Characters XML 1.0 cannot hold at all; the raw-bytes test covers them.
    return (
        "".join(
            c for c in value if c in "\t\n\r" or (" " <= c <= "\ud7ff") or c >= "\ue000"
        )
        .replace("\ufffe", "")
        .replace("\uffff", "")
    )


def _junit_session(data: bytes) -> SessionRecord | None:
    try:
        session, _warnings = session_from_junit([("fuzz.xml", data)], gate="fuzz")
    except InputError as err:
        assert "fuzz.xml" in str(err)
        return None
    return session


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_as_junit_give_a_session_or_an_input_error(data: bytes) -> None:
    _junit_session(data)


@FUZZ
@given(_elements())
def test_junit_shaped_documents_are_read_and_stored_whole(document: str) -> None:
    session = _junit_session(document.encode())

    if session is not None:
        with _store() as store:
            _store_whole(store, session)


@FUZZ
@pytest.mark.skipif(not JUNIT_SEEDS, reason="no JUnit files under tests/data/junit")
@given(
    st.sampled_from(JUNIT_SEEDS or [Path("none")]),
    st.lists(
        st.tuples(st.integers(min_value=0), st.binary(min_size=0, max_size=8)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_damaged_real_reports_give_a_session_or_an_input_error(
    seed: Path, edits: list[tuple[int, bytes]], truncate: bool
) -> None:
    """Real reports with bytes changed, inserted or cut off at random."""
    data = bytearray(seed.read_bytes())
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    if truncate:
        data = data[: edits[0][0] % (len(data) + 1)]

    session = _junit_session(bytes(data))

    if session is not None:
        with _store() as store:
            _store_whole(store, session)


# -- JSON records ----------------------------------------------------------------

# Values that a database column or a UTF-8 file cannot take as they are.
_HOSTILE = st.sampled_from(
    [
        2**31,
        -(2**31) - 1,
        2**63,
        2**70,
        float("nan"),
        float("inf"),
        "\ud800 lone surrogate",
        "NUL \x00 inside",
        "x" * 300,
        "2026-11-02T11:00:00+02:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "",
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | _HOSTILE,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


def _valid_record() -> dict[str, Any]:
    tests = [
        TestRecord("t.py::ok", "passed", ["passed"], 0.1),
        TestRecord("t.py::flaky", "passed", ["failed", "passed"], 0.2, message="x"),
        TestRecord("t.py::bad", "failed", ["failed"], 0.3, file="t.py", line=3),
    ]
    return session_to_dict(build_session(1, tests=tests, verdict="fail"))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


@st.composite
def _mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    record = copy.deepcopy(_valid_record())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(record) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = record
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(_HOSTILE, _JSON))
    return record


def _record_session(data: bytes | str) -> SessionRecord | None:
    try:
        return parse_record(data, "fuzz.json")
    except InputError as err:
        assert "fuzz.json" in str(err)
        return None


@FUZZ
@given(st.binary(max_size=1000) | st.text(max_size=1000))
def test_any_text_as_a_record_gives_a_session_or_an_input_error(
    data: bytes | str,
) -> None:
    _record_session(data)


@FUZZ
@given(_mutated_records())
def test_mutated_records_are_refused_clearly_or_stored_whole(
    record: dict[str, Any],
) -> None:
    session = _record_session(json.dumps(record))

    if session is not None:
        with _store() as store:
            _store_whole(store, session)


def test_the_unmutated_record_round_trips() -> None:
    """The fuzzed records start from one that loads and stores."""
    session = _record_session(json.dumps(_valid_record()))

    assert session is not None
    assert [t.outcome for t in session.tests] == ["passed", "passed", "failed"]
    with _store() as store:
        _store_whole(store, session)
        assert _rows(store) == (1, 1, 3)


# -- PostgreSQL holds what the readers accept ----------------------------------------

# Every bounded text column a record fills, as the path of its field.
_BOUNDED_FIELDS = (
    ("gate",),
    ("record_id",),
    ("source",),
    ("shard",),
    ("commit",),
    ("branch",),
    ("event",),
    ("hostname",),
    ("python_version",),
    ("pytest_version",),
    ("plugin_version",),
    ("ci", "provider"),
    ("ci", "repository"),
    ("ci", "workflow"),
    ("ci", "job"),
    ("ci", "run_id"),
    ("tests", 0, "worker"),
)


@pytest.mark.postgresql
def test_what_the_record_loader_accepts_postgresql_stores(pg_url: str) -> None:
    """Over-long text is refused by field, or stored; never a database error."""
    failures = {}
    with Store(pg_url) as store:
        for path in _BOUNDED_FIELDS:
            record = _valid_record()
            parent = record["session"]
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = "v" * 1000
            session = _record_session(json.dumps(record))
            if session is None:
                continue
            try:
                store.record_session(session)
            except GateTrackerError as err:
                failures[".".join(map(str, path))] = str(err).split(": ")[-1][:60]

    assert failures == {}


@pytest.mark.postgresql
def test_what_the_junit_reader_accepts_postgresql_stores(pg_url: str) -> None:
    long = "h" * 1000
    document = (
        f'<testsuite name="{long}" hostname="{long}" timestamp="2026-12-01T10:00:00">'
        f'<testcase classname="{long}" name="{long}" time="1"/></testsuite>'
    ).encode()

    session = _junit_session(document)

    assert session is not None
    with Store(pg_url) as store:
        store.record_session(session)
        assert len(store.runs("fuzz")) == 1
