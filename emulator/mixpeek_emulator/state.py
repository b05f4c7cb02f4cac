"""The emulator's state: apps, deploys, versions, plugins and uploads, their rules, and how each
is shown on the wire.

Progress is a function of time: a deploy records when it was queued and how long each stage
lasts, so its status is computed on read and survives restarts. ``Store.settle`` applies what
finished (a new version, the environment repointed) exactly once. With a data dir, every change
is written to a temporary file, fsynced and renamed over ``state.json``, so a kill mid-write
leaves the previous state intact.

The ``*_json`` projections answer in the official SDKs' shape: every field their response
models require and nothing they do not define, unless an extension asks for more.
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
from typing import Any, Final

ENVIRONMENTS: Final = ("staging", "production")
# Off by default: richer answers than the official models define, named so users opt in.
EXTENSIONS: Final = frozenset({"environment-details", "version-deploy-ids"})
# Fields of CreateAppRequest the app keeps and shows back (the deprecated page fields too).
APP_SETTINGS: Final = (
    "auth_config",
    "build_config",
    "monitoring_config",
    "template",
    "sections",
    "custom_html",
    "hero",
    "theme",
    "seo",
    "stats",
    "featured_gallery",
    "tabs",
)


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


# ------------------------------------------------------------------------------------- apps


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

    def status_json(self, app: App, now: float) -> dict[str, Any]:
        """``DeployStatusResponse``."""
        status = self.status(now)
        body: dict[str, Any] = {
            "deploy_id": self.deploy_id,
            "status": status,
            "environment": self.environment,
            "source": self.source,
            "bundle_s3_key": self.bundle_s3_key,
            "message": self.message,
            "queued_at": iso(self.queued_at),
            "queued_by": "api_key",
            "error": self.reason if status == "failed" else None,
            "smoke_test": None,
        }
        if status == "complete":
            url = app.url(self.environment)
            body["smoke_test"] = {
                "passed": self.smoke_passed,
                "url": url,
                "errors": [] if self.smoke_passed else [f"GET {url}/ returned HTTP 500"],
                "duration_ms": 120,
                "tested_at": iso(self.done_at),
            }
        return body


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

    def to_json(
        self, app: App, *, detail: bool = False, extensions: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """``VersionRecord``, or with ``detail`` the ``VersionDetailResponse``."""
        body: dict[str, Any] = {
            "version": self.version,
            "s3_version_id": f"s3v_{self.deploy_id}",
            "asset_prefix": self.asset_prefix,
            "asset_manifest": {
                path: {"s3_key": f"{self.asset_prefix}{path}", **meta}
                for path, meta in self.files.items()
            },
            "deployed_by": "api_key",
            "deployed_at": iso(self.deployed_at),
            "environment": self.environment,
            "build_duration_ms": self.build_duration_ms,
            "message": self.message,
            "git_commit_sha": self.git_commit_sha,
            "git_commit_message": self.git_commit_message,
            "git_author": self.git_author,
        }
        if detail:
            body["source_files"] = self.source_files
            body["is_active"] = {env: app.serves(env, self.version) for env in ENVIRONMENTS}
        else:
            body["asset_manifest_url"] = f"s3://mixpeek-apps/{self.asset_prefix}manifest.json"
        if "version-deploy-ids" in extensions:
            body["deploy_id"] = self.deploy_id
        return body


@dataclass
class App:
    app_id: str
    slug: str
    title: str
    created_at: float
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: list[Version] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True

    def url(self, environment: str = "production") -> str:
        prefix = "" if environment == "production" else f"{environment}-"
        return f"https://{prefix}{self.slug}.mxp.co"

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.version == number), None)

    def serves(self, environment: str, number: int) -> bool:
        return self.environments.get(environment, {}).get("version") == number

    def point(self, environment: str, version: Version) -> None:
        self.environments[environment] = {
            "deploy_id": version.deploy_id,
            "asset_prefix": version.asset_prefix,
            "version": version.version,
            "deployed_at": iso(time.time()),
        }

    def environments_json(self, extensions: frozenset[str]) -> dict[str, Any]:
        """The documented entry keys, ``deploy_id`` and ``asset_prefix``; the
        ``environment-details`` extension adds the version, URL and time."""
        shown: dict[str, Any] = {}
        for env, entry in self.environments.items():
            item = {"deploy_id": entry["deploy_id"], "asset_prefix": entry["asset_prefix"]}
            if "environment-details" in extensions:
                item.update(
                    version=entry["version"], url=self.url(env), deployed_at=entry["deployed_at"]
                )
            shown[env] = item
        return shown

    def to_json(
        self, *, full: bool = True, extensions: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """``AppResponse``, or without ``full`` the ``AppListItem``."""
        settings = self.settings
        body: dict[str, Any] = {
            "app_id": self.app_id,
            "slug": self.slug,
            "url": self.url(),
            "meta": {"title": self.title, **self.meta},
            "is_active": self.is_active,
            "version": len(self.versions),
            "has_unpublished_changes": False,
            "template": settings.get("template") or "generic",
            "custom_domains": [],
            "auth_config": _masked_auth(settings.get("auth_config")),
            "build_config": _masked_build(settings.get("build_config")),
            "monitoring_config": settings.get("monitoring_config"),
            "repo_url": None,
            "repo_branch": None,
            "environments": self.environments_json(extensions),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.versions[-1].deployed_at) if self.versions else None,
        }
        if full:
            body.update(
                versions=[v.to_json(self, extensions=extensions) for v in reversed(self.versions)],
                sections=settings.get("sections") or [],
                custom_html=settings.get("custom_html"),
                hero=settings.get("hero"),
                theme=settings.get("theme") or {},
                seo=settings.get("seo"),
                stats=settings.get("stats") or [],
                featured_gallery=settings.get("featured_gallery"),
                tabs=settings.get("tabs") or [],
                password_protected=(settings.get("auth_config") or {}).get("mode") == "password",
            )
        return body


def _masked_auth(config: Any) -> Any:
    # A password is write-only in the official AuthConfig.
    if not isinstance(config, dict):
        return config
    return {k: v for k, v in config.items() if k != "password"}


def _masked_build(config: Any) -> Any:
    # Build secrets are server-only: shown as *** (documented).
    if not isinstance(config, dict) or not isinstance(config.get("secrets"), dict):
        return config
    return {**config, "secrets": dict.fromkeys(config["secrets"], "***")}


# ---------------------------------------------------------------------------------- plugins


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

    @property
    def realtime(self) -> bool:
        return self.deployment_type == "realtime" and not self.undeployed

    def status(self, now: float) -> str:
        """QUEUED, PENDING, IN_PROGRESS, then the outcome; a batch-only or undeployed plugin
        is NOT_DEPLOYED (it has no realtime endpoint)."""
        if self.undeployed or self.deploy_requested_at is None or not self.realtime:
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

    def deployed(self, now: float) -> bool:
        """Serving realtime, or available for batch processing."""
        status = self.status(now)
        return status == "DEPLOYED" or (
            self.deployment_type == "batch_only" and not self.undeployed
        )

    def deployed_at(self) -> float | None:
        if self.deploy_requested_at is None or self.undeployed:
            return None
        wait = 0 if self.deployment_type == "batch_only" else self.deploy_seconds
        return self.deploy_requested_at + wait

    def request_deploy(self, kind: str, seconds: float, failure: str | None) -> None:
        self.deploy_requested_at = time.time()
        self.deployment_type = kind
        self.undeployed = False
        self.deploy_seconds = seconds
        self.deploy_outcome = "FAILED" if failure else "DEPLOYED"
        self.deploy_error = failure

    def status_json(self, now: float) -> dict[str, Any]:
        """``PluginStatusResponse``."""
        status = self.status(now)
        requested = self.deploy_requested_at if not self.undeployed else None
        pending = status in ("QUEUED", "PENDING", "IN_PROGRESS")
        done_at = self.deployed_at()
        return {
            "plugin_id": self.plugin_id,
            "namespace_id": self.namespace_id,
            "status": status,
            "name": self.name,
            "version": self.version,
            "realtime_enabled": self.realtime and status == "DEPLOYED",
            "message": _plugin_message(status, self),
            "queued_at": iso(requested) if requested else None,
            "estimated_completion_seconds": (
                max(0, int(self.deploy_seconds - (now - requested)))
                if requested and pending
                else None
            ),
            "deployed": self.deployed(now),
            "route_prefix": self.route_prefix if self.realtime and status != "FAILED" else None,
            "feature_uri": self.feature_uri,
            "deployed_at": (
                iso(done_at) if done_at and status in ("DEPLOYED", "NOT_DEPLOYED") else None
            ),
            "error": self.deploy_error if status == "FAILED" else None,
        }

    def document(self, now: float) -> dict[str, Any]:
        """``PluginDocument``."""
        deployed = self.deployed(now)
        done_at = self.deployed_at()
        when = iso(done_at) if deployed and done_at else None
        return {
            "plugin_id": self.plugin_id,
            "namespace_id": self.namespace_id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "s3_archive_url": f"s3://mixpeek-plugins/{self.s3_key}",
            "code_hash": self.code_hash,
            "validation_status": "passed",
            "validation_errors": [],
            "security_scan_passed": True,
            "deployed": deployed,
            "deployment_info": {"feature_uri": self.feature_uri, "deployed_at": when}
            if deployed
            else None,
            "deployed_at": when,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
        }

    def list_item(self, now: float) -> dict[str, Any]:
        """``PluginListItem``."""
        return {
            "plugin_id": self.plugin_id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "deployed": self.deployed(now),
            "validation_status": "passed",
            "feature_uri": self.feature_uri,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
        }


def _plugin_message(status: str, p: Plugin) -> str:
    return {
        "QUEUED": "Plugin is queued for deployment. Deployment will start within 30 seconds.",
        "PENDING": "Deployment triggered, waiting for the cluster to start",
        "IN_PROGRESS": "Rolling update in progress",
        "DEPLOYED": f"Plugin {p.plugin_id} is deployed and serving",
        "FAILED": f"Deployment failed: {p.deploy_error}",
        "NOT_DEPLOYED": "Plugin is not deployed for realtime inference",
    }.get(status, status)


# ------------------------------------------------------------------------------------ store


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

    def plugins_of(self, namespace_id: str) -> dict[str, Plugin]:
        return self.state.plugins.setdefault(namespace_id, {})

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
        with self.lock:
            finished = sorted(
                (d for d in self.state.deploys.values() if not d.settled and now >= d.done_at),
                key=lambda d: d.done_at,
            )
            for deploy in finished:
                deploy.settled = True
                app = self.state.apps.get(deploy.app_id)
                if app is not None and deploy.outcome == "complete":
                    self._publish(app, deploy)
            if finished:
                self.save()

    def _publish(self, app: App, deploy: Deploy) -> None:
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
        app.point(deploy.environment, version)
