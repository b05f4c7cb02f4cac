"""Real git histories for tests: a repository whose commits each hold a build, and clones of
it checked out at one commit (a CI runner's checkout), whole or shallow."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.sites import write_tree

IDENTITY = ["-c", "user.name=CI", "-c", "user.email=ci@example.com", "-c", "commit.gpgsign=false"]


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=folder, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def history(root: Path, builds: Sequence[Mapping[str, str]], folder: str = "dist") -> list[str]:
    """A repository at ``root`` with one commit per build (its files under ``folder``); the
    commits' SHAs, oldest first."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    return [commit(root, files, folder) for files in builds]


def commit(root: Path, files: Mapping[str, str], folder: str = "dist") -> str:
    """One more commit whose ``folder`` holds exactly ``files``; its SHA."""
    target = root / folder
    if target.exists():
        git(root, "rm", "-rq", "--ignore-unmatch", folder)
    write_tree(target, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"build of {sorted(files)[0] if files else 'nothing'}")
    return git(root, "rev-parse", "HEAD")


def checkout(origin: Path, target: Path, sha: str, *, depth: int | None = None) -> Path:
    """A clone of ``origin`` at ``sha``, as a CI runner checks a commit out: with the whole
    history, or only the last ``depth`` commits of it."""
    shallow = ["--depth", str(depth)] if depth else []
    subprocess.run(
        ["git", "clone", "-q", *shallow, f"file://{origin}", str(target)],
        check=True,
        capture_output=True,
    )
    git(target, "checkout", "-q", sha)
    return target
