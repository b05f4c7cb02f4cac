"""Writing a bundle's files into a deterministic zip: sorted, fixed dates and modes, every byte
hashed as it is written, compression on several threads, into an unnamed temporary file.

The service reads standard ZIP/deflate only. Already-compressed formats are stored (deflate
gains nothing on them); the choice is made from the name and the first bytes, so the same
content always packs the same way.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Final, TypeVar

from .bundle import CHUNK, Digest, SourceFile, entry_line, same_size
from .errors import BundleError

# Already-compressed formats gain nothing from deflate, which runs at ~25 MB/s on them.
STORED_SUFFIXES: Final = frozenset(
    [
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".heic", ".woff", ".woff2", ".mp3",
        ".mp4", ".m4a", ".webm", ".ogg", ".ogv", ".mov", ".zip", ".gz", ".tgz", ".br", ".zst",
        ".xz", ".bz2", ".7z", ".jar", ".whl",
    ]
)  # fmt: skip
SAMPLE: Final = 16 * 1024
SAMPLE_FROM: Final = 256 * 1024


@dataclass
class Archive:
    """A packaged bundle in an unnamed temporary file, open for reading; ``close`` frees it."""

    file: IO[bytes]
    digest: Digest
    size: int
    md5_base64: str
    sha256: str

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    same_size(f, len(raw))
    method = _compression(f.rel, raw)
    data = raw
    if method == zipfile.ZIP_DEFLATED:
        packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        data = packer.compress(raw) + packer.flush()
    return _Packed(method, zlib.crc32(raw), data, hashlib.sha256(raw).digest())


class _ZipWriter:
    """A minimal deterministic zip writer (fixed dates and modes, ZIP64 when sizes need it),
    so compression can run on several threads and every byte is hashed as it is written."""

    def __init__(self, handle: IO[bytes], max_bytes: int | None = None) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.md5 = hashlib.md5()  # noqa: S324 - Content-MD5 is what storage checks
        self.sha256 = hashlib.sha256()
        self.offset = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha256.update(data)
        self.handle.write(data)
        self.offset += len(data)
        if self.max_bytes is not None and self.offset > self.max_bytes:
            raise BundleError(
                "the archive", f"it is larger than {self.max_bytes:,} bytes, the most allowed"
            )

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
        same_size(f, read)
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


def write_archive(files: Sequence[SourceFile], *, max_bytes: int | None = None) -> Archive:
    """A deterministic zip (sorted, fixed dates and modes) of ``files``, written in one pass with
    compression on several threads into an unnamed temporary file: nothing is left behind even
    if the process is killed. Memory stays bounded whatever the bundle's size. Raises
    ``BundleError`` as soon as the archive grows past ``max_bytes``."""
    content = hashlib.sha256()
    handle = tempfile.TemporaryFile(prefix="mixpeek-bundle-")  # noqa: SIM115 - the Archive owns it
    try:
        writer = _ZipWriter(handle, max_bytes)
        for f, packed in _ordered(files, _pack_whole, inline=lambda f: f.size > WHOLE_FILE):
            if packed is None:
                file_hash = writer.add_streamed(f)
            else:
                writer.add_packed(f.rel, f.size, packed)
                file_hash = packed.file_hash
            content.update(entry_line(f, file_hash))
        writer.finish()
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return Archive(
        file=handle,
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
