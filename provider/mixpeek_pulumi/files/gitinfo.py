"""What git says of the work tree a bundle (or the program) lives in: the commit it is at, for
deploy messages, and how two commits stand in its history, for the order of deploys.

Every git command is bounded by the operation's deadline and ends on its Cancel (a git that
stalls on a network file system or a lock must not hold a switch), and runs with the checkout
trusted whoever owns it (CI containers check out as another user) but with no repository hook
or fsmonitor run, since only history is read.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..deadline import Deadline

COMMAND_SECONDS: Final = 10.0
SAFE: Final = ("-c", "safe.directory=*", "-c", "core.fsmonitor=false")


@dataclass(frozen=True)
class GitInfo:
    sha: str | None = None
    subject: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class _Ran:
    code: int
    out: str


def _git(folder: Path, args: Sequence[str], deadline: Deadline) -> _Ran | None:
    """``git -C folder args``, or None when git is missing, the deadline passed or the
    operation was cancelled first (the command is then killed)."""
    git = shutil.which("git")
    if git is None or deadline.expired:
        return None
    try:
        proc = subprocess.Popen(
            [git, *SAFE, "-C", str(folder), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    except OSError:
        return None
    bound = deadline.sooner(COMMAND_SECONDS)
    with proc:
        while True:
            try:
                out, _ = proc.communicate(timeout=min(0.1, max(0.01, bound.remaining())))
                return _Ran(proc.returncode, out)
            except subprocess.TimeoutExpired:
                if bound.expired or deadline.cancelled:
                    proc.kill()
                    proc.communicate()
                    return None


def detect(path: Path, deadline: Deadline | None = None) -> GitInfo:
    """The HEAD commit of the work tree holding ``path``, or empty when there is none."""
    folder = path if path.is_dir() else path.parent
    if not folder.exists():
        return GitInfo()
    ran = _git(folder, ["log", "-1", "--format=%H%n%s%n%an <%ae>"], deadline or Deadline.never())
    lines = ran.out.splitlines() if ran is not None else []
    if ran is None or ran.code != 0 or len(lines) < 3:
        return GitInfo()
    return GitInfo(sha=lines[0], subject=lines[1], author=lines[2])


@dataclass(frozen=True)
class Relation:
    """How commit ``ours`` stands to commit ``theirs`` in a work tree's history: ``older``
    (an ancestor of theirs), ``newer``, ``same``, ``diverged`` (on different branches), or
    ``unknown``, with ``why`` saying what kept it from being known."""

    kind: str
    why: str = ""


def relation(
    paths: Sequence[Path], ours: str, theirs: str, deadline: Deadline | None = None
) -> Relation:
    """Where ``ours`` stands to ``theirs`` in the history of the first of ``paths`` that is in
    a work tree (the bundle's folder, then the program's), asked of git itself
    (``merge-base --is-ancestor``)."""
    bound = deadline or Deadline.never()
    if shutil.which("git") is None:
        return Relation("unknown", "git is not installed here")
    tree = _work_tree(paths, bound)
    if isinstance(tree, Relation):
        return tree
    full: list[str] = []
    for sha in (ours, theirs):
        found = _git(tree, ["rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"], bound)
        if found is None:
            return _stopped(bound)
        if found.code != 0:
            return Relation(
                "unknown",
                f"this clone does not have commit {sha[:12]} (a shallow clone? fetch the "
                "whole history, e.g. actions/checkout with fetch-depth: 0)",
            )
        full.append(found.out.strip())
    return _ancestry(tree, full[0], full[1], bound)


def _work_tree(paths: Sequence[Path], deadline: Deadline) -> Path | Relation:
    tried = []
    for path in paths:
        folder = path if path.is_dir() else path.parent
        if not folder.exists():
            continue
        inside = _git(folder, ["rev-parse", "--is-inside-work-tree"], deadline)
        if inside is None:
            return _stopped(deadline)
        if inside.code == 0:
            return folder
        tried.append(str(folder))
    if len(tried) > 1:
        return Relation("unknown", f"neither {' nor '.join(tried)} is in a git work tree")
    return Relation("unknown", f"{tried[0] if tried else 'the folder'} is not in a git work tree")


def _stopped(deadline: Deadline) -> Relation:
    if deadline.cancelled:
        return Relation("unknown", "the operation was interrupted while git was asked")
    return Relation("unknown", f"git did not answer within {COMMAND_SECONDS:g} s")


def _ancestry(tree: Path, ours: str, theirs: str, deadline: Deadline) -> Relation:
    if ours == theirs:
        return Relation("same")
    for kind, (a, b) in (("older", (ours, theirs)), ("newer", (theirs, ours))):
        answer = _git(tree, ["merge-base", "--is-ancestor", a, b], deadline)
        if answer is None:
            return _stopped(deadline)
        if answer.code == 0:
            return Relation(kind)
    base = _git(tree, ["merge-base", ours, theirs], deadline)
    if base is not None and base.code == 1:
        return Relation("unknown", "the two commits share no history")
    return Relation("diverged", "they are on different branches")
