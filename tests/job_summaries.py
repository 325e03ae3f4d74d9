"""Helpers for tests of job summaries: render Markdown as GitHub does, read tables."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt


def render(markdown: str) -> str:
    """HTML as GitHub-flavoured Markdown renders it (tables on, raw HTML kept)."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def cells(html: str) -> list[list[str]]:
    """The cells of every table row in ``html``, header rows included."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows]


def actions_env(summary: Path) -> dict[str, str]:
    """The variables that make a process think it runs in a GitHub Actions job."""
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
