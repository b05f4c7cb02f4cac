"""Uploads through presigned URLs, and the content of what the service keeps behind one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from ..api.client import MixpeekClient
from ..errors import MixpeekError, StorageError
from ..files.contents import digest
from ..files.excludes import Excludes
from ..files.scratch import temporary_file
from ..files.sources import Limits
from ..files.zips import collect_archive

S = TypeVar("S")
T = TypeVar("T")
UPLOAD_URL_ATTEMPTS: Final = 3


def upload_fresh(mint: Callable[[], S], put: Callable[[S], T]) -> tuple[S, T]:
    """Mint a presigned URL and PUT to it; a URL that expired before the PUT is replaced by a
    fresh one (a few times), any other refusal is raised."""
    last: StorageError | None = None
    for _ in range(UPLOAD_URL_ATTEMPTS):
        slot = mint()
        try:
            return slot, put(slot)
        except StorageError as exc:
            if not exc.expired:
                raise
            last = exc
    assert last is not None
    raise last


def remote_digest(api: MixpeekClient, url: str, excludes: Excludes, limits: Limits) -> str | None:
    """The content digest of the archive the service keeps behind a presigned GET, downloaded
    with the size cap into an unnamed temporary file and read with the rules of a local
    source; None when it cannot be had."""
    with temporary_file("mixpeek-remote-") as handle:
        try:
            api.download(url, handle, max_bytes=limits.max_bytes)
            files = collect_archive(handle, "the service's copy", excludes, limits)
            return digest(files).sha256
        except (MixpeekError, OSError):
            return None
