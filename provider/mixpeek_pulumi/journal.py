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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ENV_STATE_DIR: Final = "MIXPEEK_PULUMI_STATE_DIR"
TTL_SECONDS: Final = 7 * 24 * 3600.0
"""No deploy is in flight longer than the longest ``timeout_seconds`` allowed (a week)."""


def default_dir() -> Path:
    configured = os.environ.get(ENV_STATE_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "inflight"


@dataclass(frozen=True)
class Entry:
    """A deploy id the journal holds, and the file that holds it (for messages)."""

    deploy_id: str
    path: Path


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
            with os.fdopen(fd, "w") as handle:
                json.dump({"deploy_id": deploy_id, "recorded_at": time.time()}, handle)
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
        path = self._path(key)
        try:
            data: Any = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        value, when = data.get("deploy_id"), data.get("recorded_at")
        if not isinstance(value, str) or not value or not isinstance(when, int | float):
            return None
        if time.time() - when > self.ttl:
            return None
        return Entry(value, path)

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
