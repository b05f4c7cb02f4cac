"""The live sites: each app environment's files, exactly those of the version it serves, at
``/_sites/{app_id}/{environment}/{path}``, so the emulator, the tests and users' CI can check
real content after a switch (the service's own hosts, ``https://<env>-<slug>.mxp.co``, are
not reachable here). No API key: a site is public."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ..bundles import read_site_file
from ..context import Context, context

router = APIRouter(prefix="/_sites")
Ctx = Annotated[Context, Depends(context)]


def _not_found(what: str) -> Response:
    return Response(f"{what}\n", status_code=404, media_type="text/plain")


@router.get("/{app_id}/{environment}")
def site_root(ctx: Ctx, app_id: str, environment: str) -> Response:
    return site_file(ctx, app_id, environment, "")


@router.get("/{app_id}/{environment}/{path:path}")
def site_file(ctx: Ctx, app_id: str, environment: str, path: str) -> Response:
    """The file at ``path`` of what the environment serves; a folder serves its index.html."""
    ctx.store.settle()
    with ctx.store.lock:
        app = ctx.store.state.apps.get(app_id)
        entry = app.environments.get(environment) if app is not None else None
        version = app.version(int(entry["version"])) if app and entry else None
        key = version.archive if version is not None else None
    if key is None or not ctx.objects.exists(key):
        return _not_found(f"{environment} of {app_id} serves nothing")
    rel = path if path and not path.endswith("/") else f"{path}index.html"
    data = read_site_file(ctx.objects.path(key), rel)
    if data is None:
        return _not_found(f"{rel} is not in the version {environment} serves")
    media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "no-store"})
