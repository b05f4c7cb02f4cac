"""The live sites: each app environment's files, exactly those of the version it serves, so the
emulator, the tests, users' CI and their browsers can check real content after a switch (the
service's own hosts, ``https://<slug>.mxp.co`` and ``https://staging-<slug>.mxp.co``, are not
reachable here). No API key: a site is public.

Two ways in. At the root of a host of its own, as the service serves ``{slug}.mxp.co``, so a
build whose pages name their assets by absolute path (Vite's default ``base: "/"``) works:
``<slug>.<environment>.localhost`` (production also at ``<slug>.localhost``) on the emulator's
port, and an app's custom domain once it is ``active`` (production). Browsers and curl resolve
every ``*.localhost`` name to loopback themselves; any other client connects to the emulator
and sends the name as its ``Host``. And on the emulator's own host, at
``/_sites/{app_id}/{environment}/{path}``, for clients that cannot choose a host.
"""

from __future__ import annotations

import ipaddress
import mimetypes
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from ..bundles import read_site_file
from ..context import Context, context
from ..state import ENVIRONMENTS, App

router = APIRouter(prefix="/_sites")
Ctx = Annotated[Context, Depends(context)]
# <slug>.localhost or <slug>.<environment>.localhost: a slug has no dot, so the labels say which.
SITE_HOST: Final = re.compile(
    r"^(?P<slug>[a-z0-9-]+)(?:\.(?P<environment>[a-z0-9-]+))?\.localhost$"
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _not_found(what: str) -> Response:
    return Response(f"{what}\n", status_code=404, media_type="text/plain")


@router.get("/{app_id}/{environment}")
def site_root(ctx: Ctx, app_id: str, environment: str) -> Response:
    return site_file(ctx, app_id, environment, "")


@router.get("/{app_id}/{environment}/{path:path}")
def site_file(ctx: Ctx, app_id: str, environment: str, path: str) -> Response:
    ctx.store.settle()
    with ctx.store.lock:
        app = ctx.store.state.apps.get(app_id)
    if app is None:
        return _not_found(f"{environment} of {app_id} serves nothing: no app has that id.")
    return serve(ctx, app, environment, path, f"{environment} of {app_id}")


def serve(ctx: Context, app: App, environment: str, path: str, named: str) -> Response:
    """The file at ``path`` of what the environment serves; a folder serves its index.html.
    An app taken down (``is_active`` false) serves nothing, as the service's runtime answers
    404 for it."""
    with ctx.store.lock:
        entry = app.environments.get(environment) if app.is_active else None
        version = app.version(int(entry["version"])) if entry else None
        key = version.archive if version is not None else None
    if key is None or not ctx.objects.exists(key):
        return _not_found(
            f"{named} serves nothing: no version is deployed to {environment} yet, or the app "
            "is taken down (is_active false)."
        )
    rel = path if path and not path.endswith("/") else f"{path}index.html"
    data = read_site_file(ctx.objects.path(key), rel)
    if data is None:
        return _not_found(
            f"{rel} is not in the version {environment} serves: the build has no such file."
        )
    media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "no-store"})


@dataclass
class HostSite:
    """What a request's ``Host`` names: an app environment's site (``app`` None when no app
    has the slug; ``slug`` empty for a name under ``localhost`` of no site's form)."""

    app: App | None
    slug: str
    environment: str
    named: str


def host_site(ctx: Context, name: str) -> HostSite | None:
    """The site a host name names, or None when it names none: the API answers those."""
    with ctx.store.lock:
        apps = list(ctx.store.state.apps.values())
        matched = SITE_HOST.match(name)
        if matched is None and name.endswith(".localhost"):
            return HostSite(None, "", "", name)  # under localhost, yet no site's form
        if matched is None:
            # A custom domain serves production once it is live, as the service's does.
            now = ctx.store.now()
            owner = next(
                (a for a in apps if (d := a.domain(name)) and d.status(now) == "active"), None
            )
            return HostSite(owner, owner.slug, "production", name) if owner else None
        slug, environment = matched["slug"], matched["environment"] or "production"
        app = next((a for a in apps if a.slug == slug), None)
        return HostSite(app, slug, environment, name)


def name_of(host: str) -> str | None:
    """The name a ``Host`` header gives, without its port; None for an address or plain
    ``localhost``, which are the emulator's own (the API's) and need no look-up."""
    name = host.strip().lower()
    bare, _, port = name.rpartition(":")
    name = (bare if port.isdigit() else name).rstrip(".").strip("[]")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name if name not in ("", "localhost") else None
    return None


def _host_answer(ctx: Context, site: HostSite, method: str, path: str) -> Response:
    if method not in ("GET", "HEAD"):
        refused = Response(
            f"{method} is not served here: {site.named} is a static site; use GET or HEAD.\n",
            status_code=405,
            media_type="text/plain",
        )
        refused.headers["Allow"] = "GET, HEAD"
        return refused
    if not site.slug:
        return _not_found(
            f"{site.named} names no site: a site's host is <slug>.<environment>.localhost or, "
            "for production, <slug>.localhost."
        )
    if site.environment not in ENVIRONMENTS:
        return _not_found(
            f"{site.named} names no environment: {site.environment} is neither production nor "
            "staging; use "
            f"{site.slug}.production.localhost (or {site.slug}.localhost) or "
            f"{site.slug}.staging.localhost."
        )
    if site.app is None:
        return _not_found(
            f"{site.named} names no app: no app has the slug {site.slug}; GET /v1/apps lists "
            "the apps and their slugs."
        )
    ctx.store.settle()
    return serve(ctx, site.app, site.environment, path.lstrip("/"), site.named)


class SiteHosts:
    """ASGI: a request whose ``Host`` names a site is that site's, whatever its path (even
    ``/v1/...``), as on the service's own hosts; every other request goes to the API."""

    def __init__(self, app: ASGIApp, ctx: Context) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
            name = name_of(host)
            site = None if name is None else await run_in_threadpool(host_site, self.ctx, name)
            if site is not None:
                answer = await run_in_threadpool(
                    _host_answer, self.ctx, site, scope["method"], scope["path"]
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
