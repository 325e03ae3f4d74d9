"""Log output of the command line: readable lines, or JSON lines for CI.

Library modules only call ``logging.getLogger(__name__)``; this module, used by
the CLI alone, installs the handler. Every line is redacted before it is
written. Pass context with ``extra={"gate": ..., "repository": ..., "run":
...}`` and the JSON form carries it as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from gate_tracker.redaction import redact

CONTEXT_FIELDS = ("gate", "repository", "run")
TRUSTED = "gate_tracker_trusted"
"""``extra={TRUSTED: True}`` marks a message gate-tracker made safe itself."""
_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event and context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _redacted(record, record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = redact(str(value))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """``gate-tracker: level: message``, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"gate-tracker: {record.levelname.lower()}: {super().format(record)}"
        return _redacted(record, line)


def _redacted(record: logging.LogRecord, text: str) -> str:
    # gate-tracker's own error messages hide passwords where they are built,
    # and read like "token: set GITHUB_TOKEN", which redaction would mangle.
    if getattr(record, TRUSTED, False):
        return text
    return redact(text)


def configure_logging(*, verbosity: int = 0, fmt: str = "text") -> None:
    """Send gate-tracker's log records to stderr.

    ``verbosity`` 0 shows warnings and above; each step up shows more, each
    step down less.
    """
    level = _LEVELS[max(0, min(len(_LEVELS) - 1, verbosity + 1))]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JSONFormatter() if fmt == "json" else TextFormatter("%(message)s")
    )

    logger = logging.getLogger("gate_tracker")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
