"""The emulated Mixpeek API: App deploys and namespace Plugins, with the documented bodies.

Written from the public API documents, independently of the ``mixpeek_pulumi`` client, so the
two can disagree when the client is wrong. Request bodies refuse undeclared keys (422
``extra_forbidden``, as the real API does since 2026-11-02); errors use ``ErrorResponse``.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import hmac
import json
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .bundles import inspect_app_bundle, inspect_plugin_archive
from .faults import FaultMiddleware, FaultRule, Faults, NextOutcomes
from .state import (
    App,
    Deploy,
    Plugin,
    PluginUpload,
    Store,
    Timing,
    iso,
    new_id,
)
from .storage import ObjectStore, StorageRefusal

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
PLUGIN_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{2,63}$")
PLUGIN_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class ApiFailure(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.details = details


def error_body(
    status: int, type_: str, message: str, code: str | None = None, details: Any = None
) -> dict[str, Any]:
    return {
        "success": False,
        "status": status,
        "error": {"message": message, "type": type_, "code": code, "details": details},
    }


def not_found(resource: str, id_: str) -> ApiFailure:
    return ApiFailure(
        404,
        "NotFoundError",
        f"{resource.capitalize()} {id_} not found",
        details={"id": id_, "resource": resource},
    )


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageMeta(Body):
    title: str
    description: str | None = None
    logo_url: str | None = None
    favicon_url: str | None = None
    indexable: bool | None = None


class CreateAppBody(Body):
    slug: str
    meta: PageMeta
    is_active: bool = True


class UploadUrlBody(Body):
    filename: str
    content_type: str = "application/zip"


class VerifyUploadBody(Body):
    bundle_s3_key: str


class DeployBody(Body):
    message: str
    environment: Literal["staging", "production"] = "production"
    source: Literal["cli_upload", "git"] = "cli_upload"
    bundle_s3_key: str | None = None
    source_files: dict[str, str] | None = None
    git_commit_sha: str | None = None
    git_commit_message: str | None = None
    git_author: str | None = None


class RestoreBody(Body):
    environment: Literal["staging", "production"] = "production"


class PluginUploadBody(Body):
    name: str
    version: str
    description: str | None = Field(default=None, max_length=500)
    file_size_bytes: int | None = Field(default=None, gt=0, le=524288000)
    presigned_url_expiration: int = Field(default=3600, ge=60, le=86400)


class ConfirmBody(Body):
    etag: str | None = None
    file_size_bytes: int | None = None


class TimingBody(Body):
    queue_seconds: float | None = None
    build_seconds: float | None = None
    plugin_seconds: float | None = None


@dataclass
class Emulator:
    """The ASGI app and the state behind it; ``asgi`` is what a server runs."""

    api: FastAPI
    asgi: FaultMiddleware
    store: Store
    objects: ObjectStore
    faults: Faults
    timing: Timing
    scratch: Path | None

    def set_public_url(self, url: str) -> None:
        """Where presigned storage URLs point; known only once the server has its port."""
        self.objects.public_url = url.rstrip("/")

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def create_app(
    *,
    api_key: str,
    data_dir: Path | None = None,
    timing: Timing | None = None,
    public_url: str = "http://127.0.0.1",
    apps: tuple[str, ...] = (),
) -> Emulator:
    """Build the emulator; ``apps`` are slugs of apps that exist from the start."""
    timing = timing or Timing()
    scratch = None
    if data_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="mixpeek-emulator-"))
    root = data_dir or scratch
    assert root is not None
    store = Store(data_dir, timing)
    objects = ObjectStore(root / "objects", public_url)
    faults = Faults()

    api = FastAPI(title="mixpeek-emulator", version="0.82", docs_url=None, redoc_url=None)
    api.state.store = store
    api.state.objects = objects
    api.state.faults = faults
    api.state.scratch = scratch

    @api.exception_handler(ApiFailure)
    async def _api_failure(_request: Request, exc: ApiFailure) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.type, exc.message, exc.code, exc.details),
            status_code=exc.status,
        )

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                "type": e.get("type"),
                "location": ".".join(str(p) for p in e.get("loc", ())),
                "message": e.get("msg"),
            }
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body(
                422,
                "ValidationError",
                "Request validation failed",
                "validation_error",
                {"validation_errors": items},
            ),
            status_code=422,
        )

    def authorize(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {api_key}"
        if authorization is None or not _same(authorization, expected):
            raise ApiFailure(401, "UnauthorizedError", "Missing or invalid API key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])

    def app_or_404(app_id: str) -> App:
        store.settle()
        app = store.state.apps.get(app_id)
        if app is None:
            raise not_found("app", app_id)
        return app

    def version_or_404(app: App, number: int) -> Any:
        for v in app.versions:
            if v.version == number:
                return v
        raise not_found("version", f"{app.app_id}/v{number}")

    def app_json(app: App, *, full: bool = True) -> dict[str, Any]:
        envs = {env: dict(info) for env, info in app.environments.items()}
        body: dict[str, Any] = {
            "app_id": app.app_id,
            "slug": app.slug,
            "url": app.url(),
            "meta": {"title": app.title},
            "is_active": True,
            "version": len(app.versions),
            "environments": envs,
            "custom_domains": [],
            "auth_config": None,
            "build_config": None,
            "created_at": iso(app.created_at),
            "updated_at": iso(app.versions[-1].deployed_at) if app.versions else None,
        }
        if full:
            body["versions"] = [version_json(app, v) for v in reversed(app.versions)]
        return body

    def version_json(app: App, v: Any, *, detail: bool = False) -> dict[str, Any]:
        active = {
            env: app.environments.get(env, {}).get("version") == v.version
            for env in ("staging", "production")
        }
        body = {
            "version": v.version,
            "deploy_id": v.deploy_id,
            "s3_version_id": f"s3v_{v.deploy_id}",
            "asset_prefix": v.asset_prefix,
            "deployed_by": "api_key",
            "deployed_at": iso(v.deployed_at),
            "environment": v.environment,
            "build_duration_ms": v.build_duration_ms,
            "message": v.message,
            "git_commit_sha": v.git_commit_sha,
            "git_commit_message": v.git_commit_message,
            "git_author": v.git_author,
            "is_active": active,
            "asset_manifest": {
                path: {"s3_key": f"{v.asset_prefix}{path}", **meta}
                for path, meta in v.files.items()
            },
        }
        if detail:
            body["source_files"] = v.source_files
        return body

    # ------------------------------------------------------------------------------ apps

    @v1.post("/apps")
    def create_app_route(body: CreateAppBody) -> dict[str, Any]:
        if not (3 <= len(body.slug) <= 60) or not SLUG.match(body.slug):
            raise ApiFailure(
                422,
                "ValidationError",
                "slug must be 3-60 characters of a-z, 0-9 and '-', starting and ending with a letter or digit",
                details={
                    "validation_errors": [
                        {"type": "value_error", "location": "body.slug", "message": "invalid slug"}
                    ]
                },
            )
        with store.lock:
            if any(a.slug == body.slug for a in store.state.apps.values()):
                raise ApiFailure(
                    409, "AlreadyExistsError", f"Slug {body.slug} is taken", code="slug_taken"
                )
            app = App(
                app_id=new_id("app"), slug=body.slug, title=body.meta.title, created_at=time.time()
            )
            store.state.apps[app.app_id] = app
            store.save()
            return app_json(app)

    @v1.get("/apps")
    def list_apps(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
        slug: str | None = None,
        search: str | None = None,
    ) -> dict[str, Any]:
        store.settle()
        with store.lock:
            apps = list(store.state.apps.values())
        if slug:
            apps = [a for a in apps if a.slug == slug]
        if search:
            apps = [a for a in apps if search.lower() in a.title.lower()]
        page = apps[offset : offset + limit]
        return {
            "results": [app_json(a, full=False) for a in page],
            "total_count": len(apps),
            "limit": limit,
            "offset": offset,
            "max_apps": None,
        }

    @v1.get("/apps/{app_id}")
    def get_app(app_id: str) -> dict[str, Any]:
        with store.lock:
            return app_json(app_or_404(app_id))

    @v1.post("/apps/{app_id}/deploy/upload-url")
    def upload_url(app_id: str, body: UploadUrlBody) -> dict[str, Any]:
        app_or_404(app_id)
        key = f"app-builds/{app_id}/{new_id('up')}/{Path(body.filename).name or 'bundle.zip'}"
        expires_in = 3600
        if faults.take("expire_urls"):
            expires_in = -5  # a URL that is already stale when the client uses it
        url = objects.presign("PUT", key, expires_in=expires_in, content_type=body.content_type)
        return {"upload_url": url, "bundle_s3_key": key, "expires_in": 3600}

    @v1.post("/apps/{app_id}/deploy/verify-upload")
    def verify_upload(app_id: str, body: VerifyUploadBody) -> dict[str, Any]:
        app_or_404(app_id)
        key = body.bundle_s3_key
        if not objects.exists(key):
            return {"bundle_s3_key": key, "exists": False}
        path = objects.path(key)
        return {
            "bundle_s3_key": key,
            "exists": True,
            "etag": f'"{objects.md5(key)}"',
            "size_bytes": path.stat().st_size,
            "last_modified": iso(path.stat().st_mtime),
        }

    @v1.post("/apps/{app_id}/deploy")
    def deploy(app_id: str, body: DeployBody) -> dict[str, Any]:
        app = app_or_404(app_id)
        if body.source == "git":
            raise ApiFailure(
                400,
                "BadRequestError",
                "Git deploys are not available yet (source='git' is Phase 3b)",
            )
        if not body.bundle_s3_key:
            raise ApiFailure(
                400, "BadRequestError", "bundle_s3_key is required for source='cli_upload'"
            )
        if not body.message.strip():
            raise ApiFailure(400, "BadRequestError", "A deploy message is required")
        inspected = (
            inspect_app_bundle(objects.path(body.bundle_s3_key))
            if objects.exists(body.bundle_s3_key)
            else inspect_app_bundle(Path("/nonexistent"))
        )
        forced = faults.take("deploy_fail")
        outcome = "complete" if inspected.ok and not forced else "failed"
        reason = forced or (None if inspected.ok else inspected.reason)
        smoke_passed = not faults.take("smoke_fail")
        with store.lock:
            d = Deploy(
                deploy_id=new_id("dep"),
                app_id=app.app_id,
                environment=body.environment,
                message=body.message,
                bundle_s3_key=body.bundle_s3_key,
                queued_at=time.time(),
                queue_seconds=timing.queue_seconds,
                build_seconds=timing.build_seconds,
                outcome=outcome,
                reason=reason,
                smoke_passed=smoke_passed,
                git_commit_sha=body.git_commit_sha,
                git_commit_message=body.git_commit_message,
                git_author=body.git_author,
                source_files=body.source_files,
                files=inspected.files,
                file_count=len(inspected.files),
            )
            store.state.deploys[d.deploy_id] = d
            store.save()
        return {
            "app_id": app.app_id,
            "deploy_id": d.deploy_id,
            "status": "queued",
            "environment": d.environment,
            "message": d.message,
        }

    def deploy_or_404(app_id: str, deploy_id: str) -> tuple[App, Deploy]:
        app = app_or_404(app_id)
        d = store.state.deploys.get(deploy_id)
        if d is None or d.app_id != app_id:
            raise not_found("deploy", deploy_id)
        return app, d

    @v1.get("/apps/{app_id}/deploys/{deploy_id}")
    def deploy_status(app_id: str, deploy_id: str) -> dict[str, Any]:
        app, d = deploy_or_404(app_id, deploy_id)
        now = time.time()
        status = d.status(now)
        flap = faults.take("status_flap")
        body: dict[str, Any] = {
            "deploy_id": d.deploy_id,
            "status": flap or status,
            "environment": d.environment,
            "source": d.source,
            "bundle_s3_key": d.bundle_s3_key,
            "message": d.message,
            "queued_at": iso(d.queued_at),
            "queued_by": "api_key",
            "error": d.reason if status == "failed" else None,
            "smoke_test": None,
        }
        if status == "complete":
            body["smoke_test"] = {
                "passed": d.smoke_passed,
                "url": app.url(d.environment),
                "errors": []
                if d.smoke_passed
                else [f"GET {app.url(d.environment)}/ returned HTTP 500"],
                "duration_ms": 120,
                "tested_at": iso(d.done_at),
            }
        return body

    @v1.get("/apps/{app_id}/deploys/{deploy_id}/logs/stream")
    def deploy_logs(app_id: str, deploy_id: str) -> StreamingResponse:
        _, d = deploy_or_404(app_id, deploy_id)
        cut_after = faults.take("sse_cut")
        never_done = bool(faults.take("sse_never_done"))

        async def events() -> AsyncIterator[bytes]:
            for sent, (at, line) in enumerate(d.log_schedule()):
                delay = at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if cut_after is not None and sent >= cut_after:
                    return
                yield f"data: {json.dumps({'ts': at, 'line': line})}\n\n".encode()
            store.settle()
            if never_done:
                while True:  # holds the stream open, as a stuck pub/sub would
                    await asyncio.sleep(1)
                    yield b": keep-alive\n\n"
            yield b"event: done\ndata: {}\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @v1.get("/apps/{app_id}/versions")
    def list_versions(app_id: str) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            return {
                "versions": [version_json(app, v) for v in reversed(app.versions)],
                "total": len(app.versions),
            }

    @v1.get("/apps/{app_id}/versions/{version}")
    def get_version(app_id: str, version: int) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            return version_json(app, version_or_404(app, version), detail=True)

    @v1.get("/apps/{app_id}/versions/{version}/download")
    def download_version(app_id: str, version: int) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            v = version_or_404(app, version)
        url = objects.presign("GET", v.bundle_s3_key or "", expires_in=3600)
        return {
            "download_url": url,
            "version": v.version,
            "asset_prefix": v.asset_prefix,
            "expires_in": 3600,
        }

    @v1.get("/apps/{app_id}/versions/{from_version}/diff/{to_version}")
    def diff_versions(app_id: str, from_version: int, to_version: int) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            old = version_or_404(app, from_version)
            new = version_or_404(app, to_version)
        files = []
        summary = {"added": 0, "removed": 0, "modified": 0, "unchanged": 0}
        for path in sorted(set(old.files) | set(new.files)):
            a, b = old.files.get(path), new.files.get(path)
            if a is None:
                status = "added"
            elif b is None:
                status = "removed"
            elif a["hash"] != b["hash"]:
                status = "modified"
            else:
                status = "unchanged"
            summary[status] += 1
            old_size = a["size"] if a else None
            new_size = b["size"] if b else None
            files.append(
                {
                    "path": path,
                    "status": status,
                    "old_hash": a["hash"] if a else None,
                    "new_hash": b["hash"] if b else None,
                    "old_size": old_size,
                    "new_size": new_size,
                    "size_delta": (new_size or 0) - (old_size or 0),
                }
            )
        source_diff = None
        if old.source_files is not None and new.source_files is not None:
            source_diff = {}
            for path in sorted(set(old.source_files) | set(new.source_files)):
                before = old.source_files.get(path, "").splitlines(keepends=True)
                after = new.source_files.get(path, "").splitlines(keepends=True)
                if before != after:
                    source_diff[path] = "".join(
                        difflib.unified_diff(before, after, f"a/{path}", f"b/{path}")
                    )
        return {
            "app_id": app_id,
            "from_version": from_version,
            "to_version": to_version,
            "files": files,
            "summary": summary,
            "source_diff": source_diff,
        }

    @v1.post("/apps/{app_id}/versions/{version}/restore")
    def restore_version(app_id: str, version: int, body: RestoreBody) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            v = version_or_404(app, version)
            store.point(app, body.environment, v)
            store.save()
        return {
            "app_id": app_id,
            "version": v.version,
            "deploy_id": v.deploy_id,
            "environment": body.environment,
            "asset_prefix": v.asset_prefix,
        }

    @v1.post("/apps/{app_id}/promote")
    def promote(app_id: str) -> dict[str, Any]:
        with store.lock:
            app = app_or_404(app_id)
            staging = app.environments.get("staging")
            if not staging:
                raise ApiFailure(
                    400,
                    "BadRequestError",
                    f"App {app_id} has nothing deployed to staging to promote",
                )
            app.environments["production"] = {
                **staging,
                "url": app.url("production"),
                "deployed_at": iso(time.time()),
            }
            store.save()
        return {
            "app_id": app_id,
            "version": staging.get("version"),
            "deploy_id": staging["deploy_id"],
            "environment": "production",
            "asset_prefix": staging["asset_prefix"],
        }

    # --------------------------------------------------------------------------- plugins

    def plugins_of(namespace_id: str) -> dict[str, Plugin]:
        return store.state.plugins.setdefault(namespace_id, {})

    def plugin_or_404(namespace_id: str, plugin_id: str) -> Plugin:
        plugin = plugins_of(namespace_id).get(plugin_id)
        if plugin is None:
            raise not_found("plugin", plugin_id)
        return plugin

    def plugin_status_json(p: Plugin) -> dict[str, Any]:
        now = time.time()
        status = p.status(now)
        realtime = p.deployment_type == "realtime" and not p.undeployed
        deployed_at = p.deployed_at()
        return {
            "plugin_id": p.plugin_id,
            "namespace_id": p.namespace_id,
            "status": status,
            "name": p.name,
            "version": p.version,
            "realtime_enabled": realtime and status == "DEPLOYED",
            "message": _plugin_message(status, p),
            "queued_at": iso(p.deploy_requested_at)
            if p.deploy_requested_at and not p.undeployed
            else None,
            "estimated_completion_seconds": max(
                0, int(p.deploy_seconds - (now - p.deploy_requested_at))
            )
            if p.deploy_requested_at and status in ("QUEUED", "PENDING", "IN_PROGRESS")
            else None,
            "deployed": status == "DEPLOYED"
            or (p.deployment_type == "batch_only" and not p.undeployed),
            "route_prefix": p.route_prefix if realtime and status != "FAILED" else None,
            "feature_uri": p.feature_uri,
            "deployed_at": iso(deployed_at)
            if deployed_at and status in ("DEPLOYED", "NOT_DEPLOYED")
            else None,
            "error": p.deploy_error if status == "FAILED" else None,
        }

    def plugin_document(p: Plugin) -> dict[str, Any]:
        status = plugin_status_json(p)
        return {
            "plugin_id": p.plugin_id,
            "name": p.name,
            "version": p.version,
            "description": p.description,
            "namespace_id": p.namespace_id,
            "s3_archive_url": f"s3://mixpeek-plugins/{p.s3_key}",
            "code_hash": p.code_hash,
            "validation_status": "passed",
            "validation_errors": [],
            "security_scan_passed": True,
            "deployed": status["deployed"],
            "deployment_info": {"feature_uri": p.feature_uri, "deployed_at": status["deployed_at"]}
            if status["deployed"]
            else None,
            "deployed_at": status["deployed_at"],
            "created_at": iso(p.created_at),
            "updated_at": iso(p.created_at),
        }

    @v1.post("/namespaces/{namespace_id}/plugins/uploads")
    def plugin_upload(namespace_id: str, body: PluginUploadBody) -> dict[str, Any]:
        problems = []
        if not PLUGIN_NAME.match(body.name):
            problems.append(
                {
                    "type": "string_pattern_mismatch",
                    "location": "body.name",
                    "message": "name must start with a letter and have 3-64 letters, digits or underscores",
                }
            )
        if not PLUGIN_VERSION.match(body.version):
            problems.append(
                {
                    "type": "string_pattern_mismatch",
                    "location": "body.version",
                    "message": "version must be X.Y.Z",
                }
            )
        if problems:
            raise ApiFailure(
                422,
                "ValidationError",
                "Request validation failed",
                code="validation_error",
                details={"validation_errors": problems},
            )
        plugin_id = f"{body.name}_{body.version.replace('.', '_')}"
        with store.lock:
            if plugin_id in plugins_of(namespace_id):
                raise ApiFailure(
                    409,
                    "AlreadyExistsError",
                    f"Plugin {body.name} version {body.version} already exists in namespace {namespace_id}",
                    code="plugin_exists",
                    details={"plugin_id": plugin_id, "resource": "plugin"},
                )
            upload = PluginUpload(
                upload_id=new_id("plu"),
                namespace_id=namespace_id,
                name=body.name,
                version=body.version,
                description=body.description,
                s3_key=f"{namespace_id}/plugins/{plugin_id}/{plugin_id}.zip",
                expires_at=time.time() + body.presigned_url_expiration,
            )
            store.state.uploads[upload.upload_id] = upload
            store.save()
        expires_in = body.presigned_url_expiration
        if faults.take("expire_urls"):
            expires_in = -5
        url = objects.presign(
            "PUT", upload.s3_key, expires_in=expires_in, content_type="application/zip"
        )
        return {
            "upload_id": upload.upload_id,
            "presigned_url": url,
            "s3_key": upload.s3_key,
            "expires_at": iso(upload.expires_at),
            "namespace_id": namespace_id,
            "name": upload.name,
            "version": upload.version,
        }

    @v1.post("/namespaces/{namespace_id}/plugins/uploads/{upload_id}/confirm")
    async def plugin_confirm(namespace_id: str, upload_id: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = (
            ConfirmBody.model_validate_json(raw)
            if raw.strip() not in (b"", b"null")
            else ConfirmBody()
        )
        with store.lock:
            upload = store.state.uploads.get(upload_id)
            if upload is None or upload.namespace_id != namespace_id:
                raise not_found("upload", upload_id)
            if upload.confirmed:
                raise ApiFailure(
                    400, "BadRequestError", f"Upload {upload_id} was already confirmed"
                )
            if time.time() > upload.expires_at:
                raise ApiFailure(
                    400, "BadRequestError", f"Upload {upload_id} has expired; start a new upload"
                )
        if not objects.exists(upload.s3_key):
            raise ApiFailure(
                404,
                "NotFoundError",
                f"No archive was uploaded for upload {upload_id}",
                details={"id": upload_id, "resource": "upload"},
            )
        if body.etag and body.etag.strip('"') != objects.md5(upload.s3_key):
            raise ApiFailure(
                400,
                "BadRequestError",
                f"The etag does not match the archive uploaded for {upload_id}",
            )
        inspected = inspect_plugin_archive(objects.path(upload.s3_key))
        if not inspected.ok:
            errors = inspected.errors + [v.text() for v in inspected.violations]
            raise ApiFailure(
                400,
                "ValidationError",
                f"Plugin validation failed: {errors[0]}",
                code="plugin_validation_failed",
                details={
                    "validation_status": "failed",
                    "validation_errors": errors,
                    "security_violations": [v.__dict__ for v in inspected.violations],
                },
            )
        code_hash = hashlib.sha256(objects.path(upload.s3_key).read_bytes()).hexdigest()
        plugin_id = f"{upload.name}_{upload.version.replace('.', '_')}"
        with store.lock:
            if plugin_id in plugins_of(namespace_id):
                raise ApiFailure(
                    409,
                    "AlreadyExistsError",
                    f"Plugin {plugin_id} already exists",
                    details={"plugin_id": plugin_id},
                )
            upload.confirmed = True
            plugin = Plugin(
                plugin_id=plugin_id,
                namespace_id=namespace_id,
                name=upload.name,
                version=upload.version,
                description=upload.description,
                s3_key=upload.s3_key,
                code_hash=code_hash,
                created_at=time.time(),
                manifest=inspected.manifest,
                deploy_seconds=timing.plugin_seconds,
            )
            plugins_of(namespace_id)[plugin_id] = plugin
            store.save()
        return {
            "success": True,
            "upload_id": upload_id,
            "plugin_id": plugin_id,
            "validation_status": "passed",
            "validation_errors": [],
            "deployment_status": "pending",
            "feature_uri": plugin.feature_uri,
            "s3_archive_url": f"s3://mixpeek-plugins/{plugin.s3_key}",
            "message": "Plugin validated; call /deploy to deploy it",
        }

    @v1.get("/namespaces/{namespace_id}/plugins")
    def list_plugins(namespace_id: str) -> dict[str, Any]:
        with store.lock:
            items = [plugin_document(p) for p in plugins_of(namespace_id).values()]
        return {
            "success": True,
            "plugins": [
                {
                    k: doc[k]
                    for k in (
                        "plugin_id",
                        "name",
                        "version",
                        "description",
                        "deployed",
                        "validation_status",
                        "created_at",
                        "updated_at",
                    )
                }
                | {"feature_uri": f"mixpeek://{doc['name']}@{doc['version']}"}
                for doc in items
            ],
            "total": len(items),
            "namespace_id": namespace_id,
        }

    @v1.get("/namespaces/{namespace_id}/plugins/{plugin_id}")
    def get_plugin(
        namespace_id: str, plugin_id: str, return_presigned_urls: bool = False
    ) -> dict[str, Any]:
        with store.lock:
            p = plugin_or_404(namespace_id, plugin_id)
            body: dict[str, Any] = {"success": True, "plugin": plugin_document(p)}
        if return_presigned_urls:
            body["presigned_download_url"] = objects.presign("GET", p.s3_key, expires_in=3600)
        return body

    @v1.post("/namespaces/{namespace_id}/plugins/{plugin_id}/deploy")
    def deploy_plugin(
        namespace_id: str,
        plugin_id: str,
        deployment_type: Literal["realtime", "batch_only"] | None = None,
    ) -> dict[str, Any]:
        kind = deployment_type or "realtime"
        failure = faults.take("plugin_fail")
        with store.lock:
            p = plugin_or_404(namespace_id, plugin_id)
            p.deploy_requested_at = time.time()
            p.deployment_type = kind
            p.undeployed = False
            p.deploy_seconds = timing.plugin_seconds
            p.deploy_outcome = "FAILED" if failure else "DEPLOYED"
            p.deploy_error = failure
            store.save()
        if kind == "batch_only":
            return {
                "status": "deployed",
                "deployment_type": "batch_only",
                "message": f"Plugin {plugin_id} is available for batch processing",
            }
        return {
            "status": "queued",
            "message": "Plugin is queued for deployment. Deployment will start within 30 seconds.",
            "deployment_name": f"custom_plugin_{plugin_id}",
            "route_prefix": p.route_prefix,
            "estimated_completion_seconds": int(timing.plugin_seconds) + 1,
            "queue_position": 1,
            "deployment_method": "gke_rayservice_rolling_update",
            "status_endpoint": f"/namespaces/{namespace_id}/plugins/{plugin_id}/status",
        }

    @v1.get("/namespaces/{namespace_id}/plugins/{plugin_id}/status")
    def plugin_status(namespace_id: str, plugin_id: str) -> dict[str, Any]:
        with store.lock:
            body = plugin_status_json(plugin_or_404(namespace_id, plugin_id))
        flap = faults.take("status_flap")
        if flap:
            body["status"] = flap
        return body

    @v1.post("/namespaces/{namespace_id}/plugins/{plugin_id}/undeploy")
    def undeploy_plugin(namespace_id: str, plugin_id: str) -> dict[str, Any]:
        with store.lock:
            p = plugin_or_404(namespace_id, plugin_id)
            was = not p.undeployed
            p.undeployed = True
            store.save()
        return {
            "success": True,
            "plugin_id": plugin_id,
            "status": "undeployed",
            "message": "Plugin undeployed" if was else "Plugin was not deployed",
        }

    @v1.delete("/namespaces/{namespace_id}/plugins/{plugin_id}")
    def delete_plugin(namespace_id: str, plugin_id: str) -> dict[str, Any]:
        with store.lock:
            p = plugin_or_404(namespace_id, plugin_id)
            was_deployed = not p.undeployed
            del plugins_of(namespace_id)[plugin_id]
            store.save()
        objects.delete(p.s3_key)
        return {
            "success": True,
            "plugin_id": plugin_id,
            "message": f"Plugin {plugin_id} deleted",
            "deployment_removed": was_deployed,
        }

    api.include_router(v1)

    # ------------------------------------------------------------------------- storage

    @api.put("/_storage/{key:path}")
    async def storage_put(key: str, request: Request) -> Response:
        query = dict(request.query_params)
        try:
            objects.verify("PUT", key, query, request.headers.get("content-type", ""))
            stored = await objects.write(
                key, request.stream(), content_md5=request.headers.get("content-md5")
            )
        except StorageRefusal as refusal:
            return Response(
                refusal.xml(key), status_code=refusal.status, media_type="application/xml"
            )
        return Response(b"", status_code=200, headers={"ETag": stored.etag})

    @api.get("/_storage/{key:path}")
    def storage_get(key: str, request: Request) -> Response:
        try:
            objects.verify("GET", key, dict(request.query_params), "")
        except StorageRefusal as refusal:
            return Response(
                refusal.xml(key), status_code=refusal.status, media_type="application/xml"
            )
        if not objects.exists(key):
            return Response(
                StorageRefusal(404, "NoSuchKey", "The specified key does not exist.").xml(key),
                status_code=404,
                media_type="application/xml",
            )
        data = objects.path(key).read_bytes()
        return Response(
            data, media_type="application/zip", headers={"ETag": f'"{objects.md5(key)}"'}
        )

    # ------------------------------------------------------------------------ control

    control = APIRouter(prefix="/_emulator")

    @control.post("/faults")
    def add_fault(rule: FaultRule) -> dict[str, Any]:
        faults.add_rule(rule)
        return {"ok": True}

    @control.post("/next")
    def add_next(nxt: NextOutcomes) -> dict[str, Any]:
        faults.add_next(nxt)
        return {"ok": True}

    @control.post("/timing")
    def set_timing(body: TimingBody) -> dict[str, Any]:
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(timing, name, value)
        return timing.__dict__

    @control.get("/requests")
    def requests_log() -> list[dict[str, Any]]:
        with faults.lock:
            return [r.__dict__ for r in faults.log]

    @control.post("/reset")
    def reset() -> dict[str, Any]:
        faults.reset()
        return {"ok": True}

    @control.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    api.include_router(control)

    with store.lock:
        for slug in apps:
            app_id = f"app_{slug.replace('-', '_')}"
            if app_id not in store.state.apps:
                store.state.apps[app_id] = App(
                    app_id=app_id, slug=slug, title=slug, created_at=time.time()
                )
        store.save()

    return Emulator(api, FaultMiddleware(api, faults), store, objects, faults, timing, scratch)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _plugin_message(status: str, p: Plugin) -> str:
    return {
        "QUEUED": "Plugin is queued for deployment. Deployment will start within 30 seconds.",
        "PENDING": "Deployment triggered, waiting for the cluster to start",
        "IN_PROGRESS": "Rolling update in progress",
        "DEPLOYED": f"Plugin {p.plugin_id} is deployed and serving",
        "FAILED": f"Deployment failed: {p.deploy_error}",
        "NOT_DEPLOYED": "Plugin is not deployed for realtime inference",
    }.get(status, status)
