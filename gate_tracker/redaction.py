"""Redaction of secrets, and failure signatures that group the same failure.

Everything gate-tracker stores or writes that came from a test or a command
line passes through ``redact`` first: failure messages, captured text,
recorded arguments, log lines and reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

REDACTED = "[REDACTED]"

# Words that make a key name a secret. "auth" is one, "author" is not.
_SECRET_WORDS = (
    r"(?:password|passwd|passphrase|pwd|token|secret|api[_-]?key|apikey"
    r"|access[_-]?key|account[_-]?key|private[_-]?key|credentials?"
    r"|session[_-]?id|auth(?!or))"
)

# key=value and key: value pairs, with the key and value quoted or not;
# comparisons (==, !=) are not pairs. A key starts where a word starts.
# Whether the key names a secret, and where its value ends, are found apart
# (see _redact_pairs): one regex for all three backtracks quadratically on
# long runs like "x=x=x=...".
_PAIR_KEY = re.compile(
    r"""(?<![\w.\-])(?P<key>[\w.\-]+)["']?\s*(?<![=!<>])(?:=(?!=)|:(?!:))\s*"""
)

# The value after a key: a quoted string to its closing quote, or one bare
# word. A value already redacted is left alone.
_PAIR_VALUE = re.compile(
    r"""(?P<q>["'])?(?!\[REDACTED\])(?(q)[^"'\n]+(?P=q)?|[^\s'",;&)}\]]+)"""
)
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORDS}")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # GitHub tokens: classic, fine-grained, OAuth, app and refresh tokens.
    (
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
        REDACTED,
    ),
    # GitLab, npm and PyPI tokens.
    (re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"), REDACTED),
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), REDACTED),
    (re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"), REDACTED),
    # AWS access key ids; their secret keys are caught as key=value pairs.
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"), REDACTED),
    # Google API keys, OAuth access tokens and OAuth client secrets.
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), REDACTED),
    (re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), REDACTED),
    (re.compile(r"\bGOCSPX-[0-9A-Za-z_\-]{20,}"), REDACTED),
    # Azure shared access signatures in URLs and connection strings.
    (re.compile(r"(?i)([?&;]sig=)[^&\s'\";]+"), r"\1" + REDACTED),
    # Slack and Stripe tokens, and webhook URLs whose path is the secret.
    (re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), REDACTED),
    (re.compile(r"\bxapp-\d-[0-9A-Za-z-]{10,}"), REDACTED),
    (
        re.compile(
            r"(?i)\b((?:hooks\.slack\.com/(?:services|workflows|triggers)"
            r"|discord(?:app)?\.com/api/webhooks)/)[\w/\-]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"), REDACTED),
    (re.compile(r"\bwhsec_[0-9A-Za-z]{16,}"), REDACTED),
    # JSON web tokens.
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        REDACTED,
    ),
    # Private key blocks.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?"
            r"(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            re.S,
        ),
        REDACTED,
    ),
    # Authorization headers, also quoted as in a dict: keep the scheme, drop
    # the credential (to the closing quote when quoted).
    (
        re.compile(
            r"""(?i)((?<![\w-])(?:proxy-)?authorization["']?\s*[:=]\s*(["'])?)"""
            r"((?:bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256)\s+)?"
            r"""(?(2)[^"'\n]+|[^\s,;'"]+)"""
        ),
        r"\1\3" + REDACTED,
    ),
    # Cookie headers carry session credentials: drop the whole value.
    (
        re.compile(
            r"""(?i)((?<![\w-])(?:set-)?cookie["']?\s*:\s*(["'])?)"""
            r"""(?(2)[^"'\n]+|[^\r\n]+)"""
        ),
        r"\1" + REDACTED,
    ),
    # A bearer token on its own.
    (
        re.compile(r"(?i)\b(bearer\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/\-]{8,}=*"),
        r"\1" + REDACTED,
    ),
    # Credentials inside URLs: scheme://user:password@host, user may be empty.
    (
        re.compile(
            r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*://)([^/\s:@]*):([^\s/?#]+)@"
        ),
        r"\1\2:" + REDACTED + "@",
    ),
)

# A text none of _PATTERNS can match holds, once lowercased, none of these:
# every pattern above needs one of them. Keep the lists in step. Matching
# lowercased text is several times faster than a case-insensitive search.
_TRIGGERS = re.compile(
    r"gh[pousr]_|github_pat_|glpat-|npm_|pypi-|akia|asia|abia|acca|aiza|ya29\."
    r"|gocspx-|sig=|xox|xapp-|hooks\.slack\.com|discord|[sr]k_(?:live|test)_"
    r"|whsec_|eyj|-----begin|authorization|cookie|bearer|://"
)
_SECRET_WORD = re.compile(
    r"pass(?:word|wd|phrase)|pwd|token|secret|api[_-]?key|apikey"
    r"|(?:access|account|private)[_-]?key|credential|session[_-]?id|auth"
)

_OPTION = re.compile(r"--?[\w-]+")


_ENVIRONMENT_SECRET_MIN = 8
_NOT_SECRET_VARIABLES = frozenset({"PWD", "OLDPWD"})

# Characters no database or UTF-8 file can hold: NUL (PostgreSQL refuses it)
# and lone surrogates (from bytes decoded with "surrogateescape").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def redact(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED]``.

    The values of environment variables named like secrets (``*_TOKEN``,
    ``*_PASSWORD``, ``*SECRET*``, ...) are redacted wherever they appear.
    Characters that cannot be stored (NUL, lone surrogates) are written as
    their escapes, ``\\x00`` and ``\\udc80``, so redacted text can always be
    stored and written as UTF-8. To redact many texts, use one ``Redactor``.
    """
    return Redactor().redact(text)


_REMEMBERED_LENGTH = 500


class Redactor:
    """Redacts many texts against one snapshot of the environment's secrets.

    Text with no sign of a secret (most test ids and messages) costs one
    regular-expression search instead of every pattern.
    """

    def __init__(self) -> None:
        self.environment_secrets = _environment_secrets()
        self._seen: dict[str, str] = {}

    def redact(self, text: str) -> str:
        """``text`` redacted as ``redact`` does."""
        if not text:
            return text
        if len(text) <= _REMEMBERED_LENGTH:
            # Test ids come twice (collected, then reported): redact once.
            known = self._seen.get(text)
            if known is None:
                known = self._seen[text] = self._redact(text)
            return known
        return self._redact(text)

    def _redact(self, text: str) -> str:
        text = storable(text)
        if not self._may_hold_secret(text):
            return text
        for value in self.environment_secrets:
            text = text.replace(value, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        text = _redact_pairs(text)
        return text.replace(f"{REDACTED} {REDACTED}", REDACTED)

    def _may_hold_secret(self, text: str) -> bool:
        lowered = text.lower()
        if _TRIGGERS.search(lowered):
            return True
        if ("=" in text or ":" in text) and _SECRET_WORD.search(lowered):
            return True
        return any(value in text for value in self.environment_secrets)


def _environment_secrets() -> list[str]:
    # Values of variables named like secrets (GITHUB_TOKEN, DB_PASSWORD, ...)
    # are secrets wherever they turn up, as CI masks them in its logs. Short
    # values and the working directories would hide ordinary text.
    values = {
        value
        for name, value in os.environ.items()
        if len(value) >= _ENVIRONMENT_SECRET_MIN
        and name not in _NOT_SECRET_VARIABLES
        and _SECRET_NAME.search(name)
    }
    return sorted(values, key=len, reverse=True)


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates written as their escapes, as
    ``redact`` writes them, and nothing else changed."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _redact_pairs(text: str) -> str:
    parts: list[str] = []
    position = 0
    while key := _PAIR_KEY.search(text, position):
        parts.append(text[position : key.end()])
        position = key.end()
        if not _SECRET_NAME.search(key["key"]):
            # The value may itself hold a pair, as in "name: password=x".
            continue
        value = _PAIR_VALUE.match(text, position)
        if value is None:
            continue
        quote = value["q"] or ""
        parts.append(quote + REDACTED + quote)
        position = value.end()
    parts.append(text[position:])
    return "".join(parts)


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
        if _OPTION.fullmatch(arg) and _SECRET_NAME.search(arg):
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
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?"
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
