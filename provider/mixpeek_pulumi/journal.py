"""A local record of deploys in flight, so a create that timed out re-attaches next time.

Pulumi records nothing when a dynamic create raises, and the API has no "list deploys". Before
waiting, the deploy id is written here under a key of endpoint, app, environment and bundle
digest; the next create with the same key re-attaches to it (or adopts it) instead of deploying
again. Writing is best effort: a read-only home folder costs the re-attach, never the deploy.
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


def default_dir() -> Path:
    configured = os.environ.get(ENV_STATE_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "inflight"


@dataclass(frozen=True)
class Journal:
    directory: Path

    @classmethod
    def default(cls) -> Journal:
        return cls(default_dir())

    def _path(self, key: tuple[str, ...]) -> Path:
        digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:40]
        return self.directory / f"{digest}.json"

    def record(self, key: tuple[str, ...], deploy_id: str) -> None:
        """Remember ``deploy_id`` for ``key``, atomically."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump({"deploy_id": deploy_id, "recorded_at": time.time()}, handle)
            os.replace(tmp, target)
        except OSError:
            pass

    def lookup(self, key: tuple[str, ...]) -> str | None:
        try:
            data: Any = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        value = data.get("deploy_id") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def forget(self, key: tuple[str, ...]) -> None:
        with contextlib.suppress(OSError):
            self._path(key).unlink(missing_ok=True)
