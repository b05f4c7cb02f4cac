"""The namespace Plugin routes: presigned upload, confirm (validation), deploy, status,
detail, list, undeploy and delete."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends

from ..bundles import inspect_plugin_archive
from ..context import ApiFailure, Context, context, invalid, not_found, official_body
from ..state import Plugin, PluginUpload, iso, new_id
from ..storage import CHUNK

router = APIRouter(prefix="/namespaces/{namespace_id}/plugins")
Ctx = Annotated[Context, Depends(context)]
PLUGIN_NAME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{2,63}$")
PLUGIN_VERSION: Final = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


def plugin_id_for(name: str, version: str) -> str:
    return f"{name}_{version.replace('.', '_')}"


def plugin_or_404(ctx: Context, namespace_id: str, plugin_id: str) -> Plugin:
    plugin = ctx.store.plugins_of(namespace_id).get(plugin_id)
    if plugin is None:
        raise not_found("plugin", plugin_id)
    return plugin


def _name_and_version(body: dict[str, Any]) -> None:
    """The documented rules: ``^[a-zA-Z][a-zA-Z0-9_]{2,63}$`` and ``X.Y.Z``."""
    problems = []
    if not PLUGIN_NAME.match(body["name"]):
        problems.append(
            {
                "type": "string_pattern_mismatch",
                "location": "body.name",
                "message": "name must start with a letter and have 3-64 letters, digits or "
                "underscores",
            }
        )
    if not PLUGIN_VERSION.match(body["version"]):
        problems.append(
            {
                "type": "string_pattern_mismatch",
                "location": "body.version",
                "message": "version must be X.Y.Z",
            }
        )
    if problems:
        raise invalid(problems)


def _exists(name: str, version: str, namespace_id: str, plugin_id: str) -> ApiFailure:
    return ApiFailure(
        409,
        "AlreadyExistsError",
        f"Plugin {name} version {version} already exists in namespace {namespace_id}",
        code="plugin_exists",
        details={"plugin_id": plugin_id, "resource": "plugin"},
    )


@router.post("/uploads")
def plugin_upload(
    ctx: Ctx,
    namespace_id: str,
    body: Annotated[dict[str, Any], Depends(official_body("CreatePluginUploadRequest"))],
) -> dict[str, Any]:
    _name_and_version(body)
    name, version = body["name"], body["version"]
    plugin_id = plugin_id_for(name, version)
    expiration = body.get("presigned_url_expiration") or 3600
    with ctx.store.lock:
        if plugin_id in ctx.store.plugins_of(namespace_id):
            raise _exists(name, version, namespace_id, plugin_id)
        upload = PluginUpload(
            upload_id=new_id("plu"),
            namespace_id=namespace_id,
            name=name,
            version=version,
            description=body.get("description"),
            s3_key=f"{namespace_id}/plugins/{plugin_id}/{plugin_id}.zip",
            expires_at=time.time() + expiration,
        )
        ctx.store.state.uploads[upload.upload_id] = upload
        ctx.store.save()
    expires_in = -5 if ctx.faults.take("expire_urls") else expiration
    url = ctx.objects.presign(
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


def _upload_to_confirm(
    ctx: Context, namespace_id: str, upload_id: str, etag: str | None
) -> PluginUpload:
    with ctx.store.lock:
        upload = ctx.store.state.uploads.get(upload_id)
        if upload is None or upload.namespace_id != namespace_id:
            raise not_found("upload", upload_id)
        if upload.confirmed:
            raise ApiFailure(400, "BadRequestError", f"Upload {upload_id} was already confirmed")
        if time.time() > upload.expires_at:
            raise ApiFailure(
                400, "BadRequestError", f"Upload {upload_id} has expired; start a new upload"
            )
    stored = ctx.objects.stored(upload.s3_key)
    if stored is None:
        raise ApiFailure(
            404,
            "NotFoundError",
            f"No archive was uploaded for upload {upload_id}",
            details={"id": upload_id, "resource": "upload"},
        )
    if etag and etag.strip('"') != stored.md5_hex:
        raise ApiFailure(
            400, "BadRequestError", f"The etag does not match the archive uploaded for {upload_id}"
        )
    return upload


@router.post("/uploads/{upload_id}/confirm")
def plugin_confirm(
    ctx: Ctx,
    namespace_id: str,
    upload_id: str,
    body: Annotated[
        dict[str, Any], Depends(official_body("ConfirmPluginUploadRequest", optional=True))
    ],
) -> dict[str, Any]:
    upload = _upload_to_confirm(ctx, namespace_id, upload_id, body.get("etag"))
    archive = ctx.objects.path(upload.s3_key)
    inspected = inspect_plugin_archive(archive)
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
    plugin_id = plugin_id_for(upload.name, upload.version)
    with ctx.store.lock:
        if plugin_id in ctx.store.plugins_of(namespace_id):
            raise _exists(upload.name, upload.version, namespace_id, plugin_id)
        upload.confirmed = True
        plugin = Plugin(
            plugin_id=plugin_id,
            namespace_id=namespace_id,
            name=upload.name,
            version=upload.version,
            description=upload.description,
            s3_key=upload.s3_key,
            code_hash=_sha256(archive),
            created_at=time.time(),
            manifest=inspected.manifest,
            deploy_seconds=ctx.timing.plugin_seconds,
        )
        ctx.store.plugins_of(namespace_id)[plugin_id] = plugin
        ctx.store.save()
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@router.get("")
def list_plugins(ctx: Ctx, namespace_id: str) -> dict[str, Any]:
    now = time.time()
    with ctx.store.lock:
        items = [p.list_item(now) for p in ctx.store.plugins_of(namespace_id).values()]
    return {"success": True, "plugins": items, "total": len(items), "namespace_id": namespace_id}


@router.get("/{plugin_id}")
def get_plugin(
    ctx: Ctx, namespace_id: str, plugin_id: str, return_presigned_urls: bool = False
) -> dict[str, Any]:
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        body: dict[str, Any] = {"success": True, "plugin": p.document(time.time())}
    if return_presigned_urls:
        body["presigned_download_url"] = ctx.objects.presign("GET", p.s3_key, expires_in=3600)
    return body


@router.post("/{plugin_id}/deploy")
def deploy_plugin(
    ctx: Ctx,
    namespace_id: str,
    plugin_id: str,
    deployment_type: Literal["realtime", "batch_only"] | None = None,
) -> dict[str, Any]:
    kind = deployment_type or "realtime"
    failure = ctx.faults.take("plugin_fail")
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        p.request_deploy(kind, ctx.timing.plugin_seconds, failure)
        ctx.store.save()
    if kind == "batch_only":
        return {
            "status": "deployed",
            "deployment_type": "batch_only",
            "message": f"Plugin {plugin_id} is available for batch processing",
        }
    # The documented example of a queued realtime rollout (spec 0.81).
    return {
        "status": "queued",
        "message": "Plugin is queued for deployment. Deployment will start within 30 seconds.",
        "deployment_name": f"custom_plugin_{plugin_id}",
        "route_prefix": p.route_prefix,
        "estimated_completion_seconds": int(ctx.timing.plugin_seconds) + 1,
        "queue_position": 1,
        "deployment_method": "gke_rayservice_rolling_update",
        "status_endpoint": f"/namespaces/{namespace_id}/plugins/{plugin_id}/status",
    }


@router.get("/{plugin_id}/status")
def plugin_status(ctx: Ctx, namespace_id: str, plugin_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        body = plugin_or_404(ctx, namespace_id, plugin_id).status_json(time.time())
    flap = ctx.faults.take("status_flap")
    if flap:
        body["status"] = flap
    return body


@router.post("/{plugin_id}/undeploy")
def undeploy_plugin(ctx: Ctx, namespace_id: str, plugin_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        was = not p.undeployed
        p.undeployed = True
        ctx.store.save()
    message = "Plugin undeployed" if was else "Plugin was not deployed"
    return {"success": True, "plugin_id": plugin_id, "message": message}


@router.delete("/{plugin_id}")
def delete_plugin(ctx: Ctx, namespace_id: str, plugin_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        was_deployed = not p.undeployed
        del ctx.store.plugins_of(namespace_id)[plugin_id]
        ctx.store.save()
    ctx.objects.delete(p.s3_key)
    return {
        "success": True,
        "plugin_id": plugin_id,
        "message": f"Plugin {plugin_id} deleted",
        "deployment_removed": was_deployed,
    }
