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
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
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
SAMPLE: Final = 16 * 1024
SAMPLE_FROM: Final = 256 * 1024


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
        raw = [(True, p) for p in DEFAULT_EXCLUDES]
        for text in patterns:
            pattern = text.strip()
            if pattern:
                raw.append((not pattern.startswith("!"), pattern.lstrip("!")))
        # Compiled once: a preview matches every rule against every one of thousands of paths.
        self.rules = [(exclude, *_compile(pattern)) for exclude, pattern in raw]

        self._fast: _FastRules | None = None
        if all(exclude for exclude, *_ in self.rules):
            # No "!pattern": one alternation per kind answers in a single match.
            def joined(kind: str) -> re.Pattern[str] | None:
                parts = [regex.pattern for _, k, regex, _ in self.rules if k == kind]
                return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None

            self._fast = (
                joined("name"),
                joined("path"),
                joined("dir"),
                tuple(prefix for _, k, _, prefix in self.rules if k == "dir" and prefix),
            )

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        if self._fast is not None:
            name_re, path_re, dir_re, prefixes = self._fast
            return bool(
                (name_re and name_re.match(parts[-1]))
                or (path_re and path_re.match(rel))
                or (dir_re and any(dir_re.match(p) for p in parts[:-1]))
                or (prefixes and rel.startswith(prefixes))
            )
        verdict = False
        for exclude, kind, regex, prefix in self.rules:
            if kind == "dir":
                hit = any(regex.match(p) for p in parts[:-1]) or bool(
                    prefix and rel.startswith(prefix)
                )
            elif kind == "path":
                hit = regex.match(rel) is not None
            else:
                hit = regex.match(parts[-1]) is not None
            if hit:
                verdict = exclude
        return verdict


_FastRules = tuple[
    re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None, tuple[str, ...]
]


def _compile(pattern: str) -> tuple[str, re.Pattern[str], str]:
    if pattern.endswith("/"):
        name = pattern.rstrip("/")
        prefix = name.lstrip("/") + "/" if "/" in name else ""
        return "dir", re.compile(fnmatch.translate(name)), prefix
    if "/" in pattern:
        return "path", re.compile(fnmatch.translate(pattern.lstrip("/"))), ""
    return "name", re.compile(fnmatch.translate(pattern)), ""


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
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise BundleError(str(folder), f"the folder cannot be read ({exc.strerror})") from None
        for entry in entries:
            rel = _rel_name(prefix + entry.name, root)
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(real_root):
                    raise BundleError(
                        str(root), f"the symlink {rel} points outside the bundle folder"
                    )
                if target.is_dir():
                    continue  # the target folder is bundled where it really is
            try:
                info = entry.stat()
            except OSError as exc:
                raise BundleError(str(root), f"{rel} cannot be read ({exc.strerror})") from None
            if stat.S_ISDIR(info.st_mode):
                if not excludes.excluded(rel + "/x"):
                    stack.append((entry.path, rel + "/"))
                continue
            if not stat.S_ISREG(info.st_mode):
                raise BundleError(str(root), f"{rel} is a special file (not a regular file)")
            if excludes.excluded(rel):
                continue
            yield SourceFile(rel, info.st_size, _opener(Path(entry.path)))


def _rel_name(rel: str, root: Path) -> str:
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
    """sha256 over each sorted path, its size and its bytes' sha256: independent of mtimes and
    modes. One thread: per-file work is small, and a pool's overhead costs more than it saves."""
    h = hashlib.sha256()
    for f in files:
        h.update(_entry_line(f, _hash_file(f)))
    return Digest(h.hexdigest(), len(files), sum(f.size for f in files))


def _entry_line(f: SourceFile, file_hash: bytes) -> bytes:
    return f.rel.encode() + b"\0" + str(f.size).encode() + b"\0" + file_hash


def _hash_file(f: SourceFile) -> bytes:
    h = hashlib.sha256()
    read = 0
    with f.open() as handle:
        while block := handle.read(CHUNK):
            h.update(block)
            read += len(block)
    _same_size(f, read)
    return h.digest()


def _same_size(f: SourceFile, read: int) -> None:
    if read != f.size:
        raise BundleError(
            f.rel, f"the file changed while it was read ({f.size} bytes became {read})"
        )


R = TypeVar("R")
WORKERS: Final = max(1, min(4, os.cpu_count() or 1))
WINDOW_BYTES: Final = 64 * 1024 * 1024
WHOLE_FILE: Final = 4 * 1024 * 1024  # files up to this size are packed whole, in parallel


def _ordered(
    files: Sequence[SourceFile],
    work: Callable[[SourceFile], R],
    *,
    inline: Callable[[SourceFile], bool],
) -> Iterator[tuple[SourceFile, R | None]]:
    """``work`` over ``files`` on a thread pool, yielded in order, with a bounded number of bytes
    in flight; files for which ``inline`` holds are yielded with None for the caller to do."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="mixpeek-pack") as pool:
        pending: deque[tuple[SourceFile, Future[R] | None]] = deque()
        queued = iter(files)
        in_flight = 0

        def fill() -> None:
            nonlocal in_flight
            while len(pending) < 8 * WORKERS and in_flight < WINDOW_BYTES:
                f = next(queued, None)
                if f is None:
                    return
                if inline(f):
                    pending.append((f, None))
                else:
                    pending.append((f, pool.submit(work, f)))
                    in_flight += min(f.size, WHOLE_FILE)

        fill()
        while pending:
            f, future = pending.popleft()
            result = None
            if future is not None:
                result = future.result()
                in_flight -= min(f.size, WHOLE_FILE)
            fill()
            yield f, result


@dataclass(frozen=True)
class _Packed:
    method: int
    crc: int
    data: bytes
    file_hash: bytes


def _pack_whole(f: SourceFile) -> _Packed:
    with f.open() as handle:
        raw = handle.read()
    _same_size(f, len(raw))
    method = _compression(f.rel, raw)
    data = raw
    if method == zipfile.ZIP_DEFLATED:
        packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        data = packer.compress(raw) + packer.flush()
    return _Packed(method, zlib.crc32(raw), data, hashlib.sha256(raw).digest())


class _ZipWriter:
    """A minimal deterministic zip writer (fixed dates and modes, ZIP64 when sizes need it),
    so compression can run on several threads and every byte is hashed as it is written."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.md5 = hashlib.md5()  # noqa: S324 - Content-MD5 is what storage checks
        self.sha256 = hashlib.sha256()
        self.offset = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha256.update(data)
        self.handle.write(data)
        self.offset += len(data)

    def _local(
        self,
        name: bytes,
        method: int,
        crc: int,
        csize: int,
        usize: int,
        streamed: bool,
        zip64: bool,
    ) -> None:
        flags = _UTF8 | (_DESCRIPTOR if streamed else 0)
        extra = struct.pack("<HHQQ", 1, 16, usize, csize) if zip64 else b""
        sizes = (_MAX32, _MAX32) if zip64 else (csize, usize)
        self._write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45 if zip64 else 20,
                flags,
                method,
                0,
                _DOS_DATE,
                crc,
                *sizes,
                len(name),
                len(extra),
            )
            + name
            + extra
        )

    def _remember(
        self,
        name: bytes,
        method: int,
        crc: int,
        csize: int,
        usize: int,
        offset: int,
        streamed: bool,
    ) -> None:
        values = [("u", usize), ("c", csize), ("o", offset)]
        big = [v for _, v in values if v >= _MAX32]
        extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
        flags = _UTF8 | (_DESCRIPTOR if streamed else 0)
        needed = 45 if big else 20
        self.central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                (3 << 8) | needed,
                needed,
                flags,
                method,
                0,
                _DOS_DATE,
                crc,
                min(csize, _MAX32),
                min(usize, _MAX32),
                len(name),
                len(extra),
                0,
                0,
                0,
                0o644 << 16,
                min(offset, _MAX32),
            )
            + name
            + extra
        )

    def add_packed(self, rel: str, usize: int, packed: _Packed) -> None:
        name = rel.encode()
        offset = self.offset
        self._local(
            name, packed.method, packed.crc, len(packed.data), usize, streamed=False, zip64=False
        )
        self._write(packed.data)
        self._remember(
            name, packed.method, packed.crc, len(packed.data), usize, offset, streamed=False
        )

    def add_streamed(self, f: SourceFile) -> bytes:
        """Stream one large file through; returns its sha256."""
        name = f.rel.encode()
        offset = self.offset
        zip64 = f.size >= _MAX32 - 2 * CHUNK
        file_hash = hashlib.sha256()
        crc = csize = read = 0
        with f.open() as src:
            block = src.read(CHUNK)
            method = _compression(f.rel, block)
            self._local(name, method, 0, 0, 0, streamed=True, zip64=zip64)
            packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
            while block:
                read += len(block)
                crc = zlib.crc32(block, crc)
                file_hash.update(block)
                out = packer.compress(block) if method == zipfile.ZIP_DEFLATED else block
                csize += len(out)
                self._write(out)
                block = src.read(CHUNK)
            if method == zipfile.ZIP_DEFLATED:
                tail = packer.flush()
                csize += len(tail)
                self._write(tail)
        _same_size(f, read)
        fmt = "<IIQQ" if zip64 else "<IIII"
        self._write(struct.pack(fmt, 0x08074B50, crc, csize, read))
        self._remember(name, method, crc, csize, read, offset, streamed=True)
        return file_hash.digest()

    def finish(self) -> None:
        start = self.offset
        for entry in self.central:
            self._write(entry)
        size = self.offset - start
        count = len(self.central)
        if count >= 0xFFFF or start >= _MAX32 or size >= _MAX32:
            record = self.offset
            self._write(
                struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start)
            )
            self._write(struct.pack("<IIQI", 0x07064B50, 0, record, 1))
        self._write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                min(count, 0xFFFF),
                min(count, 0xFFFF),
                min(size, _MAX32),
                min(start, _MAX32),
                0,
            )
        )


_MAX32: Final = 0xFFFFFFFF
_UTF8: Final = 0x0800
_DESCRIPTOR: Final = 0x0008
_DOS_DATE: Final = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the earliest a zip can say
COMPRESS_LEVEL: Final = 6


def write_archive(files: Sequence[SourceFile], *, directory: str | None = None) -> Archive:
    """Write a deterministic zip (sorted, fixed dates and modes) to a temp file in one pass,
    compressing on several threads; memory stays bounded whatever the bundle's size."""
    content = hashlib.sha256()
    fd, name = tempfile.mkstemp(prefix="mixpeek-bundle-", suffix=".zip", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            writer = _ZipWriter(raw)
            for f, packed in _ordered(files, _pack_whole, inline=lambda f: f.size > WHOLE_FILE):
                if packed is None:
                    file_hash = writer.add_streamed(f)
                else:
                    writer.add_packed(f.rel, f.size, packed)
                    file_hash = packed.file_hash
                content.update(_entry_line(f, file_hash))
            writer.finish()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Archive(
        path=path,
        digest=Digest(content.hexdigest(), len(files), sum(f.size for f in files)),
        size=writer.offset,
        md5_base64=base64.b64encode(writer.md5.digest()).decode(),
        sha256=writer.sha256.hexdigest(),
    )


def _compression(rel: str, head: bytes) -> int:
    """Deflate what compresses; store what does not (decided from the name and first bytes,
    so the same content always packs the same way)."""
    if PurePosixPath(rel).suffix.lower() in STORED_SUFFIXES:
        return zipfile.ZIP_STORED
    # Only large files are sampled: for small ones the test costs as much as deflating them.
    if len(head) >= SAMPLE_FROM:
        sample = head[:SAMPLE]
        if len(zlib.compress(sample, 1)) > 0.97 * len(sample):
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
