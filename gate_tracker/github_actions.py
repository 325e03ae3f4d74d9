"""GitHub Actions output: job summary Markdown and workflow-command annotations.

Inside a GitHub Actions job (``GITHUB_ACTIONS=true``) gate-tracker appends
Markdown to the file named by ``GITHUB_STEP_SUMMARY``, which GitHub shows on
the run's page, and prints workflow commands (``::error ...::message``) that
GitHub turns into annotations. Everything written here is redacted first, and
text from tests is escaped so a test id or failure message cannot inject
Markdown, HTML or further workflow commands.

See https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from gate_tracker.records import OUTCOMES, SessionRecord, TestRecord
from gate_tracker.redaction import redact

log = logging.getLogger(__name__)

ENV_ACTIONS = "GITHUB_ACTIONS"
ENV_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"

SUMMARY_LIMIT_BYTES = 1024 * 1024
"""GitHub drops a step's whole summary when it grows past 1 MiB."""

ANNOTATIONS_SHOWN = 10
"""GitHub shows at most 10 error and 10 warning annotations per step."""

TESTS_SHOWN = 25
"""Rows of failing and rerun tests in one summary; the record has them all."""

MESSAGE_SHOWN = 200
"""Characters of a failure message shown in a summary table cell."""

_CUT_NOTE = (
    "\n\n*gate-tracker: summary cut short to stay under GitHub's 1 MiB "
    "job summary limit.*\n"
)
_VERDICT_MARKS = {
    "pass": "✅",
    "flaky-pass": "⚠️",
    "fail": "❌",
    "incomplete": "❔",
    "timeout": "⏱️",
    "cancelled": "⏹️",
}
# Characters that can open Markdown or HTML markup anywhere inside a line.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&!])")
_LINE_BREAKS = re.compile(r"[\r\n]+")
_BACKTICKS = re.compile(r"`+")


# -- detection and the summary file ---------------------------------------------


def in_github_actions(environ: Mapping[str, str] = os.environ) -> bool:
    """True when this process runs inside a GitHub Actions job."""
    return environ.get(ENV_ACTIONS) == "true"


def append_step_summary(markdown: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Append ``markdown`` (redacted) to the job summary; True when written.

    Returns False, writing nothing, outside GitHub Actions or when
    ``GITHUB_STEP_SUMMARY`` is unset. A summary is a courtesy: a file that
    cannot be written is logged as a warning and also gives False, never an
    exception. Text that would take the file past GitHub's 1 MiB limit is cut
    at a line end, with a note saying so.
    """
    if not in_github_actions(environ):
        return False
    name = environ.get(ENV_STEP_SUMMARY)
    if not name:
        return False

    path = Path(name)
    try:
        size = path.stat().st_size if path.exists() else 0
        text = _fitted(_as_block(redact(markdown), first=size == 0), size)
        if not text:
            log.warning("job summary %s is full; nothing appended", path)
            return False
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        log.warning("cannot append to the job summary %s: %s", path, err)
        return False
    return True


def _as_block(markdown: str, *, first: bool) -> str:
    # A blank line keeps our first line from joining whatever came before it
    # (a table row, a paragraph) written by an earlier step.
    body = markdown.strip("\n") + "\n"
    return body if first else "\n" + body


def _fitted(text: str, size: int) -> str:
    encoded = text.encode("utf-8")
    room = SUMMARY_LIMIT_BYTES - size
    if len(encoded) <= room:
        return text

    room -= len(_CUT_NOTE.encode("utf-8"))
    if room <= 0:
        return ""
    kept = encoded[:room].decode("utf-8", errors="ignore")
    return kept[: kept.rfind("\n") + 1] + _CUT_NOTE


# -- annotations ------------------------------------------------------------------


def error_annotation(
    message: str,
    *,
    title: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> str:
    """The workflow command for an error annotation; print it on stdout.

    ``file`` is relative to the repository root and ``line`` counts from 1;
    GitHub then shows the annotation on that line of the file.
    """
    return _annotation("error", message, title=title, file=file, line=line)


def warning_annotation(
    message: str,
    *,
    title: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> str:
    """The workflow command for a warning annotation; see ``error_annotation``."""
    return _annotation("warning", message, title=title, file=file, line=line)


def notice_annotation(
    message: str,
    *,
    title: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> str:
    """The workflow command for a notice annotation; see ``error_annotation``."""
    return _annotation("notice", message, title=title, file=file, line=line)


def _annotation(
    kind: str,
    message: str,
    *,
    title: str | None,
    file: str | None,
    line: int | None,
) -> str:
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
    if file and line is not None and line > 0:
        properties.append(f"line={line}")
    if title:
        properties.append(f"title={_escape_property(redact(title))}")

    head = f"::{kind}"
    if properties:
        head += " " + ",".join(properties)
    return f"{head}::{_escape_data(redact(message))}"


def _escape_data(text: str) -> str:
    # The rules of actions/toolkit's escapeData: a raw newline would end the
    # command and let the rest of a message run as a command of its own.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def capped_annotations(annotations: Sequence[str], kind: str = "warning") -> list[str]:
    """At most ``ANNOTATIONS_SHOWN`` annotations, the last saying how many more.

    GitHub drops annotations of a kind past ten per step without a word;
    this keeps nine and adds one of ``kind`` that counts the rest.
    """
    if len(annotations) <= ANNOTATIONS_SHOWN:
        return list(annotations)
    kept = list(annotations[: ANNOTATIONS_SHOWN - 1])
    rest = len(annotations) - len(kept)
    kept.append(_annotation(kind, f"and {rest} more", title=None, file=None, line=None))
    return kept


def annotation_location(test: TestRecord) -> tuple[str | None, int | None]:
    """The file and line (from 1) GitHub should annotate for ``test``.

    The recorded location wins; otherwise the file part of the test id, with
    no line. Either is None when unknown.
    """
    if test.file:
        return test.file, test.line
    if "::" in test.test_id:
        return test.test_id.split("::", 1)[0], None
    return None, None


# -- Markdown ---------------------------------------------------------------------


def escape_markdown(text: str) -> str:
    """``text`` as plain inline Markdown: one line, no markup, no HTML.

    Safe inside a table cell: ``|`` is escaped too.
    """
    return _MARKUP.sub(r"\\\1", _LINE_BREAKS.sub(" ", text)).strip()


def code_span(text: str) -> str:
    """``text`` as a one-line Markdown code span, whatever backticks it holds."""
    # A code span shows HTML and Markdown literally: only backticks and line
    # breaks need care.
    text = _LINE_BREAKS.sub(" ", text)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def table_code(text: str) -> str:
    """``text`` as a code span fit for a table cell."""
    # GFM splits a table row into cells before it reads code spans, so a pipe
    # must be escaped even there; the cell then shows a plain pipe.
    return code_span(text.replace("|", "\\|"))


def _shorten(text: str, limit: int = MESSAGE_SHOWN) -> str:
    text = _LINE_BREAKS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_duration(seconds: float | None) -> str:
    """``83.0`` as ``1 min 23 s``; None as ``-``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def verdict_label(verdict: str) -> str:
    """The verdict with a mark that shows it at a glance, escaped."""
    mark = _VERDICT_MARKS.get(verdict, "")
    return f"{mark} {escape_markdown(verdict)}".strip()


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a GFM table; the cells must be escaped already."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def session_summary_markdown(session: SessionRecord) -> str:
    """A short job-summary section for one recorded session.

    It gives the gate and verdict with its reason, the counts per outcome,
    where the run came from, and a table of the failing and rerun tests.
    """
    counts = session.counts()
    title = f"### gate-tracker: {escape_markdown(session.gate)}"
    if session.shard:
        title += f" (shard {escape_markdown(session.shard)})"
    reason = escape_markdown(redact(session.reason))
    lines = [title, "", f"**{verdict_label(session.verdict)}**: {reason}", ""]

    header = ["verdict", "tests", *OUTCOMES, "rerun", "duration"]
    row = [
        verdict_label(session.verdict),
        str(len(session.tests)),
        *(str(counts[outcome]) for outcome in OUTCOMES),
        str(counts["rerun"]),
        shown_duration(session.duration_s),
    ]
    lines += markdown_table(header, [row])
    lines += ["", _provenance(session)]

    notable = _notable_tests(session.tests)
    if notable:
        lines += ["", f"#### Failing and rerun tests ({len(notable)})", ""]
        lines += markdown_table(
            ["test", "outcome", "attempts", "message"],
            (_test_row(test) for test in notable[:TESTS_SHOWN]),
        )
        if len(notable) > TESTS_SHOWN:
            lines += [
                "",
                f"…and {len(notable) - TESTS_SHOWN} more in the run's record.",
            ]
    return "\n".join(lines) + "\n"


def _provenance(session: SessionRecord) -> str:
    parts = []
    if session.commit:
        parts.append(f"commit {escape_markdown(session.commit[:12])}")
    if session.branch:
        parts.append(f"on {escape_markdown(session.branch)}")
    parts.append(f"event {escape_markdown(session.event)}")
    ci = session.ci
    if ci is not None and ci.run_id:
        run = f"run {escape_markdown(ci.run_id)}"
        if ci.run_attempt:
            run += f" attempt {ci.run_attempt}"
        parts.append(f"[{run}]({ci.url})" if ci.url else run)
    return " · ".join(parts)


def _notable_tests(tests: Sequence[TestRecord]) -> list[TestRecord]:
    failed = [t for t in tests if t.outcome in ("failed", "error", "xpassed")]
    rerun = [t for t in tests if t.was_rerun and t not in failed]
    return failed + rerun


def _test_row(test: TestRecord) -> list[str]:
    message = escape_markdown(_shorten(redact(test.message or "")))
    return [
        table_code(redact(test.test_id)),
        escape_markdown(test.outcome),
        escape_markdown(" → ".join(test.attempts)),
        message or "-",
    ]


# -- publishing -------------------------------------------------------------------


def publish_session(
    session: SessionRecord, environ: Mapping[str, str] = os.environ
) -> bool:
    """Append the session's summary to the job summary; never raises.

    The plugin calls this as a session ends. Outside GitHub Actions it does
    nothing; inside, any failure is logged, so the test session's outcome
    never depends on the summary.
    """
    if not in_github_actions(environ):
        return False
    try:
        return append_step_summary(session_summary_markdown(session), environ)
    except Exception:  # a courtesy must not break the test run
        log.warning("cannot write the job summary for the session", exc_info=True)
        return False


def publish(
    markdown: str,
    annotations: Sequence[str],
    *,
    enabled: bool | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Append ``markdown`` to the job summary and print ``annotations``.

    ``enabled`` None means "when in GitHub Actions"; True writes them anyway
    (the summary only where ``GITHUB_STEP_SUMMARY`` names a file); False
    writes nothing. ``stream`` defaults to stdout; pass stderr when stdout
    carries JSON: GitHub reads workflow commands from both. Returns whether
    anything was published.
    """
    if not publishing_wanted(enabled, environ):
        return False
    if enabled:
        environ = {**environ, ENV_ACTIONS: "true"}

    append_step_summary(markdown, environ)
    out = stream or sys.stdout
    for annotation in annotations:
        print(annotation, file=out)
    out.flush()
    return True


def publishing_wanted(enabled: bool | None, environ: Mapping[str, str]) -> bool:
    """A ``--github-summary`` flag's meaning: None is "when in GitHub Actions"."""
    if enabled is None:
        return in_github_actions(environ)
    return enabled


def test_file_of(test_id: str) -> str | None:
    """The file part of a pytest node id, or None when it has none."""
    return test_id.split("::", 1)[0] if "::" in test_id else None


test_file_of.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
