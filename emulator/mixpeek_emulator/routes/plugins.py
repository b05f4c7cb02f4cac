"""The namespace Plugin routes: presigned upload, confirm (validation), deploy, status,
detail, list, undeploy and delete."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData, UploadFile

from ..bundles import inspect_plugin_archive
from ..context import (
    ApiFailure,
    Body,
    Context,
    check_body,
    context,
    documented,
    invalid,
    not_found,
    problem,
    signed_at,
)
from ..contract import PLUGIN_ARCHIVE_LIMIT, Operation
from ..state import Plugin, PluginUpload, iso, new_id
from ..storage import CHUNK, StoredObject

# The emulator holds every namespace a client names, but one whose id no service could have
# made (a space, a control character, a slash) is not found, as it would be there.
NAMESPACE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")


def namespace(namespace_id: str) -> None:
    if not NAMESPACE_ID.fullmatch(namespace_id):
        raise ApiFailure(
            404,
            "NotFoundError",
            f"Namespace {namespace_id[:200]!r} not found",
            details={"id": namespace_id[:200], "resource": "namespace"},
        )


router = APIRouter(prefix="/namespaces/{namespace_id}/plugins", dependencies=[Depends(namespace)])
Ctx = Annotated[Context, Depends(context)]
PLUGIN_NAME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{2,63}")
PLUGIN_VERSION: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
# The emulator is one organization; ids have the documented ``org_`` prefix.
ORGANIZATION_ID: Final = "org_emulator"


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
    if not PLUGIN_NAME.fullmatch(body["name"]):
        problems.append(
            problem(
                "string_pattern_mismatch",
                ["body", "name"],
                "name must start with a letter and have 3-64 letters, digits or underscores",
            )
        )
    if not PLUGIN_VERSION.fullmatch(body["version"]):
        problems.append(
            problem("string_pattern_mismatch", ["body", "version"], "version must be X.Y.Z")
        )
    if problems:
        raise invalid(problems)


def _exists(
    name: str, version: str, namespace_id: str, plugin_id: str, status: int = 409
) -> ApiFailure:
    return ApiFailure(
        status,
        "AlreadyExistsError" if status == 409 else "BadRequestError",
        f"Plugin {name} version {version} already exists in namespace {namespace_id}",
        code="plugin_exists",
        details={"plugin_id": plugin_id, "resource": "plugin"},
    )


@router.post("/uploads")
def plugin_upload(ctx: Ctx, namespace_id: str, body: Body) -> dict[str, Any]:
    _name_and_version(body)
    name, version = body["name"], body["version"]
    plugin_id = plugin_id_for(name, version)
    expiration = int(body.get("presigned_url_expiration", 3600))
    upload_id = new_id("plu")
    with ctx.store.lock:
        if plugin_id in ctx.store.plugins_of(namespace_id):
            raise _exists(name, version, namespace_id, plugin_id)
        upload = PluginUpload(
            upload_id=upload_id,
            namespace_id=namespace_id,
            name=name,
            version=version,
            description=body.get("description"),
            s3_key=_archive_key(namespace_id, upload_id, plugin_id),
            expires_at=ctx.store.clock.time() + expiration,
        )
        ctx.store.state.uploads[upload.upload_id] = upload
        ctx.store.save()
    url = ctx.objects.presign(
        "PUT",
        upload.s3_key,
        expires_in=expiration,
        content_type="application/zip",
        signed_at=signed_at(ctx, expiration),
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


def _upload_to_confirm(ctx: Context, namespace_id: str, upload_id: str) -> PluginUpload:
    """The upload, if it can still be confirmed: not confirmed yet, not expired."""
    with ctx.store.lock:
        upload = ctx.store.state.uploads.get(upload_id)
        if upload is None or upload.namespace_id != namespace_id:
            raise not_found("upload", upload_id)
        if upload.confirmed:
            raise ApiFailure(400, "BadRequestError", f"Upload {upload_id} was already confirmed")
        if ctx.store.clock.time() > upload.expires_at:
            raise ApiFailure(
                400, "BadRequestError", f"Upload {upload_id} has expired; start a new upload"
            )
    return upload


def _as_expected(stored: StoredObject, body: dict[str, Any], upload_id: str) -> None:
    """The archive matches the ``etag`` and ``file_size_bytes`` a confirm gives (both
    optional, "for integrity verification"), or a 400 says which does not."""
    etag, size = body.get("etag"), body.get("file_size_bytes")
    if etag and etag.strip('"') != stored.md5_hex:
        raise ApiFailure(
            400, "BadRequestError", f"The etag does not match the archive uploaded for {upload_id}"
        )
    if size is not None and size != stored.size:
        raise ApiFailure(
            400,
            "BadRequestError",
            f"file_size_bytes {size} does not match the {stored.size} bytes uploaded for "
            f"{upload_id}",
        )


@router.post("/uploads/{upload_id}/confirm")
def plugin_confirm(ctx: Ctx, namespace_id: str, upload_id: str, body: Body) -> dict[str, Any]:
    upload = _upload_to_confirm(ctx, namespace_id, upload_id)
    plugin = _register(
        ctx,
        namespace_id,
        upload.name,
        upload.version,
        upload.description,
        upload.s3_key,
        upload_id,
        upload=upload,
        expected=body,
    )
    return {
        **plugin.registered(),
        "upload_id": upload_id,
        "message": "Plugin validated; call /deploy to deploy it",
    }


@router.post("")
async def plugin_upload_multipart(ctx: Ctx, namespace_id: str, request: Request) -> dict[str, Any]:
    """The one-request upload (``multipart/form-data``): the archive is stored, validated and
    registered as the presigned flow's confirm does; deploying is still a separate call. The
    form is read here, after the key and the namespace are checked (FastAPI reads form
    parameters before any dependency), and held to the contract's form like any JSON body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > PLUGIN_ARCHIVE_LIMIT + FORM_OVERHEAD:
        raise _too_large(int(declared))
    op = documented(request)
    async with request.form(max_files=1, max_fields=8) as form:
        fields, file = _form_fields(op, form)
        if file.size is not None and file.size > PLUGIN_ARCHIVE_LIMIT:
            raise _too_large(file.size)
        upload_id = new_id("plu")
        key = _archive_key(
            namespace_id, upload_id, plugin_id_for(fields["name"], fields["version"])
        )
        await ctx.objects.write(key, _chunks(file), content_md5=None)
    plugin = _register(
        ctx,
        namespace_id,
        fields["name"],
        fields["version"],
        fields.get("description"),
        key,
        upload_id,
    )
    return plugin.registered()


FORM_OVERHEAD: Final = 1024 * 1024  # boundaries and the small fields around the archive


def _too_large(size: int) -> ApiFailure:
    return ApiFailure(
        400,
        "BadRequestError",
        f"The plugin archive has {size} bytes; the limit is {PLUGIN_ARCHIVE_LIMIT}",
    )


def _form_fields(op: Operation, form: FormData) -> tuple[dict[str, str], UploadFile]:
    """The form's text fields and its archive, held to the operation's form schema (an
    undeclared field is ``extra_forbidden``, a missing one ``missing``) and to the upload rules
    on name and version. An empty field is a missing one, as FastAPI reads forms."""
    given = {k: v for k, v in form.multi_items() if not (isinstance(v, str) and v == "")}
    shown = {k: "<archive>" if isinstance(v, UploadFile) else v for k, v in given.items()}
    check_body(op, shown)
    file = given["file"]
    if not isinstance(file, UploadFile):
        raise invalid([problem("file_type", ["body", "file"], "file must be a file part")])
    fields = {k: v for k, v in given.items() if isinstance(v, str)}
    _name_and_version(fields)
    return fields, file


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while block := await file.read(CHUNK):
        yield block


def _archive_key(namespace_id: str, upload_id: str, plugin_id: str) -> str:
    """Where an upload's archive is kept: one key per upload, as spec 0.81's example has it
    (``ns_xxx/plugins/plu_abc123xyz789/my_plugin_1_0_0.zip``), so no upload overwrites
    another's archive."""
    return f"{namespace_id}/plugins/{upload_id}/{plugin_id}.zip"


def _register(
    ctx: Context,
    namespace_id: str,
    name: str,
    version: str,
    description: str | None,
    key: str,
    upload_id: str,
    *,
    upload: PluginUpload | None = None,
    expected: dict[str, Any] | None = None,
) -> Plugin:
    """Validate the archive uploaded at ``key`` (a 400 listing what failed), then record the
    plugin, pending a deploy, and the ``upload`` it came from as confirmed. The plugin keeps
    its own copy of the archive, taken before it is read, so a later PUT to the upload URL
    changes neither what was validated nor what is deployed."""
    plugin_id = plugin_id_for(name, version)
    kept = f"{namespace_id}/plugins/{plugin_id}/{upload_id}.zip"
    frozen = ctx.objects.freeze(key, kept)
    if frozen is None:
        raise ApiFailure(
            404,
            "NotFoundError",
            f"No archive was uploaded for upload {upload_id}",
            details={"id": upload_id, "resource": "upload"},
        )
    try:
        if expected is not None:
            _as_expected(frozen, expected, upload_id)
        plugin = _validated(ctx, namespace_id, name, version, description, kept)
        with ctx.store.lock:
            if plugin_id in ctx.store.plugins_of(namespace_id):
                # Confirm documents no 409 (spec 0.81): there, a plugin registered since the
                # upload began is one of its 400s.
                raise _exists(
                    name, version, namespace_id, plugin_id, 409 if upload is None else 400
                )
            ctx.store.plugins_of(namespace_id)[plugin_id] = plugin
            if upload is not None:
                upload.confirmed = True
            ctx.store.save()
    except ApiFailure:
        ctx.objects.delete(kept)
        raise
    return plugin


def _validated(
    ctx: Context, namespace_id: str, name: str, version: str, description: str | None, key: str
) -> Plugin:
    """The plugin of the archive at ``key``, or a 400 listing every problem the documented
    checks find."""
    archive = ctx.objects.path(key)
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
    return Plugin(
        plugin_id=plugin_id_for(name, version),
        namespace_id=namespace_id,
        name=name,
        version=version,
        description=description,
        s3_key=key,
        code_hash=_sha256(archive),
        created_at=ctx.store.clock.time(),
        manifest=inspected.manifest,
        deploy_seconds=ctx.timing.plugin_seconds,
        has_realtime=inspected.realtime,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@router.get("")
def list_plugins(ctx: Ctx, namespace_id: str) -> dict[str, Any]:
    now = ctx.store.now()
    with ctx.store.lock:
        items = [p.list_item(now) for p in ctx.store.plugins_of(namespace_id).values()]
    return {"success": True, "plugins": items, "total": len(items), "namespace_id": namespace_id}


@router.get("/available")
def available_org_plugins(namespace_id: str) -> dict[str, Any]:
    """``AvailableOrgPluginsResponse``: the organization's own plugins (``/v1/plugins``) that
    a namespace may enable. The emulator does not emulate organization-level uploads (they
    answer 501), so its organization has none; namespace plugins are never listed here."""
    return {
        "success": True,
        "plugins": [],
        "total": 0,
        "organization_id": ORGANIZATION_ID,
        "namespace_id": namespace_id,
    }


@router.get("/{plugin_id}")
def get_plugin(
    ctx: Ctx, namespace_id: str, plugin_id: str, return_presigned_urls: bool = False
) -> dict[str, Any]:
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        body: dict[str, Any] = {"success": True, "plugin": p.document(ctx.store.now())}
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
    failure = ctx.faults.take("plugin_fail")
    with ctx.store.lock:
        p = plugin_or_404(ctx, namespace_id, plugin_id)
        # Without realtime.py a plugin has no realtime endpoint: it is deployed batch-only
        # whatever was asked (spec 0.81's batch_only_no_realtime example).
        kind = (deployment_type or "realtime") if p.has_realtime else "batch_only"
        p.request_deploy(
            kind,
            ctx.timing.plugin_seconds,
            failure,
            at=ctx.store.clock.time(),
            progress=ctx.store.now(),
        )
        ctx.store.save()
    if kind == "batch_only":
        return {
            "status": "deployed",
            "deployment_type": "batch_only",
            "message": "Plugin deployed for batch processing (no realtime endpoint)"
            if not p.has_realtime
            else f"Plugin {plugin_id} is available for batch processing",
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
        plugin = plugin_or_404(ctx, namespace_id, plugin_id)
        body = plugin.status_json(ctx.store.now(), ctx.plugin_status_case)
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
