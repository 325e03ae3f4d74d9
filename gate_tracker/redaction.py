"""Redaction of secrets, and failure signatures that group the same failure.

Everything gate-tracker stores or writes that came from a test or a command
line passes through ``redact`` first: failure messages, captured text,
recorded arguments, log lines and reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "[REDACTED]"

_SECRET_WORDS = (
    r"(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|auth|credentials?)"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # GitHub tokens: classic, fine-grained, OAuth, app and refresh tokens.
    (
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
        REDACTED,
    ),
    # AWS access key ids and secret keys given as a pair.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    # Google API keys and OAuth access tokens.
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), REDACTED),
    (re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), REDACTED),
    # Slack and Stripe tokens.
    (re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"), REDACTED),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"), REDACTED),
    # JSON web tokens.
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        REDACTED,
    ),
    # Private key blocks.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            re.S,
        ),
        REDACTED,
    ),
    # Authorization headers: keep the scheme, drop the credential.
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)(?:(bearer|basic|token)\s+)?[^\s,;'\"]+"
        ),
        r"\1\2\3 " + REDACTED,
    ),
    # Credentials inside URLs: scheme://user:password@host.
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@]+):([^/\s@]+)@"),
        r"\1\2:" + REDACTED + "@",
    ),
    # key=value and key: value pairs whose key names a secret.
    (
        re.compile(
            rf"(?i)([\w.\-]*{_SECRET_WORDS}[\w.\-]*)(\s*[=:]\s*|\"\s*:\s*\")(['\"]?)([^\s'\",;&]+)"
        ),
        r"\1\2\3" + REDACTED,
    ),
)

_SECRET_FLAG = re.compile(rf"(?i)^--?[\w-]*{_SECRET_WORDS}[\w-]*$")


def redact(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED]``."""
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text.replace(f"{REDACTED} {REDACTED}", REDACTED)


def redact_args(args: Sequence[str]) -> list[str]:
    """Command-line arguments with secrets removed.

    Besides what ``redact`` finds, the value after an option named like a
    secret (``--token X``, ``--password=X``) is removed.
    """
    cleaned: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            cleaned.append(REDACTED)
            hide_next = False
            continue
        if _SECRET_FLAG.match(arg):
            cleaned.append(arg)
            hide_next = True
            continue
        cleaned.append(redact(arg))
    return cleaned


# -- failure signatures --------------------------------------------------------

_SIGNATURE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "<hex>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@+\-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b(?:gw|worker)\d+\b"), "<worker>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)

SIGNATURE_LIMIT = 300


def failure_signature(message: str) -> str:
    """``message`` with numbers, addresses, ids, times and paths normalised.

    Two failures with the same cause get the same signature even when they
    differ in a port number, a temporary path or a timestamp.
    """
    signature = message
    for pattern, replacement in _SIGNATURE_RULES:
        signature = pattern.sub(replacement, signature)
    return signature.strip()[:SIGNATURE_LIMIT]
