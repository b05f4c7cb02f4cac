"""The App routes: apps, bundle uploads, deploys and their log streams, versions, promotion."""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ..bundles import AppBundle, inspect_app_bundle
from ..context import ApiFailure, Body, Context, context, not_found, signed_at
from ..disk import DiskFull
from ..state import APP_SETTINGS, App, Deploy, Version, iso, new_id

router = APIRouter()
Ctx = Annotated[Context, Depends(context)]
DEFAULT_MESSAGE: Final = "Deploy via bundle upload"  # DeployRequest.message's official default


def app_or_404(ctx: Context, app_id: str) -> App:
    ctx.store.settle()
    app = ctx.store.state.apps.get(app_id)
    if app is None:
        raise not_found("app", app_id)
    return app


def version_or_404(app: App, number: int) -> Version:
    found = app.version(number)
    if found is None:
        raise not_found("version", f"{app.app_id}/v{number}")
    return found


def deploy_or_404(ctx: Context, app_id: str, deploy_id: str) -> tuple[App, Deploy]:
    app = app_or_404(ctx, app_id)
    d = ctx.store.state.deploys.get(deploy_id)
    if d is None or d.app_id != app_id:
        raise not_found("deploy", deploy_id)
    return app, d


def environment_of(body: dict[str, Any]) -> str:
    """The contract allows ``staging``, ``production`` or null; null and absent mean the
    documented default, ``production``."""
    return str(body.get("environment") or "production")


def slug_free(ctx: Context, slug: str, app_id: str | None = None) -> None:
    """Slugs are globally unique (SDK ``create_app``); a taken one is a 400, a status the SDK
    documents for this operation (it lists no 409)."""
    if any(a.slug == slug and a.app_id != app_id for a in ctx.store.state.apps.values()):
        raise ApiFailure(
            400,
            "BadRequestError",
            f"Slug {slug} is taken: slugs are unique across all organizations, so choose "
            "another (PATCH /v1/apps/{app_id}?dry_run=true checks one without writing).",
            code="slug_taken",
            details={"slug": slug},
        )


@router.post("/apps")
def create_app(ctx: Ctx, body: Body) -> dict[str, Any]:
    meta = dict(body["meta"])
    with ctx.store.lock:
        slug_free(ctx, body["slug"])
        app = App(
            app_id=new_id("app"),
            slug=body["slug"],
            title=meta.pop("title"),
            created_at=ctx.store.clock.time(),
            meta={k: v for k, v in meta.items() if v is not None},
            settings={k: body[k] for k in APP_SETTINGS if body.get(k) is not None},
            is_active=body.get("is_active", True) is not False,
        )
        ctx.store.state.apps[app.app_id] = app
        ctx.store.save()
        return shown(ctx, app, taken_down=not app.is_active)


@router.get("/apps")
def list_apps(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    template: str | None = None,
    slug: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    ctx.store.settle()
    with ctx.store.lock:
        apps = [
            a
            for a in ctx.store.state.apps.values()
            if (template is None or a.template == template)
            and (slug is None or a.slug == slug)
            and (search is None or search.lower() in a.title.lower())
        ]
        page = apps[offset : offset + limit]
        return {
            "results": [shown(ctx, a, full=False) for a in page],
            "total_count": len(apps),
            "limit": limit,
            "offset": offset,
            "max_apps": None,
        }


@router.get("/apps/{app_id}")
def get_app(ctx: Ctx, app_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        return shown(ctx, app_or_404(ctx, app_id))


@router.patch("/apps/{app_id}")
def update_app(ctx: Ctx, app_id: str, body: Body, dry_run: bool = False) -> dict[str, Any]:
    """``dry_run`` only checks that the slug is free and writes nothing; otherwise the given
    fields replace the app's, saved as unpublished changes unless ``publish`` is true."""
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        if body.get("slug") is not None:
            slug_free(ctx, body["slug"], app_id)
        if dry_run:
            return shown(ctx, app)
        app.update(
            {k: v for k, v in body.items() if k != "publish"}, publish=bool(body.get("publish"))
        )
        ctx.store.save()
        return shown(ctx, app, taken_down=body.get("is_active") is False)


def shown(ctx: Context, app: App, *, full: bool = True, taken_down: bool = False) -> dict[str, Any]:
    """The app as the API shows it now; ``taken_down`` when this request set ``is_active``
    false, which ``AppResponse.warnings`` spells out (its description's own example)."""
    body = app.to_json(ctx.store.now(), full=full, extensions=ctx.extensions)
    if taken_down:
        body["warnings"] = [
            f"is_active: false takes the app down: {app.url()} and its other hosts answer 404 "
            f"once the serving cache's window has passed; GET {app.url()}/ to verify it."
        ]
    return body


@router.delete("/apps/{app_id}")
def delete_app(ctx: Ctx, app_id: str) -> dict[str, Any]:
    """``GenericDeleteResponse``; the slug is free at once, and the app's bundles go with it."""
    with ctx.store.lock:
        app_or_404(ctx, app_id)
        keys = ctx.store.delete_app(app_id)
    for key in keys:
        ctx.objects.delete(key)
    return {"message": "Successfully deleted", "success": True}


@router.post("/apps/{app_id}/deploy/upload-url")
def upload_url(ctx: Ctx, app_id: str, body: Body) -> dict[str, Any]:
    app_or_404(ctx, app_id)
    name = Path(body["filename"]).name
    if name in ("", ".", ".."):  # a dot segment, which clients resolve away in the URL
        name = "bundle.zip"
    key = f"app-builds/{app_id}/{new_id('up')}/{name}"
    content_type = body.get("content_type") or "application/zip"
    url = ctx.objects.presign(
        "PUT", key, expires_in=3600, content_type=content_type, signed_at=signed_at(ctx, 3600)
    )
    return {"upload_url": url, "bundle_s3_key": key, "expires_in": 3600}


@router.post("/apps/{app_id}/deploy/verify-upload")
def verify_upload(ctx: Ctx, app_id: str, body: Body) -> dict[str, Any]:
    app_or_404(ctx, app_id)
    key = body["bundle_s3_key"]
    stored = ctx.objects.stored(key)
    if stored is None:
        return {"bundle_s3_key": key, "exists": False}
    return {
        "bundle_s3_key": key,
        "exists": True,
        "etag": stored.etag,
        "size_bytes": stored.size,
        "last_modified": iso(stored.modified),
    }


@router.post("/apps/{app_id}/deploy")
def deploy(ctx: Ctx, app_id: str, body: Body) -> dict[str, Any]:
    app = app_or_404(ctx, app_id)
    environment = environment_of(body)
    key = bundle_key_of(body)
    deploy_id = new_id("dep")
    # The build's own copy of the bundle, taken before it is read: a later PUT to the upload
    # URL can change neither this build nor, once it is a version, what is served.
    archive = f"app-builds/{app.app_id}/{deploy_id}/bundle.zip"
    copied = ctx.objects.freeze(key, archive) is not None
    bundle = inspect_app_bundle(ctx.objects.path(archive) if copied else None)
    with ctx.store.lock:
        app_or_404(ctx, app_id)  # not deleted while the bundle was read
        d = new_deploy(ctx, deploy_id, app.app_id, environment, key, body, bundle)
        d.archive_key = archive if copied else None
        ctx.store.state.deploys[d.deploy_id] = d
        ctx.store.save()
    return {  # DeployResponse: queued; the status and the log stream tell the rest
        "app_id": app.app_id,
        "deploy_id": d.deploy_id,
        "status": "queued",
        "environment": d.environment,
        "message": d.message,
    }


def bundle_key_of(body: dict[str, Any]) -> str:
    """The uploaded bundle a deploy builds: the only source the service accepts so far."""
    source = body.get("source", "cli_upload")
    if source == "git":
        raise ApiFailure(
            400, "BadRequestError", "Git deploys are not available yet (source='git' is Phase 3b)"
        )
    key: str | None = body.get("bundle_s3_key")
    if not key:
        raise ApiFailure(
            400, "BadRequestError", "bundle_s3_key is required for source='cli_upload'"
        )
    return key


def new_deploy(
    ctx: Context,
    deploy_id: str,
    app_id: str,
    environment: str,
    key: str,
    body: dict[str, Any],
    bundle: AppBundle,
) -> Deploy:
    """The deploy, queued now. Its outcome is decided here and revealed as its stages pass, so
    a restart neither loses nor repeats it: an unusable bundle or a ``deploy_fail`` fails it."""
    forced = ctx.faults.take("deploy_fail")
    return Deploy(
        deploy_id=deploy_id,
        app_id=app_id,
        environment=environment,
        message=body.get("message") or DEFAULT_MESSAGE,
        bundle_s3_key=key,
        queued_at=ctx.store.clock.time(),
        queued_progress=ctx.store.now(),
        queue_seconds=ctx.timing.queue_seconds,
        build_seconds=ctx.timing.build_seconds,
        outcome="complete" if bundle.ok and not forced else "failed",
        reason=forced or (None if bundle.ok else bundle.reason),
        smoke_passed=not ctx.faults.take("smoke_fail"),
        git_commit_sha=body.get("git_commit_sha"),
        git_commit_message=body.get("git_commit_message"),
        git_author=body.get("git_author"),
        source_files=body.get("source_files"),
        files=bundle.files,
        file_count=len(bundle.files),
    )


@router.get("/apps/{app_id}/deploys/{deploy_id}")
def deploy_status(ctx: Ctx, app_id: str, deploy_id: str) -> dict[str, Any]:
    app, d = deploy_or_404(ctx, app_id, deploy_id)
    body = d.status_json(app, ctx.store.now())
    flap = ctx.faults.take("status_flap")
    if flap:
        body["status"] = flap
    return body


@router.get("/apps/{app_id}/deploys/{deploy_id}/logs/stream")
def deploy_logs(ctx: Ctx, app_id: str, deploy_id: str) -> StreamingResponse:
    _, d = deploy_or_404(ctx, app_id, deploy_id)
    cut_after = ctx.faults.take("sse_cut")
    never_done = bool(ctx.faults.take("sse_never_done"))
    return StreamingResponse(
        _log_events(ctx, d, cut_after, never_done),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _log_events(
    ctx: Context, d: Deploy, cut_after: int | None, never_done: bool
) -> AsyncIterator[bytes]:
    """Cached lines first, then each line when the build reaches it; ``done`` at the end. A
    shutdown ends the stream where it is, without ``done``, as a restarting server would: the
    client reconnects or falls back to polling the status. A deploy whose app is deleted
    meanwhile ends its stream there too: it has no more to tell. Lines are timed on the
    progress clock; each says when it was emitted on the wall clock."""
    assert d.queued_progress is not None
    for sent, (after, line) in enumerate(d.log_schedule()):
        delay = d.queued_progress + after - ctx.store.now()
        if delay > 0 and await ctx.closing.wait(delay):
            return
        if (
            cut_after is not None and sent >= cut_after
        ) or d.deploy_id not in ctx.store.state.deploys:
            return
        yield f"data: {json.dumps({'ts': d.queued_at + after, 'line': line})}\n\n".encode()
    # The stream has told its story; on a full disk a status request says so instead.
    with contextlib.suppress(DiskFull):
        ctx.store.settle()
    while never_done:  # holds the stream open, as a stuck pub/sub would
        if await ctx.closing.wait(1):
            return
        yield b": keep-alive\n\n"
    yield b"event: done\ndata: {}\n\n"


@router.get("/apps/{app_id}/versions")
def list_versions(ctx: Ctx, app_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        shown = [v.to_json(app, extensions=ctx.extensions) for v in reversed(app.versions)]
        return {"versions": shown, "total": len(app.versions)}


@router.get("/apps/{app_id}/versions/{version}")
def get_version(ctx: Ctx, app_id: str, version: int) -> dict[str, Any]:
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        return version_or_404(app, version).to_json(app, detail=True, extensions=ctx.extensions)


@router.get("/apps/{app_id}/versions/{version}/download")
def download_version(ctx: Ctx, app_id: str, version: int) -> dict[str, Any]:
    with ctx.store.lock:
        v = version_or_404(app_or_404(ctx, app_id), version)
    url = ctx.objects.presign("GET", v.archive or "", expires_in=3600)
    return {
        "download_url": url,
        "version": v.version,
        "asset_prefix": v.asset_prefix,
        "expires_in": 3600,
    }


@router.get("/apps/{app_id}/versions/{from_version}/diff/{to_version}")
def diff_versions(ctx: Ctx, app_id: str, from_version: int, to_version: int) -> dict[str, Any]:
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        old, new = version_or_404(app, from_version), version_or_404(app, to_version)
    files = [
        _file_diff(path, old.files.get(path), new.files.get(path))
        for path in sorted(set(old.files) | set(new.files))
    ]
    summary = dict.fromkeys(("added", "removed", "modified", "unchanged"), 0)
    for item in files:
        summary[item["status"]] += 1
    return {
        "app_id": app_id,
        "from_version": from_version,
        "to_version": to_version,
        "files": files,
        "summary": summary,
        "source_diff": _source_diff(old, new),
    }


def _file_diff(path: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    if a is None:
        status = "added"
    elif b is None:
        status = "removed"
    else:
        status = "modified" if a["hash"] != b["hash"] else "unchanged"
    old_size, new_size = (a or {}).get("size"), (b or {}).get("size")
    return {
        "path": path,
        "status": status,
        "old_hash": (a or {}).get("hash"),
        "new_hash": (b or {}).get("hash"),
        "old_size": old_size,
        "new_size": new_size,
        "size_delta": (new_size or 0) - (old_size or 0),
    }


def _source_diff(old: Version, new: Version) -> dict[str, str] | None:
    """Unified diffs, only when both versions were deployed with ``source_files``."""
    if old.source_files is None or new.source_files is None:
        return None
    diffs = {}
    for path in sorted(set(old.source_files) | set(new.source_files)):
        before = old.source_files.get(path, "").splitlines(keepends=True)
        after = new.source_files.get(path, "").splitlines(keepends=True)
        if before != after:
            diffs[path] = "".join(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
    return diffs


@router.post("/apps/{app_id}/versions/{version}/restore")
def restore_version(ctx: Ctx, app_id: str, version: int, body: Body) -> dict[str, Any]:
    environment = environment_of(body)
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        v = version_or_404(app, version)
        app.point(environment, v, ctx.store.clock.time())
        ctx.store.save()
    return {
        "app_id": app_id,
        "version": v.version,
        "deploy_id": v.deploy_id,
        "environment": environment,
        "asset_prefix": v.asset_prefix,
    }


@router.post("/apps/{app_id}/promote")
def promote(ctx: Ctx, app_id: str) -> dict[str, Any]:
    """Copies staging's ``deploy_id`` and ``asset_prefix`` to production, and the prefix to
    ``build_config.asset_prefix`` (SDK ``promote_app``)."""
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        staging = app.environments.get("staging")
        if not staging:
            raise ApiFailure(
                400, "BadRequestError", f"App {app_id} has nothing deployed to staging to promote"
            )
        app.environments["production"] = {**staging, "deployed_at": iso(ctx.store.clock.time())}
        app.settings["build_config"] = {
            **(app.settings.get("build_config") or {}),
            "asset_prefix": staging["asset_prefix"],
        }
        ctx.store.save()
    return {
        "app_id": app_id,
        "version": staging.get("version"),
        "deploy_id": staging["deploy_id"],
        "environment": "production",
        "asset_prefix": staging["asset_prefix"],
    }
