"""The custom-domain routes of an app: add, list, remove, and ask for DNS verification."""

from __future__ import annotations

import fnmatch
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ..context import ApiFailure, Body, Context, context, not_found
from ..state import App, Domain
from ..state.domains import hostname
from .apps import app_or_404

router = APIRouter()
Ctx = Annotated[Context, Depends(context)]


def _domain_or_404(app: App, name: str) -> Domain:
    found = app.domain(hostname(name) or name)
    if found is None:
        raise not_found("domain", name)
    return found


@router.get("/apps/{app_id}/domains")
def list_domains(ctx: Ctx, app_id: str) -> dict[str, Any]:
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        now = ctx.store.now()
        return {
            "domains": [d.response_json(app.slug, now) for d in app.domains],
            "total": len(app.domains),
        }


@router.post("/apps/{app_id}/domains")
def add_domain(ctx: Ctx, app_id: str, body: Body) -> dict[str, Any]:
    """A domain is attached to one app at a time, whichever its case; a new primary one takes
    the place of the app's previous primary."""
    name = hostname(body["domain"])
    if name is None:
        raise ApiFailure(
            400,
            "BadRequestError",
            f"Domain {body['domain']!r} is not a hostname: give the name alone, such as "
            "search.acme.com, without a scheme, port, path or trailing dot.",
            code="invalid_domain",
            details={"domain": body["domain"]},
        )
    if name == "localhost" or name.endswith(".localhost"):
        raise ApiFailure(
            400,
            "BadRequestError",
            f"Domain {name} is not a public hostname: names under localhost are loopback's "
            "(RFC 6761) and no DNS record can prove them; give a domain you own, such as "
            "search.acme.com.",
            code="invalid_domain",
            details={"domain": body["domain"]},
        )
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        holder = next((a for a in ctx.store.state.apps.values() if a.domain(name)), None)
        if holder is not None:
            where = "this app" if holder is app else f"app {holder.app_id}"
            raise ApiFailure(
                400,
                "BadRequestError",
                f"Domain {name} is already attached to {where}: remove it there first "
                f"(DELETE /v1/apps/{holder.app_id}/domains/{name}), or choose another.",
                code="domain_taken",
                details={"domain": name, "app_id": holder.app_id},
            )
        primary = bool(body.get("is_primary"))
        if primary:
            for other in app.domains:
                other.is_primary = False
        domain = Domain(
            domain=name,
            verification_token=secrets.token_hex(16),
            is_primary=primary,
            added_at=ctx.store.clock.time(),
        )
        app.domains.append(domain)
        ctx.store.save()
        return domain.response_json(app.slug, ctx.store.now())


@router.delete("/apps/{app_id}/domains/{domain}")
def delete_domain(ctx: Ctx, app_id: str, domain: str) -> dict[str, Any]:
    """``GenericDeleteResponse``; a verification under way ends with it."""
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        app.domains.remove(_domain_or_404(app, domain))
        ctx.store.save()
    return {"message": "Successfully deleted", "success": True}


@router.post("/apps/{app_id}/domains/{domain}/verify")
def verify_domain(ctx: Ctx, app_id: str, domain: str) -> dict[str, Any]:
    """``verifying`` at once, as the SDK says; the worker's checks start over from now. A
    domain whose record was already found (TLS under way, or active) is left as it is."""
    with ctx.store.lock:
        app = app_or_404(ctx, app_id)
        found = _domain_or_404(app, domain)
        now = ctx.store.now()
        if found.status(now) in ("pending", "verifying"):
            found.verify(now, ctx.store.clock.time(), ctx.timing, ctx.dns.misses(found.domain))
            ctx.store.save()
            # As the SDK says, whatever the worker's first check finds a moment later.
            return {
                **found.response_json(app.slug, now),
                "status": "verifying",
                "verified_at": None,
            }
        return found.response_json(app.slug, now)


def restart_held(ctx: Context, pattern: str) -> list[str]:
    """Start over the checks of every domain verifying now that ``pattern`` (a glob) matches,
    under the holds as they are now, so a hold applies from when it is set whatever the order
    of the calls. Returns those domains."""
    with ctx.store.lock:
        now, wall = ctx.store.now(), ctx.store.clock.time()
        restarted = []
        for app in ctx.store.state.apps.values():
            for domain in app.domains:
                if domain.status(now) == "verifying" and fnmatch.fnmatchcase(
                    domain.domain, pattern
                ):
                    domain.verify(now, wall, ctx.timing, ctx.dns.misses(domain.domain))
                    restarted.append(domain.domain)
        if restarted:
            ctx.store.save()
    return restarted
