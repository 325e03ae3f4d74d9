"""Rendering details of the report: links, escaping and redaction of values."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import SessionFactory
from job_summaries import render

from gate_tracker import report_rendering
from gate_tracker.records import StoredRun
from gate_tracker.storage import Store


@pytest.fixture
def stored_run(store: Store, make_session: SessionFactory) -> StoredRun:
    store.record_session(make_session(0))
    return store.runs("e2e-gate")[0]


def test_a_run_link_keeps_an_ordinary_github_address(stored_run: StoredRun) -> None:
    label = report_rendering._run_label(stored_run)

    assert label == (
        "[CI run 1000 attempt 1](<https://github.com/acme/shop/actions/runs/1000>)"
    )
    assert 'href="https://github.com/acme/shop/actions/runs/1000"' in render(label)


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", ""],
)
def test_a_run_address_that_is_not_http_gets_no_link(
    stored_run: StoredRun, url: str
) -> None:
    run = dataclasses.replace(stored_run, url=url)

    assert report_rendering.run_url(run) is None
    assert report_rendering._run_label(run) == "CI run 1000 attempt 1"


def test_a_hostile_run_address_cannot_end_the_link_or_add_markup(
    stored_run: StoredRun,
) -> None:
    run = dataclasses.replace(
        stored_run, url="https://ci.example/run/1> <img src=x onerror=alert(1)>"
    )

    html = render(report_rendering._run_label(run))

    assert "<img" not in html
    assert (
        'href="https://ci.example/run/1%3E%20%3Cimg%20src=x%20onerror=alert(1)%3E"'
        in html
    )


def test_a_token_in_a_run_address_is_redacted(stored_run: StoredRun) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    run = dataclasses.replace(
        stored_run, url=f"https://ci.example/run/1?access_token={token}"
    )

    url = report_rendering.run_url(run)

    assert url is not None
    assert token not in url
    assert "[REDACTED]" in url


def test_md_filter_redacts_before_it_escapes() -> None:
    # Escaping first would turn api_key= into api\\_key=, which no pattern
    # recognises; the secret must be gone either way.
    escaped = report_rendering._md("connect failed: api_key=sk9aaaaaaaaaaaaaaaaa | *x*")

    assert "sk9aaaaaaaaaaaaaaaaa" not in escaped
    assert escaped.endswith(r"\| \*x\*")
