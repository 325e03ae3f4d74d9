"""Where a session runs: CI context, commit and branch, host and versions."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Mapping
from pathlib import Path

from gate_tracker.records import LOCAL_EVENT, CIContext

GITHUB_PROVIDER = "github-actions"


def ci_context(environ: Mapping[str, str] = os.environ) -> CIContext | None:
    """The GitHub Actions context of this process, or None outside it."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return None

    repository = environ.get("GITHUB_REPOSITORY") or None
    run_id = environ.get("GITHUB_RUN_ID") or None
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    url = (
        f"{server}/{repository}/actions/runs/{run_id}"
        if repository and run_id
        else None
    )
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "")
    if url and attempt.isdigit():
        url += f"/attempts/{attempt}"
    return CIContext(
        provider=GITHUB_PROVIDER,
        repository=repository,
        workflow=environ.get("GITHUB_WORKFLOW") or None,
        job=environ.get("GITHUB_JOB") or None,
        run_id=run_id,
        run_attempt=int(attempt) if attempt.isdigit() else None,
        event=environ.get("GITHUB_EVENT_NAME") or None,
        url=url,
    )


def event_of(ci: CIContext | None) -> str:
    """The triggering event: the CI event, or ``local`` outside CI."""
    if ci is None or not ci.event:
        return LOCAL_EVENT
    return ci.event


def commit_and_branch(
    directory: Path, environ: Mapping[str, str] = os.environ
) -> tuple[str | None, str | None]:
    """The commit SHA and branch: from GitHub Actions, else from git, else None.

    For a pull request GitHub's ``GITHUB_HEAD_REF`` names the branch. Git is
    read from its files, not by running it, so this costs nothing measurable.
    """
    if environ.get("GITHUB_ACTIONS") == "true":
        branch = environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME")
        return environ.get("GITHUB_SHA") or None, branch or None
    try:
        return _git_head(directory)
    except (OSError, ValueError):  # unreadable, or not UTF-8: commit unknown
        return None, None


def _git_head(directory: Path) -> tuple[str | None, str | None]:
    git_dir = _find_git_dir(directory)
    if git_dir is None:
        return None, None

    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref: "):
        return head or None, None

    ref = head[len("ref: ") :]
    branch = ref.removeprefix("refs/heads/")
    return _resolve_ref(git_dir, ref), branch


def _find_git_dir(directory: Path) -> Path | None:
    for candidate in (directory, *directory.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            # A worktree or submodule: ".git" is a file naming the real one.
            text = dot_git.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir: "):
                return (candidate / text[len("gitdir: ") :]).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()

    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip() or None

    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None


def hostname() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()
