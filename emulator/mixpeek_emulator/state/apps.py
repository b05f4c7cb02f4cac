"""The App domain: apps, their deploys and versions, the rules that move a deploy through its
stages and publish what finished, and each record's JSON in the official SDKs' shape: every
field their response models require and nothing they do not define, unless an extension asks
for more.

Progress is a function of time: a deploy records when it was queued and how long each stage
lasts, so its status is computed on read and survives restarts. That time is the store's
progress clock (``Store.now``), which only moves forward; the wall clock gives only the
timestamps a deploy reports, so a step of the machine's clock neither holds a build back nor
undoes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from .common import iso
from .domains import Domain

ENVIRONMENTS: Final = ("staging", "production")
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
    # The build's own copy of the bundle (a later PUT to the upload URL cannot change it);
    # records of an earlier release have none and read the upload's key.
    archive_key: str | None = None
    # When it was queued on the progress clock; records of an earlier release have none until
    # the store reads them (it derives one from ``queued_at``).
    queued_progress: float | None = None

    @property
    def done_at(self) -> float:
        """When it ends, as reported: on the wall clock, from when it was queued."""
        return self.queued_at + self.queue_seconds + self.build_seconds

    @property
    def ends(self) -> float:
        """When it ends on the progress clock."""
        return self._queued() + self.queue_seconds + self.build_seconds

    def _queued(self) -> float:
        assert self.queued_progress is not None, "the store gives every deploy it reads one"
        return self.queued_progress

    def status(self, now: float) -> str:
        """Its status at ``now`` on the progress clock."""
        if now < self._queued() + self.queue_seconds:
            return "queued"
        if now < self.ends:
            return "building"
        return self.outcome

    def log_schedule(self) -> list[tuple[float, str]]:
        """Every log line with when it is emitted, in seconds after the deploy was queued:
        the build's story."""
        start = self.queue_seconds
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
                (start + b, "Deploy complete!"),
            ]
        else:
            lines.append((start + b, f"Deploy failed: {self.reason}"))
        return lines

    def status_json(self, app: App, now: float) -> dict[str, Any]:
        """``DeployStatusResponse`` at ``now`` on the progress clock."""
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
    archive_key: str | None = None  # the build's copy; earlier releases kept none

    @property
    def archive(self) -> str | None:
        """Where the bytes this version serves are kept."""
        return self.archive_key or self.bundle_s3_key

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
    unpublished: bool = False
    domains: list[Domain] = field(default_factory=list)  # earlier releases kept none

    @property
    def template(self) -> str:
        return str(self.settings.get("template") or "generic")

    def update(self, fields: dict[str, Any], *, publish: bool) -> None:
        """``UpdateAppRequest``: each given field replaces the app's whole, but for the
        ``asset_prefix`` promotion wrote into ``build_config``, which is the service's: it stays
        unless a string is sent for it. Null leaves ``slug``, ``meta`` and ``is_active``, which
        cannot be empty, and clears any other. A change is kept as unpublished
        (``has_unpublished_changes``) until a request with ``publish`` applies it."""
        if "slug" in fields and fields["slug"] is not None:
            self.slug = fields["slug"]
        if fields.get("meta") is not None:
            meta = dict(fields["meta"])
            self.title = meta.pop("title")
            self.meta = {k: v for k, v in meta.items() if v is not None}
        if fields.get("is_active") is not None:
            self.is_active = bool(fields["is_active"])
        if "build_config" in fields:
            fields = {**fields, "build_config": self._keeping_asset_prefix(fields["build_config"])}
        self.settings.update({k: fields[k] for k in APP_SETTINGS if k in fields})
        self.settings = {k: v for k, v in self.settings.items() if v is not None}
        if publish:
            self.unpublished = False
        elif fields:
            self.unpublished = True

    def _keeping_asset_prefix(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        kept = (self.settings.get("build_config") or {}).get("asset_prefix")
        if kept is None or (config is not None and config.get("asset_prefix") is not None):
            return config
        return {**(config or {}), "asset_prefix": kept}

    def domain(self, name: str) -> Domain | None:
        return next((d for d in self.domains if d.domain == name), None)

    def url(self, environment: str = "production") -> str:
        prefix = "" if environment == "production" else f"{environment}-"
        return f"https://{prefix}{self.slug}.mxp.co"

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.version == number), None)

    def serves(self, environment: str, number: int) -> bool:
        return self.environments.get(environment, {}).get("version") == number

    def point(self, environment: str, version: Version, at: float) -> None:
        """Serve ``version`` in ``environment`` from ``at`` (wall clock) on."""
        self.environments[environment] = {
            "deploy_id": version.deploy_id,
            "asset_prefix": version.asset_prefix,
            "version": version.version,
            "deployed_at": iso(at),
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
        self, now: float, *, full: bool = True, extensions: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """``AppResponse`` at ``now`` on the progress clock (its domains' statuses), or without
        ``full`` the ``AppListItem``."""
        settings = self.settings
        body: dict[str, Any] = {
            "app_id": self.app_id,
            "slug": self.slug,
            "url": self.url(),
            "meta": {"title": self.title, **self.meta},
            "is_active": self.is_active,
            "version": len(self.versions),
            "has_unpublished_changes": self.unpublished,
            "template": self.template,
            "custom_domains": [d.config_json(self.slug, now) for d in self.domains],
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
    # AuthConfigInput: the password is write-only and its hash "never exposed in API responses".
    if not isinstance(config, dict):
        return config
    return {k: v for k, v in config.items() if k not in ("password", "password_hash")}


def _masked_build(config: Any) -> Any:
    # Build secrets are server-only: shown as *** (documented).
    if not isinstance(config, dict) or not isinstance(config.get("secrets"), dict):
        return config
    return {**config, "secrets": dict.fromkeys(config["secrets"], "***")}


def publish(app: App, deploy: Deploy, at: float) -> None:
    """A deploy that finished well becomes the app's next version, served in its environment
    from ``at`` (wall clock) on."""
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
        archive_key=deploy.archive_key,
    )
    deploy.version = number
    app.versions.append(version)
    app.point(deploy.environment, version, at)
