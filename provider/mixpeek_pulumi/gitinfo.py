"""Git commit metadata of the work tree a bundle lives in, for deploy messages."""

from __future__ import annotations

import shutil
import subprocess
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
