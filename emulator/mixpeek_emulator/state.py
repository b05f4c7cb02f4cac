"""The emulator's state: apps, deploys, versions, plugins and uploads, behind one lock.

Progress is a function of time: a deploy records when it was queued and how long each stage
lasts, so ``status`` is computed on read and survives restarts. ``settle`` applies what finished
(a new version, the environment repointed) exactly once. With a data dir, every change is
written to a temporary file, fsynced and renamed over ``state.json``, so a kill mid-write leaves
the previous state intact.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("staging", "production")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@dataclass
class Timing:
    """Stage durations in seconds; tests make them short, faults change them."""

    queue_seconds: float = 0.2
    build_seconds: float = 1.0
    plugin_seconds: float = 1.0


@dataclass
class Deploy:
    deploy_id: str
    app_id: str
    environment: str
    message: str
    bundle_s3_key: str | None
    queued_at: float
    queue_seconds: float
    build_seconds: float
    outcome: str  # "complete" | "failed", decided when queued, revealed over time
    reason: str | None
    smoke_passed: bool
    source: str = "cli_upload"
    git_commit_sha: str | None = None
    git_commit_message: str | None = None
    git_author: str | None = None
    source_files: dict[str, str] | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_count: int = 0
    settled: bool = False
    version: int | None = None

    @property
    def done_at(self) -> float:
        return self.queued_at + self.queue_seconds + self.build_seconds

    def status(self, now: float) -> str:
        if now < self.queued_at + self.queue_seconds:
            return "queued"
        if now < self.done_at:
            return "building"
        return self.outcome

    def log_schedule(self) -> list[tuple[float, str]]:
        """Every log line with the time it is emitted: the build's story."""
        start = self.queued_at + self.queue_seconds
        b = self.build_seconds
        lines = [
            (start, f"Build started for deploy {self.deploy_id} ({self.environment})"),
            (start + b * 0.1, f"Downloading bundle {self.bundle_s3_key}"),
            (start + b * 0.3, f"Extracting {self.file_count} files"),
            (start + b * 0.5, "Validating bundle"),
        ]
        if self.outcome == "complete":
            lines += [
                (start + b * 0.7, f"Uploading {self.file_count} assets"),
                (start + b * 0.9, "Running smoke test"),
                (self.done_at, "Deploy complete!"),
            ]
        else:
            lines.append((self.done_at, f"Deploy failed: {self.reason}"))
        return lines


@dataclass
class Version:
    version: int
    deploy_id: str
    environment: str
    message: str
    deployed_at: float
    build_duration_ms: int
    asset_prefix: str
    bundle_s3_key: str | None
    files: dict[str, dict[str, Any]]
    source_files: dict[str, str] | None
    git_commit_sha: str | None
    git_commit_message: str | None
    git_author: str | None


@dataclass
class App:
    app_id: str
    slug: str
    title: str
    created_at: float
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: list[Version] = field(default_factory=list)

    def url(self, environment: str = "production") -> str:
        prefix = "" if environment == "production" else f"{environment}-"
        return f"https://{prefix}{self.slug}.mxp.co"


@dataclass
class PluginUpload:
    upload_id: str
    namespace_id: str
    name: str
    version: str
    description: str | None
    s3_key: str
    expires_at: float
    confirmed: bool = False


@dataclass
class Plugin:
    plugin_id: str
    namespace_id: str
    name: str
    version: str
    description: str | None
    s3_key: str
    code_hash: str
    created_at: float
    manifest: str = ""
    deploy_requested_at: float | None = None
    deployment_type: str | None = None
    deploy_seconds: float = 1.0
    deploy_outcome: str = "DEPLOYED"
    deploy_error: str | None = None
    undeployed: bool = True

    @property
    def feature_uri(self) -> str:
        return f"mixpeek://{self.name}@{self.version}"

    @property
    def route_prefix(self) -> str:
        return f"/inference/custom_plugin_{self.plugin_id}"

    def status(self, now: float) -> str:
        if self.undeployed or self.deploy_requested_at is None:
            return "NOT_DEPLOYED"
        if self.deployment_type == "batch_only":
            return "NOT_DEPLOYED"
        elapsed = now - self.deploy_requested_at
        step = self.deploy_seconds / 4
        if elapsed < step:
            return "QUEUED"
        if elapsed < 2 * step:
            return "PENDING"
        if elapsed < self.deploy_seconds:
            return "IN_PROGRESS"
        return self.deploy_outcome

    def deployed_at(self) -> float | None:
        if self.deploy_requested_at is None or self.undeployed:
            return None
        return self.deploy_requested_at + (
            0 if self.deployment_type == "batch_only" else self.deploy_seconds
        )


@dataclass
class State:
    apps: dict[str, App] = field(default_factory=dict)
    deploys: dict[str, Deploy] = field(default_factory=dict)
    uploads: dict[str, PluginUpload] = field(default_factory=dict)
    plugins: dict[str, dict[str, Plugin]] = field(default_factory=dict)  # namespace -> id -> plugin


class Store:
    """All state behind one re-entrant lock; persisted atomically when a data dir is given."""

    def __init__(self, data_dir: Path | None, timing: Timing) -> None:
        self.lock = threading.RLock()
        self.timing = timing
        self.data_dir = data_dir
        self.state = State()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load()

    # -- persistence

    @property
    def _file(self) -> Path | None:
        return self.data_dir / "state.json" if self.data_dir else None

    def save(self) -> None:
        target = self._file
        if target is None:
            return
        tmp = target.with_name(f"state.json.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        data = json.dumps(asdict(self.state), sort_keys=True)
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)

    def _load(self) -> None:
        target = self._file
        if target is None or not target.is_file():
            return
        raw = json.loads(target.read_text(encoding="utf-8"))
        apps = {}
        for app_id, a in raw.get("apps", {}).items():
            versions = [Version(**v) for v in a.pop("versions", [])]
            apps[app_id] = App(**a, versions=versions)
        self.state = State(
            apps=apps,
            deploys={k: Deploy(**v) for k, v in raw.get("deploys", {}).items()},
            uploads={k: PluginUpload(**v) for k, v in raw.get("uploads", {}).items()},
            plugins={
                ns: {pid: Plugin(**p) for pid, p in items.items()}
                for ns, items in raw.get("plugins", {}).items()
            },
        )
        for leftover in target.parent.glob("state.json.*.tmp"):
            leftover.unlink(missing_ok=True)

    # -- time

    def settle(self, now: float | None = None) -> None:
        """Apply every deploy that finished by ``now``: a version, the environment repointed."""
        now = time.time() if now is None else now
        changed = False
        with self.lock:
            finished = sorted(
                (d for d in self.state.deploys.values() if not d.settled and now >= d.done_at),
                key=lambda d: d.done_at,
            )
            for deploy in finished:
                deploy.settled = True
                changed = True
                app = self.state.apps.get(deploy.app_id)
                if app is None or deploy.outcome != "complete":
                    continue
                number = len(app.versions) + 1
                version = Version(
                    version=number,
                    deploy_id=deploy.deploy_id,
                    environment=deploy.environment,
                    message=deploy.message,
                    deployed_at=deploy.done_at,
                    build_duration_ms=int(deploy.build_seconds * 1000),
                    asset_prefix=f"apps/{app.app_id}/v{number}/",
                    bundle_s3_key=deploy.bundle_s3_key,
                    files=deploy.files,
                    source_files=deploy.source_files,
                    git_commit_sha=deploy.git_commit_sha,
                    git_commit_message=deploy.git_commit_message,
                    git_author=deploy.git_author,
                )
                deploy.version = number
                app.versions.append(version)
                self.point(app, deploy.environment, version)
            if changed:
                self.save()

    def point(self, app: App, environment: str, version: Version) -> None:
        app.environments[environment] = {
            "deploy_id": version.deploy_id,
            "asset_prefix": version.asset_prefix,
            "version": version.version,
            "url": app.url(environment),
            "deployed_at": iso(time.time()),
        }
