"""A local hint of deploys in flight, for the dynamic resources: Pulumi records nothing when a
dynamic create raises, and the API has no "list deploys".

Before waiting, the deploy id is written here under a key of endpoint, app, environment and
bundle digest. The next deploy of the same key reads it back as a hint only: the deploy layer
checks it against the service before acting on it (``deploy.apps``). The native provider keeps
no journal, since the engine keeps a deploy cut short in the stack's state.

Writing is best effort: a read-only or full disk costs the hint, never the deploy, and leaves
no temporary file behind. Entries older than ``TTL_SECONDS`` are never read and are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ENV_STATE_DIR: Final = "MIXPEEK_PULUMI_STATE_DIR"
TTL_SECONDS: Final = 7 * 24 * 3600.0
"""No deploy is in flight longer than the longest ``timeout_seconds`` allowed (a week)."""


def default_dir() -> Path:
    configured = os.environ.get(ENV_STATE_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "inflight"


MAX_ENTRY_BYTES: Final = 4096
"""An entry is a few hundred bytes; anything larger (or not a regular file) is no entry."""


@dataclass(frozen=True)
class Entry:
    """A deploy id the journal holds, its key, and the file that holds it (for messages)."""

    deploy_id: str
    path: Path
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Journal:
    directory: Path
    ttl: float = TTL_SECONDS

    @classmethod
    def default(cls) -> Journal:
        return cls(default_dir())

    def _path(self, key: tuple[str, ...]) -> Path:
        digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:40]
        return self.directory / f"{digest}.json"

    def record(self, key: tuple[str, ...], deploy_id: str) -> None:
        """Remember ``deploy_id`` for ``key``, atomically; prune what has expired."""
        target = self._path(key)
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            try:
                handle = os.fdopen(fd, "w")
            except OSError:
                os.close(fd)
                raise
            with handle:
                json.dump(
                    {"deploy_id": deploy_id, "recorded_at": time.time(), "key": list(key)},
                    handle,
                )
            os.replace(tmp, target)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.prune()

    def lookup(self, key: tuple[str, ...]) -> Entry | None:
        """The deploy id recorded for ``key``, unless it is unreadable or expired."""
        return self._read(self._path(key))

    def siblings(self, key: tuple[str, ...]) -> list[Entry]:
        """Entries of the same endpoint, app and environment as ``key`` but other content:
        deploys an earlier run left that could still land in that environment."""
        found: list[Entry] = []
        with contextlib.suppress(OSError), os.scandir(self.directory) as items:
            for item in items:
                entry = self._read(Path(item.path)) if item.name.endswith(".json") else None
                if entry is not None and entry.key[:-1] == key[:-1] and entry.key != key:
                    found.append(entry)
        return found

    def _read(self, path: Path) -> Entry | None:
        data = _small_json(path)
        if not isinstance(data, dict):
            return None
        value, when, key = data.get("deploy_id"), data.get("recorded_at"), data.get("key")
        if not isinstance(value, str) or not value or not isinstance(when, int | float):
            return None
        if time.time() - when > self.ttl:
            return None
        parts = tuple(str(k) for k in key) if isinstance(key, list) else ()
        return Entry(value, path, parts)

    def forget(self, key: tuple[str, ...]) -> None:
        with contextlib.suppress(OSError):
            self._path(key).unlink(missing_ok=True)

    def prune(self) -> None:
        """Remove entries (and temporary files a killed process left) older than the TTL."""
        cutoff = time.time() - self.ttl
        with contextlib.suppress(OSError), os.scandir(self.directory) as found:
            for item in found:
                if not item.name.endswith((".json", ".tmp")):
                    continue
                with contextlib.suppress(OSError):
                    if item.stat().st_mtime < cutoff:
                        os.unlink(item.path)


def _small_json(path: Path) -> object:
    """The JSON of a small regular file, or None: a FIFO, a device or a link to one, or a
    file larger than an entry can be, is never read (it could block or fill memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            raw = handle.read(MAX_ENTRY_BYTES + 1)
        except OSError:
            return None
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    try:
        result: object = json.loads(raw)
    except ValueError:
        return None
    return result
