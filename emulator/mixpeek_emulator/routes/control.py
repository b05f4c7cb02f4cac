"""The control plane under ``/_emulator`` (no auth, never part of the API): faults, outcomes
of the next deploys, timing, what DNS the custom-domain worker sees, the request log, reset and
health. Every input is validated."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..context import Context, context
from ..faults import FaultRule, NextOutcomes
from ..state import DnsHold
from .domains import restart_held

router = APIRouter(prefix="/_emulator")
Ctx = Annotated[Context, Depends(context)]
StageSeconds = Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)]


class TimingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue_seconds: StageSeconds | None = None
    build_seconds: StageSeconds | None = None
    plugin_seconds: StageSeconds | None = None
    dns_check_seconds: StageSeconds | None = None
    tls_seconds: StageSeconds | None = None


class DnsHoldBody(BaseModel):
    """Which domains (a glob, ``*`` by default) miss their TXT record, and in how many DNS
    checks of each verification before one finds it: ``null`` (the default) for every check,
    ``0`` for none (the record is found at the first check, as without a hold)."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(default="*", min_length=1, max_length=253)
    misses: int | None = Field(default=None, ge=0, le=1_000_000, strict=True)


@router.post("/faults")
def add_fault(ctx: Ctx, rule: FaultRule) -> dict[str, Any]:
    ctx.faults.add_rule(rule)
    return {"ok": True}


@router.post("/next")
def add_next(ctx: Ctx, nxt: NextOutcomes) -> dict[str, Any]:
    ctx.faults.add_next(nxt)
    return {"ok": True}


@router.post("/timing")
def set_timing(ctx: Ctx, body: TimingBody) -> dict[str, Any]:
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(ctx.timing, name, value)
    return dict(ctx.timing.__dict__)


@router.post("/dns")
def hold_dns(ctx: Ctx, body: DnsHoldBody) -> dict[str, Any]:
    """The latest hold that matches a domain decides; domains verifying now start over."""
    pattern = body.domain.lower()
    ctx.dns.add(DnsHold(pattern, body.misses))
    restarted = restart_held(ctx, pattern)
    return {"holds": ctx.dns.listed(), "restarted": restarted}


@router.get("/requests")
def requests_log(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.faults.lock:
        return [dict(r.__dict__) for r in ctx.faults.log]


@router.post("/reset")
def reset(ctx: Ctx) -> dict[str, Any]:
    ctx.faults.reset()
    ctx.dns.clear()
    restart_held(ctx, "*")  # a domain held forever is found at its next check
    return {"ok": True}


@router.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True}
