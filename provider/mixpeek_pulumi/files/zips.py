"""The one reader of untrusted .zip archives, on disk or downloaded: each is read into a list of
files with the rules a folder is read by, every failure a ``BundleError`` naming it.

A .zip's entry count and the size of its central directory are capped, read from its end
records before ``zipfile`` parses anything, and so is its compression ratio, per entry and in
total, past which it is refused as a zip bomb. Damaged, encrypted or exotic archives, escaping
names and special files are refused by name: every failure of ``zipfile`` or ``zlib`` passes
through one guard, ``ZipGuard``. A refusal names files as they are; ``BundleError`` escapes
what a terminal would act on, so a hostile name cannot forge or rewrite a line of the output.
"""

from __future__ import annotations

import os
import posixpath
import stat
import struct
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from ..errors import BundleError
from ..sizes import size_text
from .excludes import Excludes
from .names import Names, utf8_name
from .sources import Limits, SourceFile, Tally

# A .zip whose entries expand past these ratios is a zip bomb, not a build.
MAX_ENTRY_RATIO: Final = 1000
ENTRY_RATIO_FROM: Final = 1024 * 1024
MAX_TOTAL_RATIO: Final = 200
TOTAL_RATIO_FROM: Final = 16 * 1024 * 1024
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


def collect_archive(
    handle: IO[bytes], label: str, excludes: Excludes, limits: Limits
) -> list[SourceFile]:
    """The files of a zip held in an open file (one downloaded from the service), with the
    same rules as a .zip on disk; ``label`` names it in errors."""
    try:
        files = zip_entries(handle, label, excludes, limits)
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
    return utf8_name(clean, source)


def zip_entries(
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
    tally = Tally(label, limits)
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
