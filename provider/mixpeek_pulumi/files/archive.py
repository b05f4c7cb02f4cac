"""Writing a bundle's files into a deterministic zip: sorted, fixed dates and modes, every byte
hashed as it is written, compression on several threads, into an unnamed temporary file.

The service reads standard ZIP/deflate only. Already-compressed formats are stored (deflate
gains nothing on them); the choice is made from the name and the first bytes, so the same
content always packs the same way.

What ships is what was hashed: each file's CRC and sha256 are computed from the very bytes
that were compressed, the pieces of a large file are checked to join up, and a large file
whose size, mtime, inode or ctime moved while it was read is refused. A build step that
rewrites a file during packing gets a sentence naming it, never an archive whose entries fail
their own CRC or a digest of bytes that were never shipped.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Final

from ..errors import BundleError
from .contents import CHUNK, Digest, entry_line, read_whole
from .scratch import temporary_file
from .sources import SourceFile

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


class _Changed(Exception):
    """A file that is not what it was when it was listed or when its reading began; refused in
    ``write_archive``'s words, which know the bundle."""

    def __init__(self, f: SourceFile) -> None:
        super().__init__(f.rel)
        self.file = f


Stamp = tuple[int, int, int, int, int]


def _stamp(f: SourceFile) -> Stamp:
    """What changes when a file is written: its size, mtime, inode, device and ctime."""
    assert f.path is not None
    try:
        info = os.stat(f.path)
    except OSError:
        raise _Changed(f) from None  # gone, or replaced by something unreadable
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, info.st_ctime_ns


def read_at(path: str, start: int, length: int) -> bytes:
    """Up to ``length`` bytes of the file at ``path`` from ``start``: the only read of a large
    file's bytes, so what it returns is what is compressed, checksummed and hashed."""
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(length)


class _Large:
    """The checksums of one large file whose pieces are read and compressed on several threads.
    Each piece hands in the very bytes it compressed; whichever thread hands in the next one in
    file order checksums it and any that arrived early, so the CRC and sha256 describe what was
    compressed, and the hashing of different files still runs on different cores."""

    def __init__(self, f: SourceFile, stamp: Stamp) -> None:
        self.file = f
        self.stamp = stamp
        self.crc = self.size = 0
        self.hash = hashlib.sha256()
        self._tail = b""
        self._early: dict[int, tuple[bytes | memoryview, bytes | None]] = {}
        self._lock = threading.Lock()

    def hand_in(self, offset: int, raw: bytes | memoryview, primer: bytes | None) -> None:
        """The piece at ``offset``: its bytes, and those its deflate was primed with."""
        with self._lock:
            self._early[offset] = (raw, primer)
            while self.size in self._early:
                raw, primer = self._early.pop(self.size)
                if primer is not None and primer != self._tail:
                    # Primed with other bytes than the archive holds before it, the piece
                    # would inflate to something else than what is hashed.
                    raise _Changed(self.file)
                self.crc = zlib.crc32(raw, self.crc)
                self.hash.update(raw)
                self.size += len(raw)
                self._tail = bytes(raw[-DICTIONARY:])


@dataclass(frozen=True)
class _Job:
    """One unit of work, in archive order: a run of small files packed whole, or a piece of a
    large file (whose checksums ``large`` gathers)."""

    file: SourceFile
    kind: str  # "whole" | "piece" | "stream"
    method: int = zipfile.ZIP_DEFLATED
    offset: int = 0
    length: int = 0
    last: bool = False
    batch: tuple[SourceFile, ...] = ()
    large: _Large | None = None

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
        stamp = _stamp(f)
        if stamp[0] != f.size:
            raise _Changed(f)
        large = _Large(f, stamp)
        method = _compression(f.rel, _head(f))
        for offset in range(0, f.size, PIECE):
            length = min(PIECE, f.size - offset)
            last = offset + length >= f.size
            yield _Job(f, "piece", method, offset, length, last, large=large)
    if run:
        yield _Job(run[0], "whole", batch=tuple(run))


def _head(f: SourceFile) -> bytes:
    with f.open() as handle:
        return handle.read(SAMPLE_FROM)


def _run(job: _Job) -> list[_Packed] | bytes | None:
    if job.kind == "whole":
        return [_pack_whole(f) for f in job.batch]
    if job.kind == "piece":
        return _pack_piece(job)
    return None  # "stream": a large file inside a .zip, streamed by the writer itself


def _pack_whole(f: SourceFile) -> _Packed:
    raw = read_whole(f)
    if len(raw) != f.size:
        raise _Changed(f)
    method = _compression(f.rel, raw)
    data = zlib.compress(raw, LEVEL, wbits=-15) if method == zipfile.ZIP_DEFLATED else raw
    return _Packed(method, zlib.crc32(raw), data, hashlib.sha256(raw).digest())


def _deflate(raw: bytes | memoryview, primer: bytes, last: bool) -> bytes:
    """Raw deflate of one piece; a piece that is not the last ends on a byte boundary without
    the final-block bit (a sync flush), so the pieces of a file concatenate into one stream."""
    packer = (
        zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=primer)
        if primer
        else zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    )
    return packer.compress(raw) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _pack_piece(job: _Job) -> bytes:
    """One read of the piece (and of the 32 KiB before it, for a deflated one), compressed, and
    the same bytes handed in for the checksums: the entry's CRC is that of what it holds."""
    assert job.file.path is not None
    assert job.large is not None
    deflated = job.method == zipfile.ZIP_DEFLATED
    start = max(0, job.offset - DICTIONARY) if deflated else job.offset
    data = read_at(job.file.path, start, job.offset - start + job.length)
    if len(data) != job.offset - start + job.length:
        raise _Changed(job.file)
    if not deflated:
        job.large.hand_in(job.offset, data, None)
        return data
    view = memoryview(data)
    primer, raw = bytes(view[: job.offset - start]), view[job.offset - start :]
    packed = _deflate(raw, primer, job.last)
    job.large.hand_in(job.offset, raw, primer)
    return packed


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

    def __init__(
        self,
        handle: IO[bytes],
        max_bytes: int | None = None,
        source: str = "the archive",
        noun: str = "bundle",
    ) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.source = source
        self.noun = noun
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
                self.source,
                f"its zip is larger than {self.max_bytes:,} bytes, the most allowed",
                self.noun,
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
        self._write(local_header(name, method, crc, csize, usize, streamed, zip64))

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
        self.central.append(central_entry(name, method, crc, csize, usize, offset, streamed))

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
        if read != f.size:
            raise _Changed(f)
        fmt = "<IIQQ" if zip64 else "<IIII"
        self._write(struct.pack(fmt, 0x08074B50, crc, csize, read))
        self._remember(name, method, crc, csize, read, offset, streamed=True)
        return file_hash.digest()

    def finish(self) -> None:
        start = self.offset
        for entry in self.central:
            self._write(entry)
        self._write(end_records(len(self.central), start, self.offset - start, self.offset))


def local_header(
    name: bytes, method: int, crc: int, csize: int, usize: int, streamed: bool, zip64: bool
) -> bytes:
    """An entry's local header; a ``streamed`` one has its sizes in a descriptor after it."""
    flags = _UTF8 | (_DESCRIPTOR if streamed else 0)
    extra = struct.pack("<HHQQ", 1, 16, usize, csize) if zip64 else b""
    sizes = (_MAX32, _MAX32) if zip64 else (csize, usize)
    return (
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


def central_entry(
    name: bytes, method: int, crc: int, csize: int, usize: int, offset: int, streamed: bool
) -> bytes:
    """An entry's record in the central directory (ZIP64 fields for what passes 4 GiB)."""
    values = [("u", usize), ("c", csize), ("o", offset)]
    big = [v for _, v in values if v >= _MAX32]
    extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
    flags = _UTF8 | (_DESCRIPTOR if streamed else 0)
    needed = 45 if big else 20
    return (
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


def end_records(count: int, start: int, size: int, offset: int) -> bytes:
    """The end of central directory records of ``count`` entries whose directory of ``size``
    bytes starts at ``start``; ``offset`` is where these records begin."""
    records = b""
    if count >= 0xFFFF or start >= _MAX32 or size >= _MAX32:
        records += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start
        )
        records += struct.pack("<IIQI", 0x07064B50, 0, offset, 1)
    return records + struct.pack(
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


_MAX32: Final = 0xFFFFFFFF
_UTF8: Final = 0x0800
_DESCRIPTOR: Final = 0x0008
_DOS_DATE: Final = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the earliest a zip can say


def write_archive(
    files: Sequence[SourceFile],
    *,
    max_bytes: int | None = None,
    source: str | None = None,
    noun: str = "bundle",
    progress: Callable[[int], None] | None = None,
) -> Archive:
    """A deterministic zip (sorted, fixed dates and modes) of ``files``, written in one pass with
    compression on every core into an unnamed temporary file: nothing is left behind even if
    the process is killed. Memory stays bounded whatever the bundle's size. Raises
    ``BundleError`` (naming ``source``, the ``noun``'s folder or .zip) as soon as the archive
    grows past ``max_bytes``, or when a file changed while it was being packed. ``progress``
    is told how many bytes of the files each step packed."""
    handle = temporary_file("mixpeek-bundle-")
    try:
        writer = _ZipWriter(handle, max_bytes, source or "the archive", noun)
        content = _Packer(writer, progress).pack(files)
        writer.finish()
        handle.flush()
    except _Changed as exc:
        handle.close()
        f = exc.file
        raise BundleError(
            source or f.path or f.rel,
            f"{f.rel} changed while it was being packed; run the build again",
            noun,
        ) from None
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

    def __init__(self, writer: _ZipWriter, progress: Callable[[int], None] | None = None) -> None:
        self.writer = writer
        self.progress = progress
        self.content = hashlib.sha256()
        self.opened: tuple[bytes, int, bool] | None = None
        self.csize = 0

    def pack(self, files: Sequence[SourceFile]) -> str:
        for job, result in _ordered(_jobs(files)):
            if self.progress is not None:
                self.progress(job.weight)
            if isinstance(result, list):
                for f, packed in zip(job.batch, result, strict=True):
                    self.writer.add_packed(f.rel, f.size, packed)
                    self._done(f, packed.file_hash)
            elif isinstance(result, bytes):
                if self.opened is None:
                    self.opened, self.csize = self.writer.begin(job.file, job.method), 0
                self.writer.piece(result)
                self.csize += len(result)
                if job.last:
                    self._end(job)
            else:
                self._done(job.file, self.writer.add_streamed(job.file))
        return self.content.hexdigest()

    def _end(self, job: _Job) -> None:
        """The last piece of a large file is in. Every earlier piece's job has returned, so
        every piece has been checksummed; pieces read at different moments join up only if
        nothing wrote to the file in between."""
        large = job.large
        assert large is not None
        assert self.opened is not None
        if large.size != job.file.size or _stamp(job.file) != large.stamp:
            raise _Changed(job.file)
        file_hash = large.hash.digest()
        self.writer.end(
            self.opened, job.method, _Sums(large.crc, large.size, file_hash), self.csize
        )
        self.opened = None
        self._done(job.file, file_hash)

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
