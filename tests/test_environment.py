"""Commit and branch of a session, read from GitHub's variables or git's files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gate_tracker.environment import commit_and_branch

SHA = "0123456789abcdef0123456789abcdef01234567"


def git(directory: Path, *args: str) -> str:
    found = subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A real repository with one commit on the branch ``work``."""
    git(tmp_path, "init", "-q", "-b", "work")
    (tmp_path / "a.txt").write_text("a\n")
    git(tmp_path, "add", "a.txt")
    git(
        tmp_path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "one",
    )
    return tmp_path


def test_branch_and_commit_come_from_git_in_a_subdirectory(repository: Path) -> None:
    inner = repository / "e2e"
    inner.mkdir()

    assert commit_and_branch(inner, environ={}) == (
        git(repository, "rev-parse", "HEAD"),
        "work",
    )


def test_packed_refs_and_a_detached_head_are_read(repository: Path) -> None:
    head = git(repository, "rev-parse", "HEAD")
    git(repository, "pack-refs", "--all")
    assert commit_and_branch(repository, environ={}) == (head, "work")

    git(repository, "checkout", "-q", "--detach")
    assert commit_and_branch(repository, environ={}) == (head, None)


def test_github_variables_win_over_git(repository: Path) -> None:
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": SHA,
        "GITHUB_REF_NAME": "main",
        "GITHUB_HEAD_REF": "",
    }

    assert commit_and_branch(repository, environ=environ) == (SHA, "main")


def test_a_head_that_is_not_utf8_leaves_commit_and_branch_unknown(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"ref: refs/heads/\xff\n")

    assert commit_and_branch(tmp_path, environ={}) == (None, None)
