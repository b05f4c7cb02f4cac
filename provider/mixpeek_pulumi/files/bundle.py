"""The one reader of untrusted trees and archives: a build folder or a .zip, read into a sorted
list of files and a content digest, every failure a ``BundleError`` naming the file.

Treat every tree and archive as hostile:

- **Secrets never ship.** Default exclusions (VCS data, keys, credentials) are matched on the
  NFKC-normalized, case-folded name, so ``.ENV``, ``ID_RSA`` and ``Server.PEM`` are left out too.
  A symlink is judged by what it points to as well as by its own name: a link to an excluded
  file or folder is refused with a sentence saying why.
- **Symlinked folders are followed**, as ``zip -r`` does, when they stay inside the bundle and
  do not loop; their files ship under the link's path. A link leaving the bundle, or looping,
  is refused. Nothing is dropped silently.
- **Caps**, checked while reading and so already in ``check``: a number of files and a total
  size (the documented 1,000 files and 500 MB for plugins), and for a .zip a compression ratio,
  per entry and in total, past which it is refused as a zip bomb. A .zip's entry count and the
  size of its central directory are capped too, read from its end records before ``zipfile``
  parses anything. Damaged, encrypted or exotic archives, escaping names, special files and
  unreadable files are refused by name: every failure of ``zipfile`` or ``zlib`` passes through
  one guard, ``ZipGuard``. A refusal names files as they are; ``BundleError`` escapes what a
  terminal would act on, so a hostile name cannot forge or rewrite a line of the output.
- **One rule for names** (``Names``), wherever a bundle is read (a folder, a .zip, ``check``,
  an import): two names that differ only in case or Unicode form are refused, since a host on
  case-insensitive storage would serve one of them for both, and so are backslashes and drive
  letters, which unzip tools on Windows misread. So every archive the provider writes, it can
  read back.

The digest covers sorted paths, sizes and bytes only, so rebuilding identical content (new
mtimes, permissions, zip order) never shows as a change.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import posixpath
import re
import stat
import struct
import threading
import unicodedata
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final, TypeVar

from ..errors import BundleError
from ..sizes import size_text

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
CHUNK: Final = 1024 * 1024
# A .zip whose entries expand past these ratios is a zip bomb, not a build.
MAX_ENTRY_RATIO: Final = 1000
ENTRY_RATIO_FROM: Final = 1024 * 1024
MAX_TOTAL_RATIO: Final = 200
TOTAL_RATIO_FROM: Final = 16 * 1024 * 1024
MAX_SOURCE_FILE: Final = 256 * 1024
MAX_SOURCE_TOTAL: Final = 4 * 1024 * 1024
# Everything zipfile and zlib raise on a damaged, hostile or exotic archive: bad headers and
# CRCs, truncated data, encryption (RuntimeError), unknown methods and versions
# (NotImplementedError), names that are not UTF-8 (ValueError), and fields that overflow a
# struct or a seek (struct.error, OverflowError, OSError).
ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    OverflowError,
    struct.error,
    OSError,
)


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


@dataclass(frozen=True)
class Digest:
    sha256: str
    file_count: int
    total_size: int


def folded(name: str) -> str:
    """How names are compared: compatibility-normalized and case-folded."""
    if name.isascii():
        return name.lower()  # the same answer, without the normalization's cost
    return unicodedata.normalize("NFKC", name).casefold()


_DRIVE: Final = re.compile(r"[A-Za-z]:")


class Names:
    """The one rule for the names of a bundle, applied alike to a folder's files, a .zip's
    entries, ``check`` and an import, so that every archive the provider writes it can read
    back. Refused: two names that fold to the same (``folded``), since a host on
    case-insensitive storage would serve one file for both; and a name with a backslash or a
    leading drive letter, which unzip tools on Windows take for a folder or a drive."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: dict[str, str] = {}

    def claim(self, name: str) -> None:
        if "\\" in name or _DRIVE.match(name):
            raise BundleError(
                self.source,
                f"the name '{name}' has a backslash or begins with a drive letter, which unzip "
                "tools on Windows take for a folder or a drive; rename it",
            )
        key = folded(name)
        other = self.seen.get(key)
        if other is None:
            self.seen[key] = name
            return
        if other == name:
            raise BundleError(self.source, f"the entry '{name}' appears more than once")
        first, second = sorted((other, name))
        raise BundleError(
            self.source,
            f"'{first}' and '{second}' differ only in letter case or Unicode form, and a host "
            "that ignores case would serve one of them for both; rename or remove one of them",
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
            files = _zip_entries(source, str(source), excludes, limits)
        elif source.exists():
            raise BundleError(str(source), "it is not a regular file or folder")
        else:
            raise BundleError(str(source), "it does not exist")
    except OSError as exc:
        raise BundleError(str(source), f"it cannot be read ({_os_reason(exc)})") from None
    return files


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


class _Tally:
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


class _Walk:
    """A folder, walked with symlinks judged and folders followed safely. Plain entries take
    the fast path (what ``scandir`` already knows, one ``stat`` per file for its size); only
    links are resolved."""

    def __init__(self, root: Path, excludes: Excludes, limits: Limits) -> None:
        self.root = root
        self.real_root = root.resolve(strict=True)
        self.excludes = excludes
        self.tally = _Tally(str(root), limits)
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
                    _utf8(rel, self.root)
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
                str(self.root), f"the folder {where} cannot be read ({_os_reason(exc)})"
            ) from None

    def _visit(
        self, path: Path, rel: str, ancestors: frozenset[tuple[int, int]]
    ) -> SourceFile | tuple[str, str, frozenset[tuple[int, int]]] | None:
        """Where a followed link leads: a folder to walk or a file to take."""
        try:
            info = path.stat()
        except OSError as exc:
            raise BundleError(str(self.root), f"{rel} cannot be read ({_os_reason(exc)})") from None
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


def _utf8(rel: str, root: Path | str) -> str:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "backslashreplace").decode()
        raise BundleError(str(root), f"the name '{shown}' is not valid UTF-8") from None
    return rel


@contextmanager
def _open_file(path: str, rel: str) -> Iterator[IO[bytes]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise BundleError(rel, f"it cannot be read ({_os_reason(exc)})") from None
    with handle:
        yield handle


# ---------------------------------------------------------------------------------- archives


def collect_archive(
    handle: IO[bytes], label: str, excludes: Excludes, limits: Limits
) -> list[SourceFile]:
    """The files of a zip held in an open file (one downloaded from the service), with the
    same rules as a .zip on disk; ``label`` names it in errors."""
    try:
        files = _zip_entries(handle, label, excludes, limits)
    except BundleError as exc:
        raise exc.called(limits.noun) from None
    files.sort(key=lambda f: f.rel)
    return files


ZipSource = Path | IO[bytes]


class ZipGuard:
    """The one way a zip's failures reach the user: whatever ``zipfile`` or ``zlib`` raise while
    the archive ``label`` (or its ``entry``) is surveyed, opened or read becomes a
    ``BundleError`` naming it and saying what to do, never a traceback. An entry is read long
    after ``collect`` returned, so the guard knows the ``noun`` the user calls the archive."""

    __slots__ = ("entry", "label", "noun")

    def __init__(self, label: str, entry: str | None = None, noun: str = "bundle") -> None:
        self.label = label
        self.entry = entry
        self.noun = noun

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, ZIP_ERRORS):
            why = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
            what = (
                "it is not a readable zip archive"
                if self.entry is None
                else f"the entry '{self.entry}' cannot be read"
            )
            raise BundleError(
                self.label,
                f"{what} ({why}); create the zip again, or use the folder it was made from",
                self.noun,
            ) from None


# The records at the end of a zip, and the fixed part of a central directory entry.
_END: Final = struct.Struct("<4s4H2LH")
_LOCATOR: Final = struct.Struct("<4sLQL")
_END64: Final = struct.Struct("<4sQ2H2L4Q")
_ENTRY_SIZE: Final = 46


def _end_records(handle: IO[bytes]) -> tuple[int, int, int] | None:
    """What a zip's end records claim, found and read the way ``zipfile`` finds and reads them,
    so that what is capped is what it would parse: the number of entries, the central
    directory's size, and where ``zipfile`` will read it from. None without an end record."""
    size = handle.seek(0, os.SEEK_END)
    if size < _END.size:
        return None
    at = size - _END.size
    handle.seek(at)
    record = handle.read(_END.size)
    if not (record.startswith(b"PK\x05\x06") and record.endswith(b"\0\0")):
        # A comment of up to 64 KiB may follow the record: the last signature before it counts.
        lowest = max(size - (1 << 16) - _END.size, 0)
        handle.seek(lowest)
        tail = handle.read()
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or len(tail) - found < _END.size:
            return None
        at, record = lowest + found, tail[found : found + _END.size]
    entries, directory = _END.unpack(record)[4:6]
    start = at - directory
    if at >= _LOCATOR.size + _END64.size:
        handle.seek(at - _LOCATOR.size - _END64.size)
        record64, locator = handle.read(_END64.size), handle.read(_LOCATOR.size)
        # zipfile takes the ZIP64 record from just before its locator, not from the offset
        # the locator gives: so must the caps.
        if locator.startswith(b"PK\x06\x07") and record64.startswith(b"PK\x06\x06"):
            entries, directory = _END64.unpack(record64)[7:9]
            start = at - _LOCATOR.size - _END64.size - directory
    return entries, directory, start


def _survey(handle: IO[bytes], label: str, limits: Limits) -> bool:
    """Refuse a zip whose central directory holds more than ``limits`` allow, from its end
    records, before ``zipfile`` reads and parses every entry of it into memory. False when
    there is no end record: it is not a zip."""
    found = _end_records(handle)
    if found is None:
        return False
    entries, directory, start = found
    if entries > limits.max_entries:
        raise _too_many(label, limits)
    if directory > limits.max_directory_bytes:
        raise BundleError(
            label,
            f"its central directory takes {directory:,} bytes, more than the "
            f"{size_text(limits.max_directory_bytes)} a {limits.noun}'s zip may have",
        )
    if directory > _ENTRY_SIZE * limits.max_entries and start >= 0:
        # The count is only the writer's word: zipfile parses whatever the directory holds.
        handle.seek(start)
        if _count_entries(handle.read(directory), limits.max_entries) > limits.max_entries:
            raise _too_many(label, limits)
    return True


def _too_many(label: str, limits: Limits) -> BundleError:
    return BundleError(
        label,
        f"its central directory lists more than {limits.max_entries:,} entries (files and "
        f"folders), the most a {limits.noun}'s zip may hold",
    )


def _count_entries(directory: bytes, most: int) -> int:
    """How many entries a central directory holds, counted up to one past ``most``; a damaged
    entry ends the count (zipfile refuses it in its turn)."""
    count = at = 0
    while (
        count <= most
        and at + _ENTRY_SIZE <= len(directory)
        and directory.startswith(b"PK\x01\x02", at)
    ):
        names, extra, comment = struct.unpack_from("<3H", directory, at + 28)
        at += _ENTRY_SIZE + names + extra + comment
        count += 1
    return count


def _open_zip(source: ZipSource, label: str, limits: Limits) -> zipfile.ZipFile:
    """The zip at ``source``, opened once its end records are within ``limits``."""
    if isinstance(source, Path):
        with open(source, "rb") as handle, ZipGuard(label):
            is_zip = _survey(handle, label, limits)
    else:
        with ZipGuard(label):
            is_zip = _survey(source, label, limits)
    if not is_zip:
        raise BundleError(label, "it is neither a folder nor a .zip archive")
    with ZipGuard(label):
        return zipfile.ZipFile(source)


def _zip_name(name: str, source: str) -> str:
    """The entry's path as the service would place it, or a refusal for one that escapes
    (backslashes and drive letters are ``Names``' to refuse, as in a folder)."""
    if "\0" in name or name.startswith("/"):
        raise BundleError(source, f"the entry '{name}' escapes the archive root")
    clean = posixpath.normpath(name)
    if clean == ".." or clean.startswith("../") or clean in (".", ""):
        raise BundleError(source, f"the entry '{name}' escapes the archive root")
    return _utf8(clean, source)


def _zip_entries(
    source: ZipSource, label: str, excludes: Excludes, limits: Limits
) -> list[SourceFile]:
    listing = _open_zip(source, label, limits)
    try:
        return _listed(listing, label, excludes, limits)
    except BaseException:
        listing.close()
        raise


def _listed(
    listing: zipfile.ZipFile, label: str, excludes: Excludes, limits: Limits
) -> list[SourceFile]:
    files: list[SourceFile] = []
    names = Names(label)
    tally = _Tally(label, limits)
    compressed = 0
    archive = _Archive(listing, label, limits.noun)
    for info in listing.infolist():
        if info.is_dir():
            continue
        name = _zip_name(info.filename, label)
        _usable(info, name, label)
        tally.add(name, info.file_size)
        compressed += info.compress_size
        if tally.bytes > TOTAL_RATIO_FROM and tally.bytes > MAX_TOTAL_RATIO * max(compressed, 1):
            raise BundleError(
                label,
                f"it expands more than {MAX_TOTAL_RATIO}:1 ({tally.bytes:,} bytes from "
                f"{compressed:,}), which is a zip bomb, not a build",
            )
        if not excludes.excluded(name):
            names.claim(name)
            files.append(SourceFile(name, info.file_size, archive.opener(info, name)))
    return files


def _usable(info: zipfile.ZipInfo, name: str, source: str) -> None:
    """Refuse what the service could not, or should not, read: encrypted entries, exotic
    compression, links and devices, and entries that expand like a bomb."""
    if info.flag_bits & 0x1:
        raise BundleError(source, f"the entry '{name}' is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(
            source,
            f"the entry '{name}' uses compression method {info.compress_type}; only stored "
            "and deflated entries can be read",
        )
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer recorded no type
    if kind not in (0, stat.S_IFREG):
        raise BundleError(source, f"the entry '{name}' is a link or a special file")
    if info.file_size > ENTRY_RATIO_FROM and info.file_size > MAX_ENTRY_RATIO * max(
        info.compress_size, 1
    ):
        raise BundleError(
            source,
            f"the entry '{name}' expands more than {MAX_ENTRY_RATIO}:1, which is a zip bomb",
        )


class _Archive:
    """The zip of one collection, opened once and shared by all its entries: opening a zip
    parses its whole central directory, so an open per entry made hashing n entries cost n².
    ``ZipFile`` serialises its members' reads, so the pool's threads may share it, but it counts
    open members without a lock, so opening and closing them is serialised here. It closes
    when the collection's files are dropped."""

    def __init__(self, listing: zipfile.ZipFile, label: str, noun: str) -> None:
        self.zip = listing
        self.label = label
        self.noun = noun
        self._lock = threading.Lock()
        # Closed by a callback, not by ZipFile.__del__: when the files end up in a reference
        # cycle (an exception's traceback), the collector may finalize the open file before the
        # ZipFile, and the file then closes itself with a ResourceWarning. Weakref callbacks
        # run before any finalizer.
        weakref.finalize(self, listing.close)

    def opener(self, info: zipfile.ZipInfo, name: str) -> Callable[[], IO[bytes]]:
        guard = ZipGuard(self.label, name, self.noun)

        @contextmanager
        def opened() -> Iterator[IO[bytes]]:
            # By its ZipInfo, not its name: a name listed twice would open the other entry.
            with self._lock, guard:
                handle = self.zip.open(info)
            try:
                yield _Guarded(handle, guard)  # type: ignore[misc]
            finally:
                with self._lock:
                    handle.close()

        return opened  # type: ignore[return-value]


class _Guarded:
    """A zip member's stream whose read errors (bad CRC, truncated data) name the entry."""

    def __init__(self, handle: IO[bytes], guard: ZipGuard) -> None:
        self.handle = handle
        self.guard = guard

    def read(self, size: int = -1) -> bytes:
        with self.guard:
            return self.handle.read(size)


def entry_prefix(files: Sequence[SourceFile], entry: str = "index.html") -> str | None:
    """Where ``entry`` sits by the service's rule: the root, or one single top-level folder."""
    names = {f.rel for f in files}
    if entry in names:
        return ""
    tops = {f.rel.split("/", 1)[0] for f in files}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/{entry}" in names:
            return f"{top}/"
    return None


def digest(files: Sequence[SourceFile]) -> Digest:
    """sha256 over each sorted path, its size and its bytes' sha256: independent of mtimes and
    modes. Files are hashed on every core (hashlib and reads release the GIL), in runs of
    neighbours so the pool's own cost stays small."""
    return hashed(files)[0]


def hashed(files: Sequence[SourceFile]) -> tuple[Digest, list[bytes]]:
    """The content digest and each file's sha256, from one read of every file."""
    hashes = parallel(files, hash_file)
    h = hashlib.sha256()
    for f, file_hash in zip(files, hashes, strict=True):
        h.update(entry_line(f, file_hash))
    return Digest(h.hexdigest(), len(files), sum(f.size for f in files)), hashes


T = TypeVar("T")
WORKERS: Final = max(1, min(4, os.cpu_count() or 1))


def parallel(files: Sequence[SourceFile], work: Callable[[SourceFile], T]) -> list[T]:
    """``work`` over ``files`` on ``WORKERS`` threads, results in order."""
    if WORKERS == 1 or len(files) < 64:
        return [work(f) for f in files]
    runs = [files[i :: WORKERS * 4] for i in range(WORKERS * 4)]
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="mixpeek-hash") as pool:
        done = list(pool.map(lambda run: [work(f) for f in run], runs))
    results: list[T] = [None] * len(files)  # type: ignore[list-item]
    for i, found in enumerate(done):
        results[i :: WORKERS * 4] = found
    return results


def entry_line(f: SourceFile, file_hash: bytes) -> bytes:
    return f.rel.encode() + b"\0" + str(f.size).encode() + b"\0" + file_hash


def read_whole(f: SourceFile) -> bytes:
    """A small file's bytes in one read straight into one buffer: per-file Python work is what
    thousands of small files spend their time on. The caller compares the length with
    ``f.size``: a file that changed since it was listed is refused in the caller's words."""
    if f.path is None:
        with f.open() as handle:
            data = handle.read()
    else:
        try:
            fd = os.open(f.path, os.O_RDONLY)
            try:
                data = os.read(fd, f.size + 1)
            finally:
                os.close(fd)
        except OSError as exc:
            raise BundleError(f.rel, f"it cannot be read ({_os_reason(exc)})") from None
    return data


def hash_file(f: SourceFile) -> bytes:
    if f.size <= CHUNK:
        data = read_whole(f)
        same_size(f, len(data))
        return hashlib.sha256(data).digest()
    h = hashlib.sha256()
    read = 0
    with f.open() as handle:
        while block := handle.read(CHUNK):
            h.update(block)
            read += len(block)
    same_size(f, read)
    return h.digest()


def same_size(f: SourceFile, read: int) -> None:
    if read != f.size:
        raise BundleError(
            f.rel, f"the file changed while it was read ({f.size} bytes became {read})"
        )


def source_texts(files: Sequence[SourceFile]) -> dict[str, str]:
    """Text files for the server's source diffs: UTF-8, no NUL bytes, bounded sizes."""
    texts: dict[str, str] = {}
    budget = MAX_SOURCE_TOTAL
    for f in files:
        if f.size > MAX_SOURCE_FILE or f.size > budget:
            continue
        with f.open() as handle:
            data = handle.read(MAX_SOURCE_FILE + 1)
        if b"\0" in data:
            continue
        try:
            texts[f.rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        budget -= f.size
    return texts
