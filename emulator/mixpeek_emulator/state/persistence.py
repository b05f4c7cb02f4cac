"""``state.json``: every record as one JSON document, written so that a kill mid-write leaves
the previous document intact, and read back into records when the emulator starts.

The document is ``asdict`` of ``State`` with sorted keys: the field names of the records are
its format, and a data dir written by an earlier release must still load. Beside the records
it keeps where the progress clock stood, and the wall time, when it was saved: a monotonic
clock does not carry over to the next process, so the next one resumes from there.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from .apps import App, Deploy, Version
from .domains import Domain
from .plugins import Plugin, PluginUpload

FILE: Final = "state.json"


@dataclass
class State:
    apps: dict[str, App] = field(default_factory=dict)
    deploys: dict[str, Deploy] = field(default_factory=dict)
    uploads: dict[str, PluginUpload] = field(default_factory=dict)
    plugins: dict[str, dict[str, Plugin]] = field(default_factory=dict)  # namespace -> id -> plugin
    # The progress clock and the wall clock at the last save; None in an earlier release's.
    progress: float | None = None
    saved_at: float | None = None


def save(state: State, target: Path) -> None:
    # Written beside the target, fsynced, then renamed over it: a rename is atomic, a write is not.
    tmp = target.with_name(f"{FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = json.dumps(asdict(state), sort_keys=True)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # a save that failed (a full disk) gives its space back


def load(target: Path) -> State | None:
    """The state saved at ``target``, or None if nothing was saved yet."""
    if not target.is_file():
        return None
    state = _decoded(json.loads(target.read_text(encoding="utf-8")))
    # Temporary files of saves a kill cut short: the document they would have replaced is whole.
    for leftover in target.parent.glob(f"{FILE}.*.tmp"):
        leftover.unlink(missing_ok=True)
    return state


def _decoded(raw: dict[str, Any]) -> State:
    apps = {}
    for app_id, a in raw.get("apps", {}).items():
        versions = [Version(**v) for v in a.pop("versions", [])]
        domains = [Domain(**d) for d in a.pop("domains", [])]
        apps[app_id] = App(**a, versions=versions, domains=domains)
    return State(
        apps=apps,
        deploys={k: Deploy(**v) for k, v in raw.get("deploys", {}).items()},
        uploads={k: PluginUpload(**v) for k, v in raw.get("uploads", {}).items()},
        plugins={
            ns: {pid: Plugin(**p) for pid, p in items.items()}
            for ns, items in raw.get("plugins", {}).items()
        },
        progress=raw.get("progress"),
        saved_at=raw.get("saved_at"),
    )
