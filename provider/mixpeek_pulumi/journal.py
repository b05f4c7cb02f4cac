"""A local record of deploys in flight, so a create that timed out re-attaches next time.

Pulumi records nothing when create raises; the API has no "list deploys". Before waiting, the
deploy id is written here under a key of endpoint, app, environment and bundle digest; the next
create with the same key re-attaches to it (or adopts it) instead of deploying again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ENV_STATE_DIR: Final = "MIXPEEK_PULUMI_STATE_DIR"


def state_dir() -> Path:
    configured = os.environ.get(ENV_STATE_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mixpeek-pulumi" / "inflight"


def _path(*parts: str) -> Path:
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]
    return state_dir() / f"{key}.json"


def record(parts: tuple[str, ...], deploy_id: str) -> None:
    """Remember ``deploy_id`` for ``parts``; failures to write are not fatal (best effort)."""
    target = _path(*parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump({"deploy_id": deploy_id, "recorded_at": time.time()}, handle)
        os.replace(tmp, target)
    except OSError:
        pass


def lookup(parts: tuple[str, ...]) -> str | None:
    try:
        data: Any = json.loads(_path(*parts).read_text())
    except (OSError, ValueError):
        return None
    value = data.get("deploy_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def forget(parts: tuple[str, ...]) -> None:
    with contextlib.suppress(OSError):
        _path(*parts).unlink(missing_ok=True)
