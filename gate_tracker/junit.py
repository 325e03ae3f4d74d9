"""Reading JUnit XML, as any test framework writes it, into gate sessions.

One or more documents (a file, or the XML files of a directory) form one
session with source ``"junit"``. How testcases become tests, attempts and
outcomes is in ``gate_tracker.junit_testcases`` and documented, with each
framework's quirks, in ``docs/junit-import.md``.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from gate_tracker.exceptions import InputError
from gate_tracker.junit_testcases import (
    CaseReader,
    Document,
    junit_test_id,
    local_name,
    read_timestamp,
)
from gate_tracker.records import LOCAL_EVENT, CIContext, SessionRecord
from gate_tracker.verdicts import Completeness, session_verdict

__all__ = [
    "DOCUMENT_PATTERN",
    "SOURCE",
    "JUnitSource",
    "junit_record_id",
    "junit_test_id",
    "parse_timestamp",
    "read_junit_path",
    "read_junit_paths",
    "session_from_junit",
]

SOURCE = "junit"
DOCUMENT_PATTERN = "*.xml"
"""The files of a directory that are read; a file named itself may have any name."""

_ROOTS = ("testsuites", "testsuite")


@dataclass
class JUnitSource:
    """The documents of one gate run: a file, or every XML file of a directory."""

    path: Path
    documents: list[tuple[str, bytes]]


def read_junit_path(path: Path | str) -> JUnitSource:
    """Read one file, or every ``*.xml`` file under a directory, sorted by path.

    Raises ``InputError`` when the path is missing or unreadable, or when a
    directory holds no XML file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob(DOCUMENT_PATTERN) if p.is_file())
        if not files:
            raise InputError(
                f"{path}: the directory holds no {DOCUMENT_PATTERN} file; "
                "point at the JUnit XML files or at the folder that holds them"
            )
    elif path.exists():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or directory")

    return JUnitSource(path, [(str(file), _read_bytes(file)) for file in files])


def read_junit_paths(paths: Iterable[Path | str]) -> list[JUnitSource]:
    """``read_junit_path`` for each path: one source, so one gate run, per path."""
    return [read_junit_path(path) for path in paths]


def session_from_junit(
    documents: Sequence[tuple[str, bytes]],
    *,
    gate: str,
    commit: str | None = None,
    branch: str | None = None,
    event: str = LOCAL_EVENT,
    started_at: datetime | None = None,
    ci: CIContext | None = None,
    shard: str = "",
) -> tuple[SessionRecord, list[str]]:
    """One session read from JUnit XML ``documents``, and warnings about them.

    ``documents`` are (name, content) pairs, read in the order given; a name
    is only used in messages. Testcases with the same test id, in one
    document or across several, are attempts of one test in that order.
    ``started_at`` defaults to the earliest suite timestamp, else to now (with
    a warning). The record id hashes the contents, so importing the same
    documents twice stores one session. The warnings are lines starting with
    a short id (``GT3xx``).

    Raises ``InputError`` naming the document, and the line where known, when
    a document is empty, not well-formed (truncated, for example), not JUnit,
    or declares entities.
    """
    if not documents:
        raise InputError("no JUnit XML document given: nothing to import")

    reader = CaseReader()
    for name, data in documents:
        document, root = parse_document(name, data)
        reader.read(document, root)

    tests = reader.tests()
    start, finish = reader.times(started_at)
    verdict, reason = session_verdict(tests, Completeness())
    session = SessionRecord(
        gate=gate,
        record_id=junit_record_id(documents),
        started_at=start,
        finished_at=finish,
        verdict=verdict,
        reason=reason,
        source=SOURCE,
        shard=shard,
        commit=commit,
        branch=branch,
        event=event,
        ci=ci,
        hostname=reader.hostname,
        tests=tests,
    )
    return session, reader.warnings()


def junit_record_id(documents: Sequence[tuple[str, bytes]]) -> str:
    """A stable id for a set of documents: a hash of their contents alone.

    Names and order do not count, so a renamed or moved file keeps its id.
    """
    digests = sorted(hashlib.sha256(data).hexdigest() for _, data in documents)
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def parse_timestamp(value: str) -> datetime | None:
    """A timestamp as JUnit writers spell it, in UTC; None when unreadable.

    ISO 8601 in its variants, RFC 2822 and other spellings with a full date,
    and epoch seconds or milliseconds are read. A time without a zone is taken
    as UTC. Go's zero time (year 1) means "unknown" and gives None.
    """
    moment, _problem = read_timestamp(value)
    return moment


def parse_document(name: str, data: bytes) -> tuple[Document, ET.Element]:
    """Parse one JUnit document safely; its root is <testsuites> or <testsuite>.

    Raises ``InputError`` naming the document and line for an empty, broken or
    non-JUnit document, or one that declares entities.
    """
    if not data.strip():
        raise InputError(
            f"{name}: the file is empty; the test run may have ended before "
            "its report was written. Leave it out or re-create it"
        )

    document, root = _parse(name, data)
    tag = local_name(root.tag)
    if tag not in _ROOTS:
        raise InputError(
            f"{name} line {document.line(root)}: not JUnit XML: the root element "
            f"is <{tag}>, not <testsuites> or <testsuite>. Pass only JUnit reports"
        )
    return document, root


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the file ({err.strerror})") from err


class _LineBuilder(ET.TreeBuilder):
    """A tree builder that notes the line each element starts on."""

    def __init__(self) -> None:
        super().__init__()
        self.expat: Any = None
        self.lines: dict[ET.Element, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        self.lines[element] = self.expat.CurrentLineNumber if self.expat else 0
        return element


def _parse(name: str, data: bytes) -> tuple[Document, ET.Element]:
    builder = _LineBuilder()
    # Entity declarations are refused outright: they can hide billion-laughs
    # expansion and external references. Nothing is ever fetched.
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as err:
        raise InputError(
            f"{name} line {err.position[0]}: not well-formed XML "
            f"({_expat_reason(err)}); the file may be truncated or corrupt. "
            "Re-create it or leave it out"
        ) from err
    except DefusedXmlException as err:
        raise InputError(
            f"{name} line {parser.parser.CurrentLineNumber}: the document "
            f"declares or references an entity ({err}); entities are never "
            "expanded or fetched. Remove the entity declarations"
        ) from err
    except (LookupError, ValueError) as err:
        raise InputError(f"{name}: cannot decode the document ({err})") from err

    return Document(name, builder.lines), root


def _expat_reason(err: ET.ParseError) -> str:
    return str(err).split(": line ")[0]
