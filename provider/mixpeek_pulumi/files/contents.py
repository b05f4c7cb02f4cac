"""Reading what a bundle's files hold: the content digest and each file's sha256, a small file
read whole, and the texts the server diffs. Files are hashed on several threads.

The digest covers sorted paths, sizes and bytes only, so rebuilding identical content (new
mtimes, permissions, zip order) never shows as a change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from ..errors import BundleError
from .sources import SourceFile, os_reason

CHUNK: Final = 1024 * 1024
MAX_SOURCE_FILE: Final = 256 * 1024
MAX_SOURCE_TOTAL: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class Digest:
    sha256: str
    file_count: int
    total_size: int


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
            raise BundleError(f.rel, f"it cannot be read ({os_reason(exc)})") from None
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
