"""The compressed-entry cache: deflated pieces of bundle files kept by the digest of what they
hold, the codec and its level, so that a redeploy compresses only what changed.

It is an optimisation only. An entry is written to a temporary name and renamed into place,
so a reader sees a whole entry or none; every read checks the entry's own header (the key it
was stored under, the sizes, the CRC-32 of the payload), and an entry that fails is deleted
and treated as absent. A cache that is missing, unwritable, full, corrupt or written by
another deploy at the same time therefore never changes what ships: at worst the piece is
compressed again.

Beside the entries, for each bundle folder, the *last archive*: the deflated payloads of the
zip last sent from it, one after the other (stored files are read from the folder again), and a
*file memo* of what each file was then (its size, times, inode and content digest, the entries
that hold it, and where its payload lies in that last archive, with its CRC-32), so that a redeploy
can lay out its zip before it has re-read the files and copy unchanged payloads in large
reads; the bytes are still hashed, while they are sent (``shipment``). Archives are written
under a temporary name too, and a memo names the one it describes.

The cache is bounded (``MIXPEEK_ENTRY_CACHE_BYTES``, 1 GiB by default): past the bound, the
entries, archives and memos least recently used (by modification time, refreshed on use) are
deleted first.
``MIXPEEK_ENTRY_CACHE`` moves it, or turns it off with ``off``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ENV_DIR: Final = "MIXPEEK_ENTRY_CACHE"
ENV_BYTES: Final = "MIXPEEK_ENTRY_CACHE_BYTES"
DEFAULT_BYTES: Final = 1024**3
# A temporary file older than this was left by a process that died while writing it.
STALE_TEMP: Final = 3600.0
# What a deploy evicts down to once it went past the bound, so the next one has room.
LOW_WATER: Final = 0.8

MAGIC: Final = b"MXPZENT1"
# magic, key (32), CRC-32 of the raw bytes, CRC-32 of the payload, raw size, payload size.
HEADER: Final = struct.Struct("<8s32sIIQQ")
MEMO_VERSION: Final = 2
_ARCHIVE: Final = re.compile(r"[0-9a-f]{24}\.pack")


def default_root() -> Path | None:
    """Where the cache lives, or None when it is turned off."""
    configured = os.environ.get(ENV_DIR, "")
    if configured.strip().lower() in ("off", "0", "none", "false"):
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "entries"


def default_bound() -> int:
    try:
        return max(0, int(os.environ.get(ENV_BYTES, DEFAULT_BYTES)))
    except ValueError:
        return DEFAULT_BYTES


@dataclass(frozen=True)
class Hit:
    """A verified entry: the CRC-32 of the raw bytes it holds, and its deflated payload."""

    crc: int
    payload: bytes


class EntryCache:
    """Entries of one codec and level under ``root``. Every failure to read or write the cache
    is swallowed: the caller compresses instead. Safe to share between threads and processes."""

    def __init__(self, root: Path | None, codec: str, bound: int | None = None) -> None:
        self.folder = root / codec if root is not None else None
        self._base = str(self.folder) if self.folder is not None else ""
        self.bound = default_bound() if bound is None else bound
        self.added = 0
        self._writable = self.folder is not None
        self._lock = threading.Lock()
        self._made: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def path(self, key: str) -> str:
        """Where the entry of ``key`` (64 hex digits) lives. Plain strings: this runs once per
        file of every deploy, and pathlib costs more."""
        return os.path.join(self._base, key[:2], key)

    def get(self, key: str, size: int) -> Hit | None:
        """The entry holding the ``size`` raw bytes whose key is ``key``, verified; None when
        there is none, or when it fails a check (it is deleted then)."""
        if self.folder is None:
            return None
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        found = _verified(data, bytes.fromhex(key), size)
        if found is None:
            self._discard(path)
        return found

    def touch(self, keys: Iterable[str]) -> None:
        """Mark entries as used now, for eviction's order (after a deploy, off its path)."""
        if self.folder is None:
            return
        for key in keys:
            with contextlib.suppress(OSError):
                os.utime(self.path(key))

    def put(self, key: str, crc: int, size: int, payload: bytes) -> None:
        """Keep ``payload`` (the deflate of ``size`` raw bytes with CRC-32 ``crc``) under
        ``key``: written whole under a temporary name, then renamed into place."""
        if not self._writable:
            return
        path = self.path(key)
        header = HEADER.pack(
            MAGIC, bytes.fromhex(key), crc, zlib.crc32(payload), size, len(payload)
        )
        try:
            shard = os.path.dirname(path)
            if shard not in self._made:
                os.makedirs(shard, exist_ok=True)
                self._made.add(shard)
            _write_atomically(path, header, payload)
        except OSError:
            self._writable = False  # read-only, full or gone: stop trying for this deploy
            return
        with self._lock:
            self.added += HEADER.size + len(payload)

    def _discard(self, path: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

    # ------------------------------------------------------------------ the file memo

    def memo_path(self, folder: str) -> Path:
        assert self.folder is not None
        name = hashlib.sha256(os.path.abspath(folder).encode()).hexdigest()[:32]
        return self.folder / "memos" / f"{name}.json"

    def read_memo(self, folder: str) -> tuple[dict[str, list[Any]], str | None]:
        """What each file of ``folder`` was at its last packing, and the name of the archive
        then sent; empty when unknown or unreadable (nothing is trusted from it but a layout,
        checked by hashing)."""
        if self.folder is None:
            return {}, None
        try:
            found = json.loads(self.memo_path(folder).read_bytes())
        except (OSError, ValueError):
            return {}, None
        if not isinstance(found, dict) or found.get("version") != MEMO_VERSION:
            return {}, None
        files, archive = found.get("files"), found.get("archive")
        name = archive if isinstance(archive, str) and _ARCHIVE.fullmatch(archive) else None
        return (files if isinstance(files, dict) else {}), name

    def write_memo(self, folder: str, files: Mapping[str, list[Any]], archive: str | None) -> None:
        if not self._writable:
            return
        path = self.memo_path(folder)
        memo = {"version": MEMO_VERSION, "files": files, "archive": archive}
        body = json.dumps(memo, separators=(",", ":"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(str(path), b"", body.encode())
        except OSError:
            self._writable = False

    # ------------------------------------------------------------- the last archives

    def archive_path(self, name: str) -> str:
        return os.path.join(self._base, "archives", name)

    def open_archive(self, name: str | None) -> int | None:
        """The archive last sent from a folder, open for reading (an open file stays readable
        whatever eviction or a concurrent deploy does to its name); None when it is gone."""
        if self.folder is None or name is None:
            return None
        try:
            return os.open(self.archive_path(name), os.O_RDONLY)
        except OSError:
            return None

    def new_archive(self) -> tuple[str, Any] | None:
        """A file to copy a zip's deflated payloads into as they are sent: its final name and
        the open file (under a temporary name until ``keep_archive``)."""
        if not self._writable:
            return None
        name = f"{os.urandom(12).hex()}.pack"
        temp = self.archive_path(f"{name}.tmp-{os.getpid()}")
        try:
            os.makedirs(os.path.dirname(temp), exist_ok=True)
            return name, open(temp, "wb")
        except OSError:
            return None

    def keep_archive(self, name: str, handle: Any) -> bool:
        temp = handle.name
        try:
            handle.close()
            os.replace(temp, self.archive_path(name))
        except OSError:
            self.drop_archive(handle)
            return False
        return True

    def drop_archive(self, handle: Any) -> None:
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(handle.name)

    def forget_archive(self, name: str | None) -> None:
        if self.folder is not None and name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.archive_path(name))

    # ------------------------------------------------------------------- eviction

    def evict(self) -> int:
        """Delete the least recently used entries while the cache is past its bound (down to
        ``LOW_WATER`` of it), and temporary files that dead writers left; how many bytes were
        freed. Entries another deploy is reading stay readable through its open file; one it
        has yet to open is simply compressed again."""
        if self.folder is None or not self.folder.exists():
            return 0
        entries: list[tuple[float, int, str]] = []
        now = time.time()
        freed = 0
        for path, info in _scan(self.folder):
            if ".tmp-" in os.path.basename(path):
                if now - info.st_mtime > STALE_TEMP:
                    freed += _unlink(path, info.st_size)
                continue
            entries.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self.bound:
            return freed
        target = int(self.bound * LOW_WATER)
        for _, size, path in sorted(entries):
            if total <= target:
                break
            gone = _unlink(path, size)
            total -= gone
            freed += gone
        return freed


def _verified(data: bytes, key: bytes, size: int) -> Hit | None:
    if len(data) < HEADER.size:
        return None
    magic, stored_key, crc, payload_crc, raw_size, payload_size = HEADER.unpack_from(data)
    payload = data[HEADER.size :]
    if (
        magic != MAGIC
        or stored_key != key
        or raw_size != size
        or payload_size != len(payload)
        or zlib.crc32(payload) != payload_crc
    ):
        return None
    return Hit(crc, payload)


def _write_atomically(path: str, header: bytes, payload: bytes) -> None:
    """Write to a name no other writer uses, then rename over ``path``: readers and
    concurrent writers of the same entry only ever see a whole file."""
    temp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(temp, "wb") as handle:
            handle.write(header)
            handle.write(payload)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _scan(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry, last archive, memo and temporary file."""
    with contextlib.suppress(OSError), os.scandir(folder) as shards:
        for shard in shards:
            if not (len(shard.name) == 2 or shard.name in ("archives", "memos")):
                continue
            if not shard.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError), os.scandir(shard.path) as listing:
                for entry in listing:
                    with contextlib.suppress(OSError):
                        yield entry.path, entry.stat(follow_symlinks=False)


def _unlink(path: str, size: int) -> int:
    try:
        os.unlink(path)
    except OSError:
        return 0
    return size
