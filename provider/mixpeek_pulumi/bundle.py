"""Turning a build folder or a .zip into a deterministic archive and a content digest.

The digest covers sorted relative paths and file bytes only, so rebuilding identical content
(new mtimes, permissions, zip order) never shows as a change. Secret-looking files are left out
unless a ``!pattern`` brings them back. Nothing is ever extracted or followed outside the bundle:
symlinks leaving the folder, special files and unsafe zip entries are refused by name.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Final

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
MAX_ZIP_RATIO: Final = 200
MAX_SOURCE_FILE: Final = 256 * 1024
MAX_SOURCE_TOTAL: Final = 4 * 1024 * 1024
FIXED_DATE: Final = (1980, 1, 1, 0, 0, 0)
# Already-compressed formats gain nothing from deflate, which runs at ~25 MB/s on them.
STORED_SUFFIXES: Final = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".avif",
        ".heic",
        ".woff",
        ".woff2",
        ".mp3",
        ".mp4",
        ".m4a",
        ".webm",
        ".ogg",
        ".ogv",
        ".mov",
        ".zip",
        ".gz",
        ".tgz",
        ".br",
        ".zst",
        ".xz",
        ".bz2",
        ".7z",
        ".jar",
        ".whl",
    ]
)
SAMPLE: Final = 64 * 1024


@dataclass(frozen=True)
class SourceFile:
    """One file of a bundle: its POSIX path inside the bundle and how to read it."""

    rel: str
    size: int
    open: Callable[[], IO[bytes]] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Digest:
    sha256: str
    file_count: int
    total_size: int


@dataclass(frozen=True)
class Archive:
    """A packaged bundle on disk; the caller removes ``path`` when done."""

    path: Path
    digest: Digest
    size: int
    md5_base64: str
    sha256: str


class Excludes:
    """gitignore-like rules: ``dir/`` prunes a folder, a bare name matches at any depth, a
    pattern with ``/`` matches the whole path, and ``!pattern`` re-includes."""

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        self.rules: list[tuple[bool, str]] = [(True, p) for p in DEFAULT_EXCLUDES]
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            if pattern.startswith("!"):
                self.rules.append((False, pattern[1:]))
            else:
                self.rules.append((True, pattern))

    def excluded(self, rel: str) -> bool:
        parts = PurePosixPath(rel).parts
        verdict = False
        for exclude, pattern in self.rules:
            if _matches(pattern, rel, parts):
                verdict = exclude
        return verdict


def _matches(pattern: str, rel: str, parts: tuple[str, ...]) -> bool:
    if pattern.endswith("/"):
        name = pattern.rstrip("/")
        return any(fnmatch.fnmatchcase(p, name) for p in parts[:-1]) or (
            "/" in name and rel.startswith(name + "/")
        )
    if "/" in pattern:
        return fnmatch.fnmatchcase(rel, pattern.lstrip("/"))
    return fnmatch.fnmatchcase(parts[-1], pattern)


def collect(source: Path, excludes: Excludes) -> list[SourceFile]:
    """The files of a folder or a .zip after exclusions, sorted by path.

    Raises ``BundleError`` naming the first unsafe or unreadable entry.
    """
    if not source.exists():
        raise BundleError(str(source), "it does not exist")
    if source.is_dir():
        files = list(_walk(source, excludes))
    elif zipfile.is_zipfile(source):
        files = _zip_entries(source, excludes)
    elif source.is_file():
        raise BundleError(str(source), "it is neither a folder nor a .zip archive")
    else:
        raise BundleError(str(source), "it is not a regular file or folder")
    files.sort(key=lambda f: f.rel)
    return files


def _walk(root: Path, excludes: Excludes) -> Iterator[SourceFile]:
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise BundleError(str(folder), f"the folder cannot be read ({exc.strerror})") from None
        for entry in entries:
            path = Path(entry.path)
            rel = _rel_name(path, root)
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise BundleError(
                        str(root), f"the symlink {rel} points outside the bundle folder"
                    )
                if target.is_dir():
                    continue  # the target folder is bundled where it really is
            try:
                info = path.stat()
            except OSError as exc:
                raise BundleError(str(root), f"{rel} cannot be read ({exc.strerror})") from None
            if stat.S_ISDIR(info.st_mode):
                if not excludes.excluded(rel + "/x"):
                    stack.append(path)
                continue
            if not stat.S_ISREG(info.st_mode):
                raise BundleError(str(root), f"{rel} is a special file (not a regular file)")
            if excludes.excluded(rel):
                continue
            if not os.access(path, os.R_OK):
                raise BundleError(str(root), f"{rel} is not readable")
            yield SourceFile(rel, info.st_size, _opener(path))


def _rel_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BundleError(str(root), f"the name {rel!r} is not valid UTF-8") from None
    return rel


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def _zip_entries(source: Path, excludes: Excludes) -> list[SourceFile]:
    files: list[SourceFile] = []
    seen: set[str] = set()
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir():
                    continue
                pure = PurePosixPath(name)
                if name.startswith("/") or pure.is_absolute() or ".." in pure.parts or "\\" in name:
                    raise BundleError(str(source), f"the entry {name!r} escapes the archive root")
                if name in seen:
                    raise BundleError(str(source), f"the entry {name!r} appears more than once")
                seen.add(name)
                if info.file_size > CHUNK and info.file_size > MAX_ZIP_RATIO * max(
                    info.compress_size, 1
                ):
                    raise BundleError(
                        str(source), f"the entry {name!r} has an extreme compression ratio"
                    )
                if excludes.excluded(name):
                    continue
                files.append(SourceFile(name, info.file_size, _zip_opener(source, name)))
    except zipfile.BadZipFile as exc:
        raise BundleError(str(source), f"it is not a valid zip archive ({exc})") from None
    return files


def _zip_opener(source: Path, name: str) -> Callable[[], IO[bytes]]:
    @contextmanager
    def opened() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(source) as archive, archive.open(name) as handle:
            yield handle

    return opened  # type: ignore[return-value]


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
    """sha256 over each sorted path, its size and its bytes: independent of mtimes and modes."""
    h = hashlib.sha256()
    total = 0
    for f in files:
        h.update(f.rel.encode() + b"\0" + str(f.size).encode() + b"\0")
        with f.open() as handle:
            while block := handle.read(CHUNK):
                h.update(block)
        total += f.size
    return Digest(h.hexdigest(), len(files), total)


class _HashingWriter:
    """An unseekable sink, so zipfile streams with data descriptors and never rewinds."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.md5 = hashlib.md5()  # noqa: S324 - Content-MD5 is what storage checks
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.sha256.update(data)
        self.size += len(data)
        self.handle.write(data)
        return len(data)

    def flush(self) -> None:
        self.handle.flush()


def write_archive(files: Sequence[SourceFile], *, directory: str | None = None) -> Archive:
    """Write a deterministic zip (fixed dates and modes, sorted) to a temp file, in one pass."""
    content = hashlib.sha256()
    total = 0
    fd, name = tempfile.mkstemp(prefix="mixpeek-bundle-", suffix=".zip", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _HashingWriter(raw)
            with zipfile.ZipFile(
                sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6
            ) as zf:  # type: ignore[call-overload]
                for f in files:
                    info = zipfile.ZipInfo(f.rel, date_time=FIXED_DATE)
                    info.external_attr = 0o644 << 16
                    content.update(f.rel.encode() + b"\0" + str(f.size).encode() + b"\0")
                    with f.open() as src:
                        block = src.read(CHUNK)
                        info.compress_type = _compression(f.rel, block)
                        with zf.open(info, "w", force_zip64=f.size > 2**31) as dst:
                            while block:
                                content.update(block)
                                dst.write(block)
                                block = src.read(CHUNK)
                    total += f.size
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Archive(
        path=path,
        digest=Digest(content.hexdigest(), len(files), total),
        size=sink.size,
        md5_base64=base64.b64encode(sink.md5.digest()).decode(),
        sha256=sink.sha256.hexdigest(),
    )


def _compression(rel: str, head: bytes) -> int:
    """Deflate what compresses; store what does not (decided from the name and first bytes,
    so the same content always packs the same way)."""
    if PurePosixPath(rel).suffix.lower() in STORED_SUFFIXES:
        return zipfile.ZIP_STORED
    sample = head[:SAMPLE]
    if len(sample) >= 4096 and len(zlib.compress(sample, 1)) > 0.97 * len(sample):
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


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
