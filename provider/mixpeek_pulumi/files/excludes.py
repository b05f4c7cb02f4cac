"""Which files a bundle leaves out. Secrets never ship: the default exclusions (VCS data, keys,
credentials) are matched on the NFKC-normalized, case-folded name, so ``.ENV``, ``ID_RSA`` and
``Server.PEM`` are left out too, unless a ``!pattern`` re-includes them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Final

from .names import folded

# Left out of every bundle unless re-included with "!pattern": VCS data and credentials.
DEFAULT_EXCLUDES: Final[tuple[str, ...]] = (
    ".git/",
    ".hg/",
    ".svn/",
    ".DS_Store",
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".aws/",
    ".ssh/",
    ".gnupg/",
    "credentials.json",
    "*.tfstate",
    "*.tfvars",
)


class Excludes:
    """gitignore-like rules, matched case-insensitively: ``dir/`` prunes a folder (at any depth,
    or from the root if it has a ``/``), a bare name matches a file at any depth, a pattern with
    ``/`` matches the whole path, ``!pattern`` re-includes; the last rule that matches wins."""

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        raw = [(True, p) for p in DEFAULT_EXCLUDES]
        for text in patterns:
            pattern = text.strip()
            if pattern:
                raw.append((not pattern.startswith("!"), pattern.lstrip("!")))
        self.rules = [(exclude, *_compile(folded(pattern))) for exclude, pattern in raw]
        # Without "!" rules the order cannot matter: one alternation per kind answers at once,
        # which is what a preview of thousands of files needs.
        self._fast: tuple[re.Pattern[str] | None, ...] | None = None
        self._folders: dict[str, bool] = {}
        if all(exclude for exclude, _, _ in self.rules):
            self._fast = tuple(
                re.compile("|".join(r.pattern for _, k, r in self.rules if k == kind))
                if any(k == kind for _, k, _ in self.rules)
                else None
                for kind in ("dir", "path", "name")
            )

    def excluded(self, rel: str, *, folder: bool = False) -> bool:
        """Whether ``rel`` (a file, or with ``folder`` a folder) is left out."""
        path = folded(rel)
        if self._fast is not None:
            return self._excluded_fast(path, folder)
        where, _, name = path.rpartition("/")
        subjects = (path if folder else where, path, "" if folder else name)
        verdict = False
        for exclude, kind, regex in self.rules:
            subject = subjects[_KINDS[kind]]
            if subject and regex.match(subject):
                verdict = exclude
        return verdict

    def _excluded_fast(self, path: str, folder: bool) -> bool:
        assert self._fast is not None
        dirs, paths, names = self._fast
        if paths is not None and paths.match(path):
            return True
        if folder:
            return dirs is not None and dirs.match(path) is not None
        where, _, name = path.rpartition("/")
        if names is not None and names.match(name):
            return True
        return bool(where) and dirs is not None and self._folder_excluded(dirs, where)

    def _folder_excluded(self, dirs: re.Pattern[str], where: str) -> bool:
        # The files of one folder share its answer: asked once per folder, not once per file.
        verdict = self._folders.get(where)
        if verdict is None:
            verdict = self._folders[where] = dirs.match(where) is not None
        return verdict


_KINDS: Final = {"dir": 0, "path": 1, "name": 2}


def _compile(pattern: str) -> tuple[str, re.Pattern[str]]:
    if pattern.endswith("/"):
        name = pattern.strip("/")
        body = fnmatch.translate(name).removesuffix(r"\Z")
        anywhere = "" if "/" in name else r"(?:.*/)?"
        # Matches the folder itself or any folder inside it.
        return "dir", re.compile(rf"{anywhere}{body}(?:/.*)?\Z")
    if "/" in pattern:
        return "path", re.compile(fnmatch.translate(pattern.lstrip("/")))
    return "name", re.compile(fnmatch.translate(pattern))
