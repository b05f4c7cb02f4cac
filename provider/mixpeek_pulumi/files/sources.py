"""A bundle's files as every reader hands them on (``SourceFile``), and the caps they are read
against: a number of files and a total size (the documented 1,000 files and 500 MB for
plugins), refused the moment either is passed (``Tally``), so already in ``check``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Final

from ..errors import BundleError
from ..sizes import size_text


@dataclass(frozen=True)
class Limits:
    """How much one bundle may hold, in files and in bytes before compression; for a .zip, how
    many entries (files and folders) its central directory may list and how large it may be."""

    max_files: int
    max_bytes: int
    noun: str = "bundle"
    max_entries: int = 200_000
    max_directory_bytes: int = 64 * 1024 * 1024


# An entry per folder besides each file: twice the files is room for any real build. The
# directory's size bounds what zipfile reads and parses at once: about 335 bytes an entry.
APP_LIMITS: Final = Limits(
    max_files=100_000,
    max_bytes=4 * 1024**3,
    max_entries=200_000,
    max_directory_bytes=64 * 1024 * 1024,
)
# The documented plugin limits: 500 MB and 1,000 files.
PLUGIN_LIMITS: Final = Limits(
    max_files=1_000,
    max_bytes=500 * 1024 * 1024,
    noun="plugin source",
    max_entries=2_000,
    max_directory_bytes=2 * 1024 * 1024,
)


@dataclass(frozen=True)
class SourceFile:
    """One file of a bundle: its POSIX path inside the bundle and how to read it (``path`` is
    where a file of a folder lives, for reads that skip the opener; None inside a .zip)."""

    rel: str
    size: int
    open: Callable[[], IO[bytes]] = field(compare=False, repr=False)
    path: str | None = field(default=None, compare=False, repr=False)
    identity: tuple[int, int, int, int, int] | None = field(default=None, compare=False, repr=False)
    """Size, mtime, ctime, inode and device when the folder was walked (the walk's own stat)."""


def os_reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


class Tally:
    """The running count and size, refused the moment either passes its cap."""

    def __init__(self, root: str, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def add(self, rel: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
            raise BundleError(
                self.root,
                f"it has more than {self.limits.max_files:,} files, the most a "
                f"{self.limits.noun} may hold",
            )
        if self.bytes > self.limits.max_bytes:
            raise BundleError(
                self.root,
                f"its files add up to more than {size_text(self.limits.max_bytes)} (reached at "
                f"{rel}), the most a {self.limits.noun} may hold",
            )
