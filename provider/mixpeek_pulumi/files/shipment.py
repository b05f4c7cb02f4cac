"""A bundle folder's deterministic zip, laid out before it is sent and streamed into the upload
while every byte of the bundle is hashed: the zip that ``archive`` writes, built for a
redeploy that costs what changed.

**Laid out first.** A zip's size must be known before a presigned PUT starts (it takes no
chunked body), so every entry's compressed size is settled first. A file whose size, times,
inode and device are those the file memo recorded at the last packing is *predicted*: its
digest, CRC and compressed size are taken from the memo at once, and its payload is copied
when sent from the archive last sent from this folder (``entry_cache``), else from the entry
cache. Every other file is read once, hashed and compressed now (or its payload found by its
content in the last archive or the entry cache), and its payload spooled.

**Hashed while sent.** The upload starts as soon as the layout is known; meanwhile every
predicted file is read and hashed in full on other threads. ``digest`` returns only once every
byte is hashed. A prediction that a file's bytes refute is never shipped: the upload stops
before its end (storage keeps nothing of a PUT cut short), the refuted files are packed again
from their bytes, and the archive is sent anew. Stored (already compressed) files are read at
send time and hashed as they are sent; a payload taken from the cache is checked against its
entry's CRC-32 and sizes, and one that fails is compressed again from the file's bytes, whose
content key must match.

**Deterministic.** The same content packs to the same bytes on one machine, whether its
pieces come from the cache or are compressed again: entries are keyed by content, codec and
level, and large files are cut into fixed pieces, each primed with the 32 KiB before it and
ended on a sync flush (``archive``'s layout), so each piece's deflate depends only on its
own bytes and that primer.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import os
import queue
import re
import threading
import types
import weakref
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar

from ..errors import BundleError
from .archive import (
    DICTIONARY,
    PIECE,
    _compression,
    central_entry,
    end_records,
    local_header,
    read_at,
)
from .contents import Digest, entry_line, read_whole
from .entry_cache import EntryCache, default_root
from .scratch import temporary_file
from .sources import SourceFile

_deflate_lib: types.ModuleType
try:  # ISA-L: about 4 times zlib's speed at a ratio close to zlib's level 3 (docs/benchmarks.md)
    from isal import __version__ as _isal_version
    from isal import isal_zlib as _deflate_lib

    LEVEL: Final = 2
    # The library's version names the cache too: another release may deflate differently.
    CODEC: Final = f"isal-{_isal_version}-{LEVEL}"
except ImportError:  # pragma: no cover - a platform without an isal wheel
    _deflate_lib = zlib
    LEVEL = 3  # type: ignore[misc]
    CODEC = "zlib-3"  # type: ignore[misc]

_MAX32: Final = 0xFFFFFFFF
WORKERS: Final = max(2, min(4, os.cpu_count() or 1))
WINDOW_BYTES: Final = 16 * 1024 * 1024
SPOOL_MEMORY: Final = 64 * 1024 * 1024
UPLOAD_BLOCK: Final = 1024 * 1024
# Pieces smaller than this are not kept in the entry cache (measured: writing ten thousand
# small entries took seconds on this machine's disk; docs/benchmarks.md).
MIN_ENTRY: Final = 64 * 1024
BLOCKS_AHEAD: Final = 8
DEFLATED: Final = zipfile.ZIP_DEFLATED
STORED: Final = zipfile.ZIP_STORED
T = TypeVar("T")


def deflate(raw: bytes | memoryview, primer: bytes = b"", last: bool = True) -> bytes:
    """Raw deflate of one piece; a piece that is not the last ends on a sync flush, so the
    pieces of a file concatenate into one stream."""
    # compressobj, even for a whole file: measured here, the one-shot compress of both zlib
    # and isal holds the GIL, and a deflate object's compress releases it.
    packer = (
        _deflate_lib.compressobj(LEVEL, _deflate_lib.DEFLATED, -15, zdict=primer)
        if primer
        else _deflate_lib.compressobj(LEVEL, _deflate_lib.DEFLATED, -15)
    )
    flush = _deflate_lib.Z_FINISH if last else _deflate_lib.Z_SYNC_FLUSH
    return bytes(packer.compress(raw) + packer.flush(flush))


def piece_key(primer: bytes, raw: bytes | memoryview, last: bool) -> str:
    """The cache key of one piece of a large file: everything its deflate depends on."""
    h = hashlib.sha256(b"mixpeek-piece\0" + (b"\1" if last else b"\0"))
    h.update(len(primer).to_bytes(4, "little"))
    h.update(primer)
    h.update(raw)
    return h.hexdigest()


_HEX: Final = re.compile(r"[0-9a-f]{64}")


def _hex(key: object) -> bool:
    return isinstance(key, str) and _HEX.fullmatch(key) is not None


def pieces(size: int) -> list[tuple[int, int]]:
    """Where each piece of a file of ``size`` bytes starts and how long it is."""
    return [_piece(size, i) for i in range(max(1, -(-size // PIECE)))]


def _piece(size: int, index: int) -> tuple[int, int]:
    if size <= PIECE:
        return 0, size
    start = index * PIECE
    return start, min(PIECE, size - start)


Identity = tuple[int, int, int, int, int]


def identity(path: str) -> Identity | None:
    """What changes when a file is written or replaced: size, mtime, ctime, inode, device."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev


class Part(NamedTuple):
    """One piece of an entry's payload: its cache key in hex (None: stored as is) and its
    size. A tuple: a redeploy builds one per piece of the bundle before its first byte."""

    key: str | None
    csize: int


@dataclass(slots=True)
class Entry:
    """One file's entry: what the layout and the checks need."""

    file: SourceFile
    sha256: bytes
    crc: int
    method: int
    parts: tuple[Part, ...]
    predicted: bool = False
    spooled: tuple[tuple[int, int], ...] = ()
    seen: Identity | None = None
    previous: tuple[int, int] | None = None
    """Where the payload lies in the last archive of this folder (``entry_cache``), and its
    CRC-32."""
    csize: int = field(init=False)

    def __post_init__(self) -> None:
        self.csize = sum(p.csize for p in self.parts)

    def memo(self, shipped: tuple[int, int] | None) -> list[Any]:
        """The memo's record: what the file is, what holds its entry, and where its payload
        lies in the archive just sent (with that payload's CRC-32)."""
        assert self.seen is not None
        parts = [[p.key, p.csize] for p in self.parts]
        at, crc = shipped if shipped is not None else (None, None)
        return [*self.seen, self.sha256.hex(), self.crc, self.method, parts, at, crc]


class _Changed(Exception):
    def __init__(self, f: SourceFile) -> None:
        super().__init__(f.rel)
        self.file = f


class _Refuted(Exception):
    """A prediction the file's bytes refuted: the upload under way stops short."""


class Spool:
    """Payloads compressed before sending, in memory up to ``SPOOL_MEMORY`` and then in an
    unnamed temporary file (``scratch``; in memory still when no folder takes one)."""

    def __init__(self) -> None:
        self.memory: list[bytes] = []
        self.held = 0
        self.file: Any = None
        self.size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> tuple[int, int]:
        with self._lock:
            if self.file is None and self.held + len(data) > SPOOL_MEMORY:
                with contextlib.suppress(OSError):  # no room anywhere: memory it is
                    self.file = temporary_file("mixpeek-spool-")
            if self.file is None:
                self.memory.append(data)
                self.held += len(data)
                return -len(self.memory), len(data)
            at = self.size
            os.pwrite(self.file.fileno(), data, at)
            self.size += len(data)
            return at, len(data)

    def read(self, where: tuple[int, int]) -> bytes:
        at, length = where
        if at < 0:
            return self.memory[-at - 1]
        return os.pread(self.file.fileno(), length, at)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.memory = []


class Shipment:
    """The zip of ``files`` (a folder's, or a .zip's members), laid out on creation; ``start``
    streams it into an upload while the rest is hashed, ``digest`` waits until every byte is,
    ``sent`` waits for the upload. ``close`` stops whatever still runs and frees everything."""

    def __init__(
        self,
        files: Sequence[SourceFile],
        *,
        folder: str | None,
        source: str | None = None,
        noun: str = "bundle",
        progress: Callable[[int], None] | None = None,
        cache: EntryCache | None = None,
    ) -> None:
        self.files = list(files)
        self.folder = folder
        self.source = source
        self.noun = noun
        self.progress = progress or (lambda _n: None)
        self.cache = cache if cache is not None else EntryCache(default_root(), CODEC)
        self.spool = Spool()
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="mixpeek-pack")
        self.checks = ThreadPoolExecutor(WORKERS, thread_name_prefix="mixpeek-hash")
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._settled: Digest | None = None
        self.layout = 0  # counts the layouts: a stream of an older one stops short
        self._fresh: list[tuple[str, int, int, tuple[int, int]]] = []
        self._shipped: list[tuple[int, int] | None] | None = None
        self._finished: Body | None = None
        memo, self.previous_name = (
            self.cache.read_memo(folder) if folder is not None else ({}, None)
        )
        self.previous = self.cache.open_archive(self.previous_name)
        # What the last archive holds by content: a file rewritten with the same bytes (a
        # rebuild) or moved within the folder is copied from it, not compressed again.
        self._held: dict[str, tuple[int, int, int]] = {}
        if self.previous is not None:
            for record in memo.values():
                with contextlib.suppress(TypeError, ValueError, IndexError):
                    if len(record[8]) == 1 and record[8][0][0] and isinstance(record[9], int):
                        self._held[record[5]] = (record[9], record[8][0][1], record[10])
        self.keeper: threading.Thread | None = None
        self._upload: threading.Thread | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        try:
            self.entries = self._plan(memo)
            self._verdicts = self._start_checks()
        except BaseException:
            self.close()
            raise
        self.size = self._layout_size()

    # ---------------------------------------------------------------------- planning

    def _plan(self, memo: dict[str, list[Any]]) -> list[Entry]:
        """Every file's entry: predicted from the memo where the file is as recorded, packed
        from its bytes otherwise (on every core)."""
        with _collector_paused():
            entries: list[Entry | None] = [self._predicted(f, memo.get(f.rel)) for f in self.files]
        packing = [i for i, e in enumerate(entries) if e is None]
        runs = [
            (run, self.pool.submit(lambda run: [self._pack(self.files[i]) for i in run], run))
            for run in _runs(packing, lambda i: self.files[i].size)
        ]

        def gather() -> list[Entry]:
            for run, future in runs:
                for i, entry in zip(run, future.result(), strict=True):
                    entries[i] = entry
            return [e for e in entries if e is not None]

        return self._guarded(gather)

    def _guarded(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except _Changed as exc:
            f = exc.file
            raise BundleError(
                self.source or f.path or f.rel,
                f"{f.rel} changed while it was being packed; run the build again",
                self.noun,
            ) from None

    def _predicted(self, f: SourceFile, record: Any) -> Entry | None:
        if f.path is None or not isinstance(record, list) or len(record) != 11:
            return None
        seen = f.identity or identity(f.path)
        if seen is None or seen[0] != f.size or list(seen) != record[:5]:
            return None
        try:
            sha, crc, method = bytes.fromhex(record[5]), int(record[6]), int(record[7])
            parts = tuple(Part(key, csize) for key, csize in record[8])
        except (TypeError, ValueError):
            return None
        if not all(isinstance(p.csize, int) and (p.key is None or _hex(p.key)) for p in parts):
            return None
        if len(parts) != len(pieces(f.size)) or method not in (STORED, DEFLATED):
            return None
        if (method == STORED) != all(p.key is None for p in parts):
            return None
        at, payload_crc = record[9], record[10]
        previous = (
            (at, payload_crc)
            if self.previous is not None and isinstance(at, int) and isinstance(payload_crc, int)
            else None
        )
        return Entry(f, sha, crc, method, parts, predicted=True, seen=seen, previous=previous)

    def _pack(self, f: SourceFile) -> Entry:
        """One read of the file: its digest and CRC, and each piece's payload, from the cache
        by content or compressed, kept in the spool (stored pieces are read again when sent)."""
        # Taken now, before the read: the memo must never pair these with older bytes.
        seen = identity(f.path) if f.path is not None else None
        if f.size <= PIECE:
            raw = read_whole(f)
            if len(raw) != f.size:
                raise _Changed(f)
            self.progress(f.size)
            method = _compression(f.rel, raw)
            sha = hashlib.sha256(raw).digest()
            crc = zlib.crc32(raw)
            if method == STORED:
                # A .zip's member cannot be read at an offset: its bytes wait in the spool.
                held = (self.spool.add(raw),) if f.path is None else ()
                return Entry(f, sha, crc, method, (Part(None, f.size),), spooled=held, seen=seen)
            key = sha.hex()
            where = self._held_copy(key) or self._deflated(key, crc, raw, b"", True)
            return Entry(f, sha, crc, method, (Part(key, where[1]),), spooled=(where,), seen=seen)
        return self._pack_large(f, seen)

    def _pack_large(self, f: SourceFile, seen: Identity | None) -> Entry:
        h, crc, read = hashlib.sha256(), 0, 0
        parts: list[Part] = []
        spooled: list[tuple[int, int]] = []
        primer = b""
        method = DEFLATED
        with f.open() as handle:
            for index, (_, length) in enumerate(pieces(f.size)):
                raw = handle.read(length)
                if len(raw) != length:
                    raise _Changed(f)
                if index == 0:
                    method = _compression(f.rel, raw)
                h.update(raw)
                piece_crc = zlib.crc32(raw)
                crc = zlib.crc32(raw, crc)
                read += length
                self.progress(length)
                last = read == f.size
                if method == STORED:
                    parts.append(Part(None, length))
                    if f.path is None:
                        spooled.append(self.spool.add(raw))
                else:
                    key = piece_key(primer, raw, last)
                    where = self._deflated(key, piece_crc, raw, primer, last)
                    parts.append(Part(key, where[1]))
                    spooled.append(where)
                    primer = raw[-DICTIONARY:]
            if handle.read(1):
                raise _Changed(f)
        if f.path is not None and identity(f.path) != seen:
            raise _Changed(f)
        return Entry(f, h.digest(), crc, method, tuple(parts), spooled=tuple(spooled), seen=seen)

    def _held_copy(self, key: str) -> tuple[int, int] | None:
        """The payload of a whole small file of this content from the last archive, if it is
        there as recorded (its CRC-32), placed in the spool."""
        held = self._held.get(key)
        if held is None or self.previous is None:
            return None
        at, csize, crc = held
        with contextlib.suppress(OSError):
            data = os.pread(self.previous, csize, at)
            if len(data) == csize and zlib.crc32(data) == crc:
                return self.spool.add(data)
        return None

    def _deflated(
        self, key: str, crc: int, raw: bytes, primer: bytes, last: bool
    ) -> tuple[int, int]:
        """The piece's payload, from the cache or compressed, placed in the spool. Pieces of
        ``MIN_ENTRY`` bytes or more are kept in the cache once the upload no longer waits for
        it (``close``); smaller ones cost a file each for little (the last archive holds them
        for this folder's next deploy)."""
        cached = len(raw) >= MIN_ENTRY
        hit = self.cache.get(key, len(raw)) if cached else None
        if hit is not None and hit.crc == crc:
            return self.spool.add(hit.payload)
        where = self.spool.add(deflate(raw, primer, last))
        if cached:
            self._fresh.append((key, crc, len(raw), where))  # list.append is atomic
        return where

    # ------------------------------------------------------------------ the checks

    def _start_checks(self) -> list[tuple[list[int], Future[list[bool]]]]:
        """Every predicted file read and hashed in full, on threads of their own, while the
        upload runs."""
        predicted = [i for i, e in enumerate(self.entries) if e.predicted]
        return [
            (
                run,
                self.checks.submit(lambda run: [self._confirm(self.entries[i]) for i in run], run),
            )
            for run in _runs(predicted, lambda i: self.entries[i].file.size)
        ]

    def _confirm(self, entry: Entry) -> bool:
        """Whether the file's bytes, all read now, are those its prediction names."""
        if self.closed.is_set():
            return False
        f = entry.file
        assert f.path is not None
        try:
            if f.size <= PIECE:
                return hashlib.sha256(read_whole(f)).digest() == entry.sha256
            h = hashlib.sha256()
            with open(f.path, "rb", buffering=0) as handle:
                while block := handle.read(4 * PIECE):
                    h.update(block)
            return h.digest() == entry.sha256
        except (OSError, BundleError):
            return False

    def _settle(self) -> Digest:
        """The exact digest, once every predicted file is hashed; files whose bytes refute
        their prediction are packed again from those bytes first (and the layout with them)."""
        with self._lock:
            if self._settled is not None:
                return self._settled
            refuted = [
                i
                for run, verdicts in self._verdicts
                for i, confirmed in zip(run, verdicts.result(), strict=True)
                if not confirmed
            ]
            if refuted:
                again = {i: self.pool.submit(self._pack, self.entries[i].file) for i in refuted}
                for i, future in again.items():
                    self.entries[i] = self._guarded(future.result)
                self.size = self._layout_size()
                self.layout += 1
            content = hashlib.sha256()
            for e in self.entries:
                content.update(entry_line(e.file, e.sha256))
            self._settled = Digest(
                content.hexdigest(), len(self.entries), sum(f.size for f in self.files)
            )
            return self._settled

    @property
    def digest(self) -> Digest:
        """The content digest of every byte of the bundle, as read now (not as recorded)."""
        return self._settle()

    def _keep(self) -> None:
        """Fresh payloads into the cache, then the memo that points at them, then eviction:
        after the upload, on a thread of its own, so no deploy waits for the cache's disk."""
        try:
            for key, crc, size, where in self._fresh:
                self.cache.put(key, crc, size, self.spool.read(where))
            self.cache.touch(
                p.key
                for e in self.entries
                if e.file.size >= MIN_ENTRY
                for p in e.parts
                if p.key is not None
            )
            self._remember()
            if self.cache.added:
                self.cache.evict()
        finally:
            self.spool.close()
            if self._finished is not None:
                self._finished.drop()

    def _remember(self) -> None:
        """The memo of this folder, naming the archive just sent when it was copied whole."""
        if self.folder is None:
            return
        archive, shipped = None, self._shipped
        body = self._finished
        if body is not None and body.copy is not None and shipped is not None:
            name, handle = body.copy
            body.copy = None
            archive = name if self.cache.keep_archive(name, handle) else None
        if archive is None:
            shipped = None
            if all(e.predicted for e in self.entries):
                return  # nothing new to say, and the last archive is still where it was
        memo = {
            e.file.rel: e.memo(shipped[i] if shipped is not None else None)
            for i, e in enumerate(self.entries)
            if e.seen is not None
        }
        self.cache.write_memo(self.folder, memo, archive)
        if archive is not None and self.previous_name != archive:
            self.cache.forget_archive(self.previous_name)

    # --------------------------------------------------------------------- the zip

    def _layout_size(self) -> int:
        """The zip's size in bytes, from the entries' sizes alone: what ``chunks`` sends
        (``tests/unit/test_shipment.py`` holds the two equal)."""
        offset = central = 0
        for e in self.entries:
            name = len(e.file.rel.encode())
            wide = (e.file.size >= _MAX32) + (e.csize >= _MAX32) + (offset >= _MAX32)
            central += 46 + name + (4 + 8 * wide if wide else 0)
            zip64 = e.file.size >= _MAX32 or e.csize >= _MAX32
            offset += 30 + name + (20 if zip64 else 0) + e.csize
        return offset + central + len(end_records(len(self.entries), offset, central, offset))

    def _local(self, e: Entry, name: bytes) -> bytes:
        zip64 = e.file.size >= _MAX32 or e.csize >= _MAX32
        return local_header(name, e.method, e.crc, e.csize, e.file.size, False, zip64)

    def chunks(self, keep: Callable[[bytes], None] = lambda _data: None) -> Iterator[bytes]:
        """The zip's bytes in order; raises ``_Refuted`` before its end when a prediction
        turned out wrong, so that storage never keeps the stream."""
        entries, layout = list(self.entries), self.layout
        offset = 0
        central: list[bytes] = []
        shipped: list[tuple[int, int] | None] = []
        kept = 0  # the deflated payloads, and only they, are handed to ``keep`` in order
        # An entry the last archive holds is read from it whole; others piece by piece.
        items = [
            (e, i)
            for e in entries
            for i in ((None,) if e.previous is not None else range(len(e.parts)))
        ]
        payloads = _ordered(
            self.pool,
            _runs(items, _weight),
            lambda run: [self._payload(item) for item in run],
            lambda run: sum(map(_weight, run)),
        )
        for e in entries:
            name = e.file.rel.encode()
            header = self._local(e, name)
            central.append(
                central_entry(name, e.method, e.crc, e.csize, e.file.size, offset, False)
            )
            yield header
            # An entry from the last archive was checked against this CRC as it was read.
            payload_crc = e.previous[1] if e.previous is not None else 0
            sent = hashlib.sha256() if e.method == STORED else None
            for _ in (None,) if e.previous is not None else e.parts:
                data = next(payloads)
                if sent is not None:
                    sent.update(data)  # stored bytes are read as they are sent: hash those
                if self.closed.is_set() or self.layout != layout:
                    raise _Refuted(e.file.rel)
                if e.previous is None:
                    payload_crc = zlib.crc32(data, payload_crc)
                if e.method == DEFLATED:
                    keep(data)
                yield data
            if sent is not None and sent.digest() != e.sha256:
                raise _Changed(e.file) if not e.predicted else _Refuted(e.file.rel)
            # Stored payloads are the files' own bytes, read from the files again next time.
            shipped.append((kept, payload_crc) if e.method == DEFLATED else None)
            kept += e.csize if e.method == DEFLATED else 0
            offset += len(header) + e.csize
        self._settle()
        if self.layout != layout:
            raise _Refuted("the layout changed")
        self._shipped = shipped
        directory = b"".join(central)
        yield directory
        yield end_records(len(entries), offset, len(directory), offset + len(directory))

    def _payload(self, item: tuple[Entry, int | None]) -> bytes:
        e, index = item
        if index is None:
            return self._from_previous(e)
        if e.spooled:
            return self.spool.read(e.spooled[index])
        assert e.file.path is not None  # a .zip's members are spooled whole
        start, length = _piece(e.file.size, index)
        part = e.parts[index]
        if part.key is None:
            return read_at(e.file.path, start, length)
        hit = self.cache.get(part.key, length)
        if hit is not None and len(hit.payload) == part.csize:
            return hit.payload
        return self._again(e, index, part, start, length)

    def _from_previous(self, e: Entry) -> bytes:
        """A predicted entry's payload from the archive last sent, if it is there whole (its
        CRC-32 as recorded); else from the cache, piece by piece."""
        assert e.previous is not None
        assert self.previous is not None
        at, crc = e.previous
        try:
            data = os.pread(self.previous, e.csize, at)
        except OSError:
            data = b""
        if len(data) == e.csize and zlib.crc32(data) == crc:
            return data
        return b"".join(self._payload((e, i)) for i in range(len(e.parts)))

    def _again(self, e: Entry, index: int, part: Part, start: int, length: int) -> bytes:
        """A predicted piece whose cache entry went missing or failed its checks: compressed
        again from the file, whose bytes must be the ones the key names."""
        assert e.file.path is not None
        from_ = max(0, start - DICTIONARY) if index else 0
        data = read_at(e.file.path, from_, start - from_ + length)
        primer, raw = data[: start - from_], data[start - from_ :]
        last = start + length >= e.file.size
        key = hashlib.sha256(raw).hexdigest() if len(e.parts) == 1 else piece_key(primer, raw, last)
        if key != part.key or len(raw) != length:
            raise _Refuted(e.file.rel)
        payload = deflate(raw, primer, last)
        if len(payload) != part.csize:
            raise _Refuted(e.file.rel)
        self.cache.put(key, zlib.crc32(raw), length, payload)
        return payload

    # ------------------------------------------------------------------- the upload

    def start(self, send: Callable[[Body], T]) -> None:
        """Run ``send`` on a thread with the zip as its body: ``sent`` returns what it
        returned. A body cut short by a refuted prediction is sent again, whole, once the
        layout is exact."""

        def attempt() -> T:
            body = Body(self)
            try:
                result = send(body)
            except BaseException:
                body.drop()
                raise
            self._finished = body
            return result

        def run() -> None:
            try:
                try:
                    self._result = attempt()
                except _Refuted:
                    if self.closed.is_set():
                        return
                    self._settle()
                    self._result = attempt()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of sent()
                self._error = exc

        self._upload = threading.Thread(target=run, name="mixpeek-upload", daemon=True)
        self._upload.start()

    def sent(self) -> Any:
        assert self._upload is not None
        self._upload.join()
        if isinstance(self._error, _Changed):
            self._guarded(lambda: _raise(self._error))
        if isinstance(self._error, _Refuted):
            raise BundleError(
                self.source or "the bundle",
                "its files changed while it was being sent; run the build again",
                self.noun,
            )
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        """Stop what still runs; what this packing learnt is kept on a thread of its own
        (``keeping``, joined when the process exits)."""
        self.closed.set()
        if self._upload is not None:
            self._upload.join()
        for pool in (self.pool, self.checks):
            pool.shutdown(wait=True, cancel_futures=True)
        if self.previous is not None:
            os.close(self.previous)
            self.previous = None
        if self._settled is None or not self.cache.enabled:
            self.spool.close()
            if self._finished is not None:
                self._finished.drop()
            return
        keeper = threading.Thread(target=self._keep, name="mixpeek-cache", daemon=True)
        with _KEEPERS_LOCK:
            _KEEPERS.add(keeper)
        keeper.start()
        self.keeper = keeper

    def __enter__(self) -> Shipment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_KEEPERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_KEEPERS_LOCK = threading.Lock()


@atexit.register
def _join_keepers() -> None:
    """A process that ends normally finishes writing the cache first (one killed leaves at
    most a temporary file there, which eviction removes)."""
    with _KEEPERS_LOCK:
        keepers = list(_KEEPERS)
    for keeper in keepers:
        keeper.join()


def _raise(exc: BaseException | None) -> None:
    assert exc is not None
    raise exc


class Body:
    """The zip as an upload body: ``seek(0)`` starts it again (a retry), ``read`` hands out
    the next block. The blocks are made on a thread of their own (reading payloads, keeping the
    deflated ones for the next redeploy), so that making them and sending them overlap."""

    def __init__(self, shipment: Shipment) -> None:
        self.shipment = shipment
        # The deflated payloads sent, for the next redeploy to copy its unchanged entries from.
        self.copy = shipment.cache.new_archive() if shipment.folder is not None else None
        self._blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(BLOCKS_AHEAD)
        self._maker: threading.Thread | None = None
        self._stop = threading.Event()
        self._ended = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != 0 or whence != 0:
            raise OSError("the zip can only be sent again from its start")
        self._halt()
        if self.copy is not None:
            self.copy[1].seek(0)
            self.copy[1].truncate()
        self._stop = threading.Event()
        self._blocks = queue.Queue(BLOCKS_AHEAD)
        self._ended = False
        self._maker = threading.Thread(
            target=self._make, args=(self._blocks, self._stop), name="mixpeek-zip", daemon=True
        )
        self._maker.start()
        return 0

    def _make(
        self, blocks: queue.Queue[bytes | BaseException | None], stop: threading.Event
    ) -> None:
        def hand(item: bytes | BaseException | None) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    blocks.put(item, timeout=0.1)
                    return

        try:
            for block in _blocked(self.shipment.chunks(self._keep), UPLOAD_BLOCK):
                if stop.is_set():
                    return
                hand(block)
            hand(None)
        except BaseException as exc:  # noqa: BLE001 - raised by read() in the sender
            hand(exc)

    def _keep(self, block: bytes) -> None:
        if self.copy is not None:
            try:
                self.copy[1].write(block)
            except OSError:  # the cache's disk is full: the next redeploy reads entries
                self.shipment.cache.drop_archive(self.copy[1])
                self.copy = None

    def read(self, size: int = -1) -> bytes:
        """The next block whole, whatever ``size`` asks (an upload sends what it is given;
        cutting blocks would only copy them); b"" at the end."""
        if self._ended:
            return b""
        item = self._blocks.get()
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        if item is None:
            self._ended = True
            return b""
        return item

    def _halt(self) -> None:
        self._stop.set()
        if self._maker is not None:
            self._maker.join()

    def drop(self) -> None:
        self._halt()
        if self.copy is not None:
            self.shipment.cache.drop_archive(self.copy[1])
            self.copy = None


def _blocked(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """``chunks`` regrouped into blocks of at least ``size`` bytes (the last may be shorter):
    one write per block rather than one per small file, and no chunk cut in two."""
    held: list[bytes] = []
    count = 0
    for chunk in chunks:
        held.append(chunk)
        count += len(chunk)
        if count >= size:
            yield b"".join(held)
            held, count = [], 0
    if held:
        yield b"".join(held)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while the memo's records become entries: it would
    scan them again and again as they are made (a third of a 10,000-file layout's time),
    and they hold no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _weight(item: tuple[Entry, int | None]) -> int:
    e, index = item
    return e.file.size if index is None else _piece(e.file.size, index)[1]


def _runs(items: Sequence[T], weight: Callable[[T], int]) -> Iterator[list[T]]:
    """``items`` in runs of about a piece's weight (or 256 items): one thread-pool job each,
    so the pool's own cost stays small next to the work."""
    run: list[T] = []
    held = 0
    for item in items:
        run.append(item)
        held += weight(item)
        if held >= PIECE or len(run) >= 256:
            yield run
            run, held = [], 0
    if run:
        yield run


def _ordered(
    pool: ThreadPoolExecutor,
    items: Iterable[T],
    run: Callable[[T], list[bytes]],
    weight: Callable[[T], int],
) -> Iterator[bytes]:
    """``run`` over ``items`` on ``pool``, each job's results flattened in order, with a bounded
    number of bytes in flight."""
    source = iter(items)
    pending: deque[tuple[int, Future[list[bytes]]]] = deque()
    in_flight = 0

    def fill() -> None:
        nonlocal in_flight
        while len(pending) < 64 and in_flight < WINDOW_BYTES:
            item = next(source, None)
            if item is None:
                return
            w = weight(item)
            pending.append((w, pool.submit(run, item)))
            in_flight += w

    fill()
    while pending:
        w, future = pending.popleft()
        results = future.result()
        in_flight -= w
        fill()
        yield from results
