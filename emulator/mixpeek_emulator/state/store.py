"""The one place the records live while the emulator runs: behind a re-entrant lock, saved
after every change when a data dir is given, and settled as time passes.

``Store.settle`` applies what finished (a new version, the environment repointed) exactly
once, whichever request notices first. ``Store.now`` is the progress clock every build and
rollout is timed on: monotonic while the emulator runs, and resumed on the next start from
where the last save left it, plus the wall time that passed since (never less than nothing).
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..clock import Clock, SystemClock
from ..disk import DiskFull, writing
from . import persistence
from .apps import publish
from .common import Timing
from .persistence import State
from .plugins import Plugin


class Store:
    """All state behind one re-entrant lock; persisted atomically when a data dir is given."""

    def __init__(self, data_dir: Path | None, timing: Timing, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self.timing = timing
        self.clock: Clock = clock or SystemClock()
        self.data_dir = data_dir
        self.state = State()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.state = persistence.load(data_dir / persistence.FILE) or State()
        wall = self.clock.time()
        resumed = wall
        if self.state.progress is not None and self.state.saved_at is not None:
            resumed = self.state.progress + max(0.0, wall - self.state.saved_at)
        self._offset = resumed - self.clock.monotonic()
        self._date(self.state)

    def now(self) -> float:
        """The progress clock: seconds that only move forward, across restarts too."""
        return self._offset + self.clock.monotonic()

    def _date(self, state: State) -> None:
        """Place records of an earlier release, which knew only the wall clock, on the progress
        clock: as far back from now as their wall time is."""
        behind = self.now() - self.clock.time()
        for deploy in state.deploys.values():
            if deploy.queued_progress is None:
                deploy.queued_progress = deploy.queued_at + behind
        for plugins in state.plugins.values():
            for plugin in plugins.values():
                if plugin.requested_progress is None and plugin.deploy_requested_at is not None:
                    plugin.requested_progress = plugin.deploy_requested_at + behind

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
        """Write every record; on a full disk, raise ``DiskFull`` with the records put back as
        last saved, so nothing a client is told failed is kept, nor lost at the next start."""
        if self.data_dir is None:
            return
        target = self.data_dir / persistence.FILE
        with self.lock:
            self.state.progress, self.state.saved_at = self.now(), self.clock.time()
            try:
                with writing():
                    persistence.save(self.state, target)
            except DiskFull:
                self.state = persistence.load(target) or State()
                self._date(self.state)
                raise

    def settle(self, now: float | None = None) -> None:
        """Apply every deploy that finished by ``now`` on the progress clock (by default, now):
        a version, the environment repointed."""
        now = self.now() if now is None else now
        with self.lock:
            # In the order they finished, so version numbers follow completion, not queueing.
            finished = sorted(
                (d for d in self.state.deploys.values() if not d.settled and now >= d.ends),
                key=lambda d: d.ends,
            )
            for deploy in finished:
                deploy.settled = True
                app = self.state.apps.get(deploy.app_id)
                if app is not None and deploy.outcome == "complete":
                    publish(app, deploy, self.clock.time())
            if finished:
                self.save()
