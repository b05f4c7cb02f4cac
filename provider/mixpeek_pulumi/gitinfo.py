"""Git commit metadata of the work tree a bundle lives in, for deploy messages."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    sha: str | None = None
    subject: str | None = None
    author: str | None = None


def detect(path: Path) -> GitInfo:
    """The HEAD commit of the work tree holding ``path``, or empty when there is none."""
    git = shutil.which("git")
    folder = path if path.is_dir() else path.parent
    if git is None or not folder.exists():
        return GitInfo()
    try:
        result = subprocess.run(
            [git, "-C", str(folder), "log", "-1", "--format=%H%n%s%n%an <%ae>"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return GitInfo()
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) < 3:
        return GitInfo()
    return GitInfo(sha=lines[0], subject=lines[1], author=lines[2])


@dataclass(frozen=True)
class Relation:
    """How commit ``ours`` stands to commit ``theirs`` in a work tree's history: ``older``
    (an ancestor of theirs), ``newer``, ``same``, ``diverged`` (on different branches), or
    ``unknown``, with ``why`` saying what kept it from being known."""

    kind: str
    why: str = ""


def relation(path: Path, ours: str, theirs: str) -> Relation:
    """Where ``ours`` stands to ``theirs`` in the history of the work tree holding ``path``,
    asked of git itself (``merge-base --is-ancestor``)."""
    git = shutil.which("git")
    folder = path if path.is_dir() else path.parent
    if git is None:
        return Relation("unknown", "git is not installed here")
    if not folder.exists():
        return Relation("unknown", f"{folder} does not exist")
    run = _runner(git, folder)
    inside = run("rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0:
        return Relation("unknown", f"{folder} is not in a git work tree")
    full: list[str] = []
    for sha in (ours, theirs):
        found = run("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
        if found is None or found.returncode != 0:
            return Relation(
                "unknown",
                f"this clone does not have commit {sha[:12]} (a shallow clone? fetch the "
                "whole history, e.g. actions/checkout with fetch-depth: 0)",
            )
        full.append(found.stdout.strip())
    return _ancestry(run, full[0], full[1])


Runner = Callable[..., "subprocess.CompletedProcess[str] | None"]


def _runner(git: str, folder: Path) -> Runner:
    def run(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(
                [git, "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None

    return run


def _ancestry(run: Runner, ours: str, theirs: str) -> Relation:
    if ours == theirs:
        return Relation("same")
    for kind, (a, b) in (("older", (ours, theirs)), ("newer", (theirs, ours))):
        answer = run("merge-base", "--is-ancestor", a, b)
        if answer is not None and answer.returncode == 0:
            return Relation(kind)
    base = run("merge-base", ours, theirs)
    if base is not None and base.returncode == 1:
        return Relation("unknown", "the two commits share no history")
    return Relation("diverged", "they are on different branches")
