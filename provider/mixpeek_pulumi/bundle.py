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
  per entry and in total, past which it is refused as a zip bomb. Damaged, encrypted or exotic
  archives, duplicate or escaping names, special files and unreadable files are refused by name.

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
from typing import IO, Final, TypeVar

from .errors import BundleError

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
# What reading a damaged, encrypted or exotic archive member raises.
UNREADABLE: Final = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, RuntimeError)


@dataclass(frozen=True)
class Limits:
    """How much one bundle may hold, in files and in bytes before compression."""

    max_files: int
    max_bytes: int
    noun: str = "bundle"


APP_LIMITS: Final = Limits(max_files=100_000, max_bytes=4 * 1024**3)
# The documented plugin limits: 500 MB and 1,000 files.
PLUGIN_LIMITS: Final = Limits(max_files=1_000, max_bytes=500 * 1024 * 1024, noun="plugin source")


@dataclass(frozen=True)
class SourceFile:
    """One file of a bundle: its POSIX path inside the bundle and how to read it (``path`` is
    where a file of a folder lives, for reads that skip the opener; None inside a .zip)."""

    rel: str
    size: int
    open: Callable[[], IO[bytes]] = field(compare=False, repr=False)
    path: str | None = field(default=None, compare=False, repr=False)


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
        elif source.is_file() and zipfile.is_zipfile(source):
            files = _zip_entries(source, str(source), excludes, limits)
        elif source.is_file():
            raise BundleError(str(source), "it is neither a folder nor a .zip archive")
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
                f"its files add up to more than {_size(self.limits.max_bytes)} (reached at "
                f"{rel}), the most a {self.limits.noun} may hold",
            )


def _size(n: int) -> str:
    return f"{n / 1024**3:g} GiB" if n >= 1024**3 else f"{n / 1024**2:g} MB"


class _Walk:
    """A folder, walked with symlinks judged and folders followed safely. Plain entries take
    the fast path (what ``scandir`` already knows, one ``stat`` per file for its size); only
    links are resolved."""

    def __init__(self, root: Path, excludes: Excludes, limits: Limits) -> None:
        self.root = root
        self.real_root = root.resolve(strict=True)
        self.excludes = excludes
        self.tally = _Tally(str(root), limits)

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
                    found = self._file(entry.path, entry.stat(follow_symlinks=False).st_size, rel)
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
        return self._file(str(path), info.st_size, rel)

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

    def _file(self, path: str, size: int, rel: str) -> SourceFile | None:
        if self.excludes.excluded(rel):
            return None
        self.tally.add(rel, size)
        return SourceFile(rel, size, functools.partial(_open_file, path, rel), path)  # type: ignore[arg-type]

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
        raise BundleError(str(root), f"the name {shown!r} is not valid UTF-8") from None
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


def _zip_name(name: str, source: str) -> str:
    """The entry's path as the service would place it, or a refusal for one that escapes."""
    if "\\" in name or "\0" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(source, f"the entry {name!r} escapes the archive root")
    clean = posixpath.normpath(name)
    if clean == ".." or clean.startswith("../") or clean in (".", ""):
        raise BundleError(source, f"the entry {name!r} escapes the archive root")
    return _utf8(clean, source)


def _zip_entries(
    source: ZipSource, label: str, excludes: Excludes, limits: Limits
) -> list[SourceFile]:
    files: list[SourceFile] = []
    seen: set[str] = set()
    tally = _Tally(label, limits)
    compressed = 0
    try:
        with zipfile.ZipFile(source) as listing:
            infos = [i for i in listing.infolist() if not i.is_dir()]
    except (*UNREADABLE, ValueError) as exc:
        raise BundleError(label, f"it is not a readable zip archive ({exc})") from None
    archive = _Archive(source)
    for info in infos:
        name = _zip_name(info.filename, label)
        if folded(name) in seen:
            raise BundleError(label, f"the entry {name!r} appears more than once")
        seen.add(folded(name))
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
            opener = _zip_opener(archive, info.filename, name, label)
            files.append(SourceFile(name, info.file_size, opener))
    return files


def _usable(info: zipfile.ZipInfo, name: str, source: str) -> None:
    """Refuse what the service could not, or should not, read: encrypted entries, exotic
    compression, links and devices, and entries that expand like a bomb."""
    if info.flag_bits & 0x1:
        raise BundleError(source, f"the entry {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(
            source,
            f"the entry {name!r} uses compression method {info.compress_type}; only stored "
            "and deflated entries can be read",
        )
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer recorded no type
    if kind not in (0, stat.S_IFREG):
        raise BundleError(source, f"the entry {name!r} is a link or a special file")
    if info.file_size > ENTRY_RATIO_FROM and info.file_size > MAX_ENTRY_RATIO * max(
        info.compress_size, 1
    ):
        raise BundleError(
            source,
            f"the entry {name!r} expands more than {MAX_ENTRY_RATIO}:1, which is a zip bomb",
        )


class _Archive:
    """One open zip shared by every entry of one collection: opening a zip reads its whole
    central directory, so an open per entry made hashing a bundle of n entries cost n².
    ``ZipFile`` serialises its members' reads of the one file, so the pool's threads may share
    it; it closes when the collection's files are dropped."""

    def __init__(self, source: ZipSource) -> None:
        self.source = source
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def open(self, member: str) -> IO[bytes]:
        with self._lock:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.source)
                # Closed by a callback, not by ZipFile.__del__: when the files end up in a
                # reference cycle (an exception's traceback), the collector may finalize the
                # open file before the ZipFile, and the file then closes itself with a
                # ResourceWarning. Weakref callbacks run before any finalizer.
                weakref.finalize(self, self._zip.close)
        return self._zip.open(member)


def _zip_opener(archive: _Archive, member: str, name: str, label: str) -> Callable[[], IO[bytes]]:
    @contextmanager
    def opened() -> Iterator[IO[bytes]]:
        with archive.open(member) as handle:
            yield _Guarded(handle, name, label)  # type: ignore[misc]

    return opened  # type: ignore[return-value]


class _Guarded:
    """A zip member's stream whose read errors (bad CRC, truncated data) name the entry."""

    def __init__(self, handle: IO[bytes], name: str, source: str) -> None:
        self.handle = handle
        self.name = name
        self.source = source

    def read(self, size: int = -1) -> bytes:
        try:
            return self.handle.read(size)
        except UNREADABLE as exc:
            raise BundleError(
                self.source, f"the entry {self.name!r} cannot be read ({exc})"
            ) from None


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
    hashes = parallel(files, hash_file)
    h = hashlib.sha256()
    for f, file_hash in zip(files, hashes, strict=True):
        h.update(entry_line(f, file_hash))
    return Digest(h.hexdigest(), len(files), sum(f.size for f in files))


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
    thousands of small files spend their time on."""
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
    same_size(f, len(data))
    return data


def hash_file(f: SourceFile) -> bytes:
    if f.size <= CHUNK:
        return hashlib.sha256(read_whole(f)).digest()
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
