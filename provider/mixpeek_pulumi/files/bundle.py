"""The one reader of an untrusted bundle on disk: a build folder or a .zip, read into a sorted
list of files, every failure a ``BundleError`` naming the file.

A symlink is judged by what it points to as well as by its own name: a link to an excluded file
or folder is refused with a sentence saying why. Symlinked folders are followed, as ``zip -r``
does, when they stay inside the bundle and do not loop; their files ship under the link's path.
A link leaving the bundle, or looping, is refused. Nothing is dropped silently. Special files
and unreadable files are refused by name. A .zip is read by ``zips``, with the same rules.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import BundleError
from .excludes import Excludes
from .names import Names, utf8_name
from .sources import APP_LIMITS, Limits, SourceFile, Tally, os_reason
from .zips import zip_entries


def collect(source: Path, excludes: Excludes, limits: Limits = APP_LIMITS) -> list[SourceFile]:
    """The files of a folder or a .zip after exclusions, sorted by path.

    Raises ``BundleError`` naming the first unsafe, unreadable or oversized entry.
    """
    try:
        files = _read(source, excludes, limits)
    except BundleError as exc:
        raise exc.called(limits.noun) from None
    files.sort(key=lambda f: f.rel)
    return files


def _read(source: Path, excludes: Excludes, limits: Limits) -> list[SourceFile]:
    try:
        if source.is_dir():
            files = _Walk(source, excludes, limits).run()
        elif source.is_file():
            files = zip_entries(source, str(source), excludes, limits)
        elif source.exists():
            raise BundleError(str(source), "it is not a regular file or folder")
        else:
            raise BundleError(str(source), "it does not exist")
    except OSError as exc:
        raise BundleError(str(source), f"it cannot be read ({os_reason(exc)})") from None
    return files


class _Walk:
    """A folder, walked with symlinks judged and folders followed safely. Plain entries take
    the fast path (what ``scandir`` already knows, one ``stat`` per file for its size); only
    links are resolved."""

    def __init__(self, root: Path, excludes: Excludes, limits: Limits) -> None:
        self.root = root
        self.real_root = root.resolve(strict=True)
        self.excludes = excludes
        self.tally = Tally(str(root), limits)
        self.names = Names(str(root))

    def run(self) -> list[SourceFile]:
        files: list[SourceFile] = []
        stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
            (str(self.root), "", frozenset({_identity(self.real_root)}))
        ]
        while stack:
            folder, prefix, ancestors = stack.pop()
            for entry in self._entries(folder, prefix):
                rel = prefix + entry.name
                if not rel.isascii():
                    utf8_name(rel, self.root)
                if entry.is_symlink():
                    found = self._visit(Path(self._link_target(entry.path, rel)), rel, ancestors)
                elif entry.is_dir(follow_symlinks=False):
                    found = self._folder(
                        entry.path, entry.stat(follow_symlinks=False), rel, ancestors
                    )
                elif entry.is_file(follow_symlinks=False):
                    found = self._file(entry.path, entry.stat(follow_symlinks=False), rel)
                else:
                    raise BundleError(
                        str(self.root), f"{rel} is a special file (not a regular file)"
                    )
                if isinstance(found, SourceFile):
                    files.append(found)
                elif found is not None:
                    stack.append(found)
        return files

    def _entries(self, folder: str, prefix: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as listing:
                return sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            where = prefix.rstrip("/") or "."
            raise BundleError(
                str(self.root), f"the folder {where} cannot be read ({os_reason(exc)})"
            ) from None

    def _visit(
        self, path: Path, rel: str, ancestors: frozenset[tuple[int, int]]
    ) -> SourceFile | tuple[str, str, frozenset[tuple[int, int]]] | None:
        """Where a followed link leads: a folder to walk or a file to take."""
        try:
            info = path.stat()
        except OSError as exc:
            raise BundleError(str(self.root), f"{rel} cannot be read ({os_reason(exc)})") from None
        if stat.S_ISDIR(info.st_mode):
            return self._folder(str(path), info, rel, ancestors)
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(str(self.root), f"{rel} is a special file (not a regular file)")
        return self._file(str(path), info, rel)

    def _folder(
        self, path: str, info: os.stat_result, rel: str, ancestors: frozenset[tuple[int, int]]
    ) -> tuple[str, str, frozenset[tuple[int, int]]] | None:
        if self.excludes.excluded(rel, folder=True):
            return None
        identity = (info.st_dev, info.st_ino)
        if identity in ancestors:
            raise BundleError(
                str(self.root), f"the symlink {rel} loops back to a folder that contains it"
            )
        return path, rel + "/", ancestors | {identity}

    def _file(self, path: str, info: os.stat_result, rel: str) -> SourceFile | None:
        if self.excludes.excluded(rel):
            return None
        size = info.st_size
        self.names.claim(rel)
        self.tally.add(rel, size)
        seen = (size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
        return SourceFile(rel, size, functools.partial(_open_file, path, rel), path, seen)  # type: ignore[arg-type]

    def _link_target(self, link: str, rel: str) -> Path:
        """Where a symlink leads, if it may be followed: inside the bundle, resolvable, and
        not to anything the exclusions leave out."""
        try:
            target = Path(link).resolve(strict=True)
        except (OSError, RuntimeError):
            raise BundleError(str(self.root), f"the symlink {rel} is broken or loops") from None
        if not target.is_relative_to(self.real_root):
            raise BundleError(str(self.root), f"the symlink {rel} points outside the bundle folder")
        inside = target.relative_to(self.real_root).as_posix()
        if inside != "." and self.excludes.excluded(inside, folder=target.is_dir()):
            raise BundleError(
                str(self.root),
                f"the symlink {rel} points to {inside}, which is left out of the bundle (a "
                "secret or an exclusion); remove the link or re-include the target",
            )
        return target


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


@contextmanager
def _open_file(path: str, rel: str) -> Iterator[IO[bytes]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise BundleError(rel, f"it cannot be read ({os_reason(exc)})") from None
    with handle:
        yield handle
