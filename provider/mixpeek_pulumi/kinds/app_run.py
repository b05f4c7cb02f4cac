"""One deploy attempt of an app bundle, as the plain deploy path and reconciliation both read
it: what it ships and where (``DeployRun``), and what the environment serves while its build
runs (``Watch``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..api.models import VersionRecord
from ..errors import MixpeekError
from ..files import gitinfo
from .environments import AppEnvironment
from .ordering import Shipped
from .spec import AppDeployInputs

# The slowest a deploy's status is polled: a build's log stream, or its end, says sooner.
RELAXED_POLL: Final = 10.0


@dataclass
class DeployRun:
    """One deploy attempt: what it ships and where, for messages and the journal."""

    inputs: AppDeployInputs
    env: AppEnvironment
    digest: str
    tag: str
    key: tuple[str, ...]
    archive_size: int = 0
    file_count: int = 0
    s3_key: str | None = None
    git: gitinfo.GitInfo = field(default_factory=gitinfo.GitInfo)
    """The commit the bundle comes from: the inputs' ``git_*`` where set, else git's."""
    replaces: int | None = None
    """The version the environment served when the run started: what the deploy message
    records it replaces, for a later run to restore if the new version fails its checks."""
    watch: Watch = field(default_factory=lambda: Watch(None))
    manifest: dict[str, str] | None = None
    """The files shipped and their hashes (``manifests``), as packing read them."""

    @property
    def shipped(self) -> Shipped:
        return Shipped(self.git.sha, "this bundle", Path(self.inputs.bundle))


class Watch:
    """What the environment serves while a build runs, looked at now and then: the version
    that served just before the build went live, which another run may have switched to
    after this one started (a promotion, a deploy that ended first)."""

    EVERY: Final = 5.0

    def __init__(self, env: AppEnvironment | None) -> None:
        self.env = env
        self.last: VersionRecord | None = None
        self._at = -math.inf

    def look(self, building: bool) -> None:
        now = time.monotonic()
        if not building or self.env is None or now - self._at < self.EVERY:
            return
        self._at = now
        try:
            app = self.env.app()
        except MixpeekError:
            return  # a look is a hint; the build's own status decides
        self.last = self.env.served(app)
