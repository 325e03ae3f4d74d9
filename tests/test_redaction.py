"""Redaction: every kind of secret goes, ordinary text stays as it was."""

from __future__ import annotations

import time

import pytest

from gate_tracker.config import display_url
from gate_tracker.redaction import (
    REDACTED,
    failure_signature,
    redact,
    redact_args,
    storable,
)

# Made-up secrets in each provider's real format, none of them live.
GITHUB_CLASSIC = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GITHUB_OAUTH = "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_APP = "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789_" + "a1B2c3D4e5" * 6
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GCP_API_KEY = "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"
GCP_ACCESS = "ya29." + "a0AfH6SMBx1234567890abcdefghij"
GCP_CLIENT = "GOCSPX-" + "1a2b3c4d5e6f7g8h9i0jKLMN"
SLACK_BOT = "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKl"
SLACK_HOOK = "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
STRIPE_LIVE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_HOOK = "whsec_" + "abcdefghijklmnopqrstuvwx"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
AZURE_KEY = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy=="
AZURE_SIG = "abcdEFGH1234%2Bxyz%3D"
PASSWORD = "correct-h0rse-battery"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"cloning with {GITHUB_CLASSIC}", GITHUB_CLASSIC),
        (f"GITHUB_TOKEN={GITHUB_APP}", GITHUB_APP),
        (f"oauth said {GITHUB_OAUTH}.", GITHUB_OAUTH),
        (f"token {GITHUB_FINE}", GITHUB_FINE),
        (f"aws configure set {AWS_KEY_ID}", AWS_KEY_ID),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
        (f"https://maps.googleapis.com/x?key={GCP_API_KEY}", GCP_API_KEY),
        (f"got access token {GCP_ACCESS}", GCP_ACCESS),
        (f'"client_secret": "{GCP_CLIENT}"', GCP_CLIENT),
        (f"slack: {SLACK_BOT}", SLACK_BOT),
        (f"posting to https://hooks.slack.com/services/{SLACK_HOOK}", SLACK_HOOK),
        (f"stripe.api_key = '{STRIPE_LIVE}'", STRIPE_LIVE),
        (f"webhook secret {STRIPE_HOOK}", STRIPE_HOOK),
        (f"session {JWT} expired", JWT),
        (f"AccountName=acct;AccountKey={AZURE_KEY};EndpointSuffix=x", AZURE_KEY),
        (f"https://a.blob.core.windows.net/c?sv=2022&sig={AZURE_SIG}&se=1", AZURE_SIG),
    ],
)
def test_provider_tokens_are_redacted(text: str, secret: str) -> None:
    redacted = redact(text)

    assert secret not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]"),
        (
            f"Authorization: token {GITHUB_CLASSIC}",
            "Authorization: token [REDACTED]",
        ),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED]"),
        (
            "{'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': 'json'}",
            "{'Authorization': 'Basic [REDACTED]', 'Accept': 'json'}",
        ),
        (
            '{"Authorization": "Bearer abcdef123456"}',
            '{"Authorization": "Bearer [REDACTED]"}',
        ),
        (
            "Proxy-Authorization: Basic Zm9vOmJhcg==",
            "Proxy-Authorization: Basic [REDACTED]",
        ),
        ("Cookie: sessionid=abc123def456; csrftoken=x", "Cookie: [REDACTED]"),
        ("sent Bearer 0123456789abcdef", "sent Bearer [REDACTED]"),
    ],
)
def test_authorization_headers_keep_their_scheme_only(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"postgresql://gate:{PASSWORD}@db.internal:5432/gate",
            "postgresql://gate:[REDACTED]@db.internal:5432/gate",
        ),
        (
            f"https://x-access-token:{GITHUB_APP}@github.com/acme/shop.git",
            "https://x-access-token:[REDACTED]@github.com/acme/shop.git",
        ),
        (f"redis://:{PASSWORD}@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
        ("amqp://guest:p@ss@rabbit/", "amqp://guest:[REDACTED]@rabbit/"),
    ],
)
def test_credentials_inside_urls_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"password={PASSWORD}", "password=[REDACTED]"),
        (f"PGPASSWORD={PASSWORD} psql", "PGPASSWORD=[REDACTED] psql"),
        (f"token: {PASSWORD}", "token: [REDACTED]"),
        (f"secret={PASSWORD}&next=1", "secret=[REDACTED]&next=1"),
        (f"api_key={PASSWORD}", "api_key=[REDACTED]"),
        (f"X-Api-Key: {PASSWORD}", "X-Api-Key: [REDACTED]"),
        ('password="correct horse battery"', 'password="[REDACTED]"'),
        ("password: 'correct horse battery'", "password: '[REDACTED]'"),
        (
            f'{{"password": "{PASSWORD}", "user": "ci"}}',
            '{"password": "[REDACTED]", "user": "ci"}',
        ),
        (f"{{'db_password': '{PASSWORD}'}}", "{'db_password': '[REDACTED]'}"),
        (f"Server=db;Uid=sa;Pwd={PASSWORD};", "Server=db;Uid=sa;Pwd=[REDACTED];"),
        (f"--password={PASSWORD}", "--password=[REDACTED]"),
    ],
)
def test_secret_pairs_lose_their_value(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "assert book.author == 'Jane'",
        "author: Jane Doe",
        "assert response.token == expected",
        "assert user.password != old_password",
        "tests/test_auth.py::test_token_refresh FAILED",
        "test_password_reset passed in 0.2s",
        "ConnectionError: HTTPConnectionPool(host='localhost', port=8080)",
        "https://github.com/acme/shop/actions/runs/1234",
        "http://localhost:8080/health",
        "commit 0123456789abcdef0123456789abcdef01234567",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_private_key_blocks_are_removed_whole() -> None:
    text = (
        '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n'
        '-----END PRIVATE KEY-----\\n", "client_email": "ci@x.iam"}'
    )

    redacted = redact(text)

    assert "MIIEvQIBADAN" not in redacted
    assert '"client_email": "ci@x.iam"' in redacted


def test_redacting_twice_changes_nothing_more() -> None:
    text = (
        f"Authorization: token {GITHUB_CLASSIC} password={PASSWORD} "
        f"postgresql://u:{PASSWORD}@h/db {JWT}"
    )

    once = redact(text)

    assert redact(once) == once
    assert PASSWORD not in once and GITHUB_CLASSIC not in once


def test_redact_args_hides_the_value_after_a_secret_option() -> None:
    args = [
        "--token",
        GITHUB_CLASSIC.replace("ghp_", "plain"),
        "--db-password",
        PASSWORD,
        "--author",
        "jane",
        f"--gate-db=postgresql://ci:{PASSWORD}@db/gate",
        "tests/e2e",
    ]

    cleaned = redact_args(args)

    assert cleaned == [
        "--token",
        REDACTED,
        "--db-password",
        REDACTED,
        "--author",
        "jane",
        "--gate-db=postgresql://ci:[REDACTED]@db/gate",
        "tests/e2e",
    ]


def test_a_failure_signature_of_a_redacted_message_holds_no_secret() -> None:
    message = f"HTTPError 401 for https://ci:{PASSWORD}@api.acme.io/v1?token=abc"

    signature = failure_signature(redact(message))

    assert PASSWORD not in signature and "abc" not in signature


def test_the_database_url_password_is_hidden() -> None:
    url = f"postgresql+psycopg://gate:{PASSWORD}@db.internal:5432/gate"

    shown = display_url(url)

    assert shown == "postgresql+psycopg://gate:***@db.internal:5432/gate"
    assert display_url("not a url at all") == "<unparseable database URL>"


# Shapes that made earlier patterns backtrack quadratically.
_HOSTILE = ("A", "token", "x=", "x:", "a.", "a://", "a='", "password: ", "&sig=")


def _redaction_cpu(size: int) -> float:
    texts = [shape * (size // len(shape)) for shape in _HOSTILE]
    started = time.process_time()
    for text in texts:
        redact(text)
    return time.process_time() - started


def test_redaction_cost_grows_linearly_with_the_text() -> None:
    """Four times the text costs about four times the CPU, not sixteen."""
    small = _redaction_cpu(50_000)
    large = _redaction_cpu(200_000)

    assert large / max(small, 1e-3) < 8, (small, large)


def test_characters_no_database_can_hold_are_escaped() -> None:
    """NUL and lone surrogates (undecodable bytes) become their escapes."""
    text = "name b'\udc80\udcff' and a NUL \x00 here, token=abc"

    redacted = redact(text)

    assert redacted == "name b'\\udc80\\udcff' and a NUL \\x00 here, token=[REDACTED]"
    assert redacted.encode("utf-8")


def test_storable_escapes_only_what_cannot_be_stored() -> None:
    assert (
        storable("tests/t_\udcff.py::test_x\x00") == "tests/t_\\udcff.py::test_x\\x00"
    )
    assert storable("tests/t_é.py::test_token=abc") == "tests/t_é.py::test_token=abc"


def test_values_of_secret_environment_variables_are_redacted_anywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A test that prints os.environ["DEPLOY_TOKEN"] leaks nothing."""
    monkeypatch.setenv("DEPLOY_TOKEN", "opaque-deploy-value-31337")
    monkeypatch.setenv("SERVICE_PASSWORD", "plain-words-no-pattern")
    monkeypatch.setenv("LOG_LEVEL", "verbose-logging-please")
    monkeypatch.setenv("CI_AUTH", "short")

    text = (
        "deploying with opaque-deploy-value-31337 as plain-words-no-pattern, "
        "verbose-logging-please, short"
    )

    assert redact(text) == (
        "deploying with [REDACTED] as [REDACTED], verbose-logging-please, short"
    )


def test_the_working_directory_variable_is_not_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PWD", "/home/runner/work/shop")

    assert (
        redact("in /home/runner/work/shop/tests") == "in /home/runner/work/shop/tests"
    )
