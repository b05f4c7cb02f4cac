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
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Final

from .bundle import CHUNK, Digest, SourceFile, entry_line, read_whole, same_size
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


WORKERS: Final = max(1, min(4, os.cpu_count() or 1))
WINDOW_BYTES: Final = 16 * 1024 * 1024
PIECE: Final = 1024 * 1024  # files are cut into pieces of this size, compressed on every core
DICTIONARY: Final = 32 * 1024  # each piece is primed with the 32 KiB before it, as pigz does
# Chosen by measurement (docs/benchmarks.md): level 3 keeps the archive within 10% of `zip`'s
# level 6 at about twice its speed per core, and stdlib zlib gives the same bytes everywhere.
LEVEL: Final = 3


@dataclass(frozen=True)
class _Job:
    """One unit of work, in archive order: a run of small files packed whole, a piece of a
    large file, or the sequential pass over a large file for its checksum and hash."""

    file: SourceFile
    kind: str  # "whole" | "piece" | "sums" | "stream"
    method: int = zipfile.ZIP_DEFLATED
    offset: int = 0
    length: int = 0
    last: bool = False
    batch: tuple[SourceFile, ...] = ()

    @property
    def weight(self) -> int:
        if self.kind == "whole":
            return sum(f.size for f in self.batch)
        return self.length if self.kind == "piece" else min(self.file.size, PIECE)


@dataclass(frozen=True)
class _Packed:
    method: int
    crc: int
    data: bytes
    file_hash: bytes


@dataclass(frozen=True)
class _Sums:
    crc: int
    size: int
    file_hash: bytes


def _jobs(files: Sequence[SourceFile]) -> Iterator[_Job]:
    """Small files in runs of about a piece (one job's cost each stays small next to its
    work), large ones in pieces."""
    run: list[SourceFile] = []
    for f in files:
        if f.size <= PIECE:
            run.append(f)
            if sum(r.size for r in run) >= PIECE or len(run) >= 256:
                yield _Job(run[0], "whole", batch=tuple(run))
                run = []
            continue
        if run:
            yield _Job(run[0], "whole", batch=tuple(run))
            run = []
        if f.path is None:
            yield _Job(f, "stream")
            continue
        method = _compression(f.rel, _head(f))
        for offset in range(0, f.size, PIECE):
            length = min(PIECE, f.size - offset)
            yield _Job(f, "piece", method, offset, length, offset + length >= f.size)
        yield _Job(f, "sums", method)
    if run:
        yield _Job(run[0], "whole", batch=tuple(run))


def _head(f: SourceFile) -> bytes:
    with f.open() as handle:
        return handle.read(SAMPLE_FROM)


def _run(job: _Job) -> list[_Packed] | bytes | _Sums | None:
    if job.kind == "whole":
        return [_pack_whole(f) for f in job.batch]
    if job.kind == "piece":
        return _pack_piece(job)
    if job.kind == "sums":
        return _sums(job.file)
    return None  # "stream": a large file inside a .zip, streamed by the writer itself


def _pack_whole(f: SourceFile) -> _Packed:
    raw = read_whole(f)
    method = _compression(f.rel, raw)
    data = zlib.compress(raw, LEVEL, wbits=-15) if method == zipfile.ZIP_DEFLATED else raw
    return _Packed(method, zlib.crc32(raw), data, hashlib.sha256(raw).digest())


def _deflate(raw: bytes, primer: bytes, last: bool) -> bytes:
    """Raw deflate of one piece; a piece that is not the last ends on a byte boundary without
    the final-block bit (a sync flush), so the pieces of a file concatenate into one stream."""
    packer = (
        zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=primer)
        if primer
        else zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    )
    return packer.compress(raw) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _pack_piece(job: _Job) -> bytes:
    assert job.file.path is not None
    start = max(0, job.offset - DICTIONARY)
    with open(job.file.path, "rb") as handle:
        handle.seek(start)
        data = handle.read(job.offset - start + job.length)
    primer, raw = data[: job.offset - start], data[job.offset - start :]
    if len(raw) != job.length:
        raise BundleError(job.file.rel, "the file changed while it was read")
    if job.method != zipfile.ZIP_DEFLATED:
        return raw
    return _deflate(raw, primer, job.last)


def _sums(f: SourceFile) -> _Sums:
    file_hash = hashlib.sha256()
    crc = read = 0
    with f.open() as handle:
        while block := handle.read(CHUNK):
            crc = zlib.crc32(block, crc)
            file_hash.update(block)
            read += len(block)
    same_size(f, read)
    return _Sums(crc, read, file_hash.digest())


def _ordered(jobs: Iterator[_Job]) -> Iterator[tuple[_Job, object]]:
    """Every job on a thread pool (zlib, hashlib and reads release the GIL), the results
    yielded in order, with a bounded number of bytes in flight."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="mixpeek-pack") as pool:
        pending: deque[tuple[_Job, Future[object]]] = deque()
        in_flight = 0

        def fill() -> None:
            nonlocal in_flight
            while len(pending) < 16 * WORKERS and in_flight < WINDOW_BYTES:
                job = next(jobs, None)
                if job is None:
                    return
                pending.append((job, pool.submit(_run, job)))
                in_flight += job.weight

        fill()
        while pending:
            job, future = pending.popleft()
            result = future.result()
            in_flight -= job.weight
            fill()
            yield job, result


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

    def begin(self, f: SourceFile, method: int) -> tuple[bytes, int, bool]:
        """The local header of a file whose data follows in pieces (sizes in a descriptor)."""
        name = f.rel.encode()
        zip64 = f.size >= _MAX32 - 2 * CHUNK
        offset = self.offset
        self._local(name, method, 0, 0, 0, streamed=True, zip64=zip64)
        return name, offset, zip64

    def piece(self, data: bytes) -> None:
        self._write(data)

    def end(self, opened: tuple[bytes, int, bool], method: int, sums: _Sums, csize: int) -> None:
        name, offset, zip64 = opened
        fmt = "<IIQQ" if zip64 else "<IIII"
        self._write(struct.pack(fmt, 0x08074B50, sums.crc, csize, sums.size))
        self._remember(name, method, sums.crc, csize, sums.size, offset, streamed=True)

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
            packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
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


def write_archive(files: Sequence[SourceFile], *, max_bytes: int | None = None) -> Archive:
    """A deterministic zip (sorted, fixed dates and modes) of ``files``, written in one pass with
    compression on every core into an unnamed temporary file: nothing is left behind even if
    the process is killed. Memory stays bounded whatever the bundle's size. Raises
    ``BundleError`` as soon as the archive grows past ``max_bytes``."""
    handle = tempfile.TemporaryFile(prefix="mixpeek-bundle-")  # noqa: SIM115 - the Archive owns it
    try:
        writer = _ZipWriter(handle, max_bytes)
        content = _Packer(writer).pack(files)
        writer.finish()
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return Archive(
        file=handle,
        digest=Digest(content, len(files), sum(f.size for f in files)),
        size=writer.offset,
        md5_base64=base64.b64encode(writer.md5.digest()).decode(),
        sha256=writer.sha256.hexdigest(),
    )


class _Packer:
    """Consumes the jobs' results in archive order and feeds the writer."""

    def __init__(self, writer: _ZipWriter) -> None:
        self.writer = writer
        self.content = hashlib.sha256()
        self.opened: tuple[bytes, int, bool] | None = None
        self.csize = 0

    def pack(self, files: Sequence[SourceFile]) -> str:
        for job, result in _ordered(_jobs(files)):
            if isinstance(result, list):
                for f, packed in zip(job.batch, result, strict=True):
                    self.writer.add_packed(f.rel, f.size, packed)
                    self._done(f, packed.file_hash)
            elif isinstance(result, bytes):
                if self.opened is None:
                    self.opened, self.csize = self.writer.begin(job.file, job.method), 0
                self.writer.piece(result)
                self.csize += len(result)
            elif isinstance(result, _Sums):
                assert self.opened is not None
                self.writer.end(self.opened, job.method, result, self.csize)
                self.opened = None
                self._done(job.file, result.file_hash)
            else:
                self._done(job.file, self.writer.add_streamed(job.file))
        return self.content.hexdigest()

    def _done(self, f: SourceFile, file_hash: bytes) -> None:
        self.content.update(entry_line(f, file_hash))


def _compression(rel: str, head: bytes) -> int:
    """Deflate what compresses; store what does not (decided from the name and first bytes,
    so the same content always packs the same way)."""
    name = rel.rpartition("/")[2]
    if "." in name and "." + name.rpartition(".")[2].lower() in STORED_SUFFIXES:
        return zipfile.ZIP_STORED
    # Only large files are sampled: for small ones the test costs as much as deflating them.
    if len(head) >= SAMPLE_FROM:
        sample = head[:SAMPLE]
        if len(zlib.compress(sample, 1)) > 0.97 * len(sample):
            return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED
