"""The one place the records live while the emulator runs: behind a re-entrant lock, saved
after every change when a data dir is given, and settled as time passes.

``Store.settle`` applies what finished (a new version, the environment repointed) exactly
once, whichever request notices first.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from . import persistence
from .apps import publish
from .common import Timing
from .persistence import State
from .plugins import Plugin


class Store:
    """All state behind one re-entrant lock; persisted atomically when a data dir is given."""

    def __init__(self, data_dir: Path | None, timing: Timing) -> None:
        self.lock = threading.RLock()
        self.timing = timing
        self.data_dir = data_dir
        self.state = State()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.state = persistence.load(data_dir / persistence.FILE) or State()

    def plugins_of(self, namespace_id: str) -> dict[str, Plugin]:
        return self.state.plugins.setdefault(namespace_id, {})

    def delete_app(self, app_id: str) -> list[str]:
        """Forget the app and its deploys; returns the storage keys of its own bundles (those
        under its ``app-builds/<app_id>/``: a deploy may name any key, even another app's)."""
        with self.lock:
            app = self.state.apps.pop(app_id)
            deploys = [d for d in self.state.deploys.values() if d.app_id == app_id]
            for d in deploys:
                del self.state.deploys[d.deploy_id]
            self.save()
        named = [k for d in deploys for k in (d.bundle_s3_key, d.archive_key)]
        named += [k for v in app.versions for k in (v.bundle_s3_key, v.archive_key)]
        own = f"app-builds/{app_id}/"
        return sorted({k for k in named if k and k.startswith(own)})

    def save(self) -> None:
        if self.data_dir is not None:
            persistence.save(self.state, self.data_dir / persistence.FILE)

    def settle(self, now: float | None = None) -> None:
        """Apply every deploy that finished by ``now``: a version, the environment repointed."""
        now = time.time() if now is None else now
        with self.lock:
            # In the order they finished, so version numbers follow completion, not queueing.
            finished = sorted(
                (d for d in self.state.deploys.values() if not d.settled and now >= d.done_at),
                key=lambda d: d.done_at,
            )
            for deploy in finished:
                deploy.settled = True
                app = self.state.apps.get(deploy.app_id)
                if app is not None and deploy.outcome == "complete":
                    publish(app, deploy)
            if finished:
                self.save()
