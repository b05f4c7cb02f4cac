"""The Plugin domain: uploads and plugins, the rules of a plugin's deployment over time, and
each record's JSON in the official SDKs' shape: every field their response models require
and nothing they do not define.

A rollout's progress is read on the store's progress clock (``Store.now``), its reported
times on the wall clock, as for app deploys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .common import iso

StatusCase = Literal["lower", "upper"]
STATUS_CASES: Final[tuple[StatusCase, ...]] = ("lower", "upper")


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
    # Whether the archive has realtime.py; without it a plugin deploys batch-only. Records of
    # an earlier release lack the field and were deployed as asked.
    has_realtime: bool = True
    # When the deploy was asked for on the progress clock; records of an earlier release have
    # none until the store reads them (it derives one from ``deploy_requested_at``).
    requested_progress: float | None = None

    @property
    def s3_archive_url(self) -> str:
        return f"s3://mixpeek-plugins/{self.s3_key}"

    @property
    def feature_uri(self) -> str:
        return f"mixpeek://{self.name}@{self.version}"

    @property
    def route_prefix(self) -> str:
        return f"/inference/custom_plugin_{self.plugin_id}"

    @property
    def realtime(self) -> bool:
        return self.deployment_type == "realtime" and not self.undeployed

    def _elapsed(self, now: float) -> float:
        assert self.requested_progress is not None, "a deploy request always sets it"
        return now - self.requested_progress

    def status(self, now: float) -> str:
        """QUEUED, PENDING, IN_PROGRESS, then the outcome, at ``now`` on the progress clock; a
        batch-only or undeployed plugin is NOT_DEPLOYED (it has no realtime endpoint)."""
        if self.undeployed or self.deploy_requested_at is None or not self.realtime:
            return "NOT_DEPLOYED"
        elapsed = self._elapsed(now)
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
        """When its rollout ends, as reported (wall clock)."""
        if self.deploy_requested_at is None or self.undeployed:
            return None
        wait = 0 if self.deployment_type == "batch_only" else self.deploy_seconds
        return self.deploy_requested_at + wait

    def request_deploy(
        self, kind: str, seconds: float, failure: str | None, *, at: float, progress: float
    ) -> None:
        """A rollout asked for at ``at`` (wall clock), ``progress`` on the progress clock."""
        self.deploy_requested_at = at
        self.requested_progress = progress
        self.deployment_type = kind
        self.undeployed = False
        self.deploy_seconds = seconds
        self.deploy_outcome = "FAILED" if failure else "DEPLOYED"
        self.deploy_error = failure

    def registered(self) -> dict[str, Any]:
        """``PluginUploadResponse``, what a validated upload answers (a confirm adds its upload
        id and a message): validated, its deployment pending a deploy call."""
        return {
            "success": True,
            "plugin_id": self.plugin_id,
            "validation_status": "passed",
            "validation_errors": [],
            "deployment_status": "pending",
            "feature_uri": self.feature_uri,
            "s3_archive_url": self.s3_archive_url,
        }

    def status_json(self, now: float, case: StatusCase = "lower") -> dict[str, Any]:
        """``PluginStatusResponse``, its status spelled as the wire examples spell it (lower
        case), or as the model's description does (upper case)."""
        status = self.status(now)
        requested = self.deploy_requested_at if not self.undeployed else None
        pending = status in ("QUEUED", "PENDING", "IN_PROGRESS")
        done_at = self.deployed_at()
        return {
            "plugin_id": self.plugin_id,
            "namespace_id": self.namespace_id,
            "status": status.lower() if case == "lower" else status,
            "name": self.name,
            "version": self.version,
            "realtime_enabled": self.realtime and status == "DEPLOYED",
            "message": _plugin_message(status, self),
            "queued_at": iso(requested) if requested else None,
            "estimated_completion_seconds": (
                max(0, int(self.deploy_seconds - self._elapsed(now))) if pending else None
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
            "s3_archive_url": self.s3_archive_url,
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
