"""Custom domains of an app: added (``pending``), read back with the DNS records that prove
and route them, removed. Verifying one is a resource of its own, which waits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field

from ..api.models import AddDomainRequest, DomainResponse
from ..errors import MixpeekError, NotFoundError
from ..run.context import Context
from .base import Kind
from .diffs import Diff, diff_inputs
from .spec import STATE_CONFIG, Identifier, Inputs, State, identifier_problem, setting

# Letters, digits and hyphens, two labels at least, the last no number (an IP is no domain).
_HOSTNAME: Final = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
RECORD_PREFIX: Final = "_mixpeek-verify."
VALUE_PREFIX: Final = "mixpeek-site-verification="


def hostname_problem(value: str) -> str | None:
    """Why ``value`` cannot be a custom domain, in words; None when it can (any case: DNS
    names ignore it)."""
    name = value.lower()
    if not name.isascii() or not _HOSTNAME.fullmatch(name):
        return (
            f"{value[:80]!r} is not a hostname: give the name alone, such as search.acme.com, "
            "without a scheme, port, path or trailing dot"
        )
    if name == "localhost" or name.endswith(".localhost"):
        return f"{value[:80]!r} is under localhost, which no DNS record can prove: give a domain you own"
    return None


def _hostname(value: str) -> str:
    problem = hostname_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Hostname = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_hostname)]


def record_name(domain: str) -> str:
    """The TXT record that proves ``domain`` is the app's."""
    return f"{RECORD_PREFIX}{domain.lower()}"


def record_value(token: str | None) -> str | None:
    """The TXT record's value for the domain's verification token."""
    return None if token is None else f"{VALUE_PREFIX}{token}"


def found(ctx: Context, app_id: str, domain: str) -> DomainResponse | None:
    """The domain as the app lists it now; None when the app or the domain is gone."""
    try:
        return ctx.api.list_domains(app_id).find(domain)
    except NotFoundError:
        return None


def domain_import_id(resource_id: str) -> tuple[str, str]:
    """The app and the domain an import names as ``<app_id>/<domain>``."""
    app_id, _, domain = resource_id.partition("/")
    problem = identifier_problem(app_id) or hostname_problem(domain)
    if problem is not None:
        raise MixpeekError(
            f"The import id {resource_id[:200]!r} names no custom domain ({problem}): use "
            "<app_id>/<domain>, such as app_abc123/search.acme.com."
        )
    return app_id, domain


class AppDomainInputs(Inputs):
    """The inputs of AppDomain."""

    app_id: Identifier = setting(change="replace")
    """The app the domain serves. Changing it replaces the resource."""
    domain: Hostname = setting(change="replace")
    """The domain, such as ``search.acme.com``: the name alone. Changing it replaces the
    resource."""
    is_primary: bool = setting(False, change="replace", strict=True)
    """Make it the app's primary domain (a new primary one takes the place of the last).
    Changing it replaces the resource."""


class AppDomainState(AppDomainInputs, State):
    """AppDomain's state: the inputs, the domain's status and the DNS records it needs."""

    model_config = STATE_CONFIG
    inputs_model = AppDomainInputs
    guaranteed = ("status", "verification_record_name")

    status: str | None = None
    """``pending`` until verified, then ``verifying``, ``provisioning_tls``, ``active``."""
    cname_target: str | None = None
    """Where the domain's CNAME record points: the app's own host."""
    verification_token: str | None = None
    """The token the service proves the domain with."""
    verification_record_name: str | None = None
    """The TXT record to create: ``_mixpeek-verify.<domain>``."""
    verification_record_value: str | None = None
    """Its value: ``mixpeek-site-verification=<token>``."""
    verified_at: str | None = None
    """When the service found the TXT record; null until it has."""

    @property
    def resource_id(self) -> str:
        return f"{self.app_id}/{self.domain}"


class AppDomain(Kind[AppDomainInputs, AppDomainState]):
    """AppDomain: a custom domain attached to an app."""

    name = "AppDomain"
    summary = (
        "A custom domain of a Mixpeek App, with the TXT record that proves it and the CNAME "
        "target that routes it."
    )
    details = (
        "Create adds the domain (`pending`); its outputs name the TXT record to create "
        "(`verificationRecordName`, `verificationRecordValue`) and the CNAME target. Delete "
        "removes the domain from the app. Any change replaces it. Import with the id "
        "`<appId>/<domain>`."
    )
    inputs = AppDomainInputs
    state = AppDomainState

    def diff(self, olds: AppDomainState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return diff_inputs(AppDomainInputs, olds.model_dump(), news, unknown)

    def create(self, ctx: Context, inputs: AppDomainInputs) -> AppDomainState:
        request = AddDomainRequest(domain=inputs.domain.lower(), is_primary=inputs.is_primary)
        added = ctx.api.add_domain(inputs.app_id, request)
        state = _state(AppDomainState(**dict(inputs)), added)
        ctx.say(
            f"added {added.domain} ({added.status}): create the TXT record "
            f"{state.verification_record_name} with the value {state.verification_record_value}"
            f" and a CNAME record to {added.cname_target}"
        )
        return state

    def update(self, ctx: Context, olds: AppDomainState, inputs: AppDomainInputs) -> AppDomainState:
        return olds.with_inputs(inputs)  # every input the service knows replaces

    def read(self, ctx: Context, state: AppDomainState) -> AppDomainState | None:
        now = found(ctx, state.app_id, state.domain)
        return None if now is None else _state(state, now)

    def delete(self, ctx: Context, state: AppDomainState) -> None:
        try:
            ctx.api.delete_domain(state.app_id, state.domain.lower())
        except NotFoundError:
            ctx.say(f"{state.domain} was already gone from app {state.app_id}")

    def import_(self, ctx: Context, resource_id: str) -> AppDomainState | None:
        app_id, domain = domain_import_id(resource_id)
        now = found(ctx, app_id, domain)
        if now is None:
            return None
        return _state(AppDomainState(app_id=app_id, domain=now.domain), now)


def _state(state: AppDomainState, now: DomainResponse) -> AppDomainState:
    return state.model_copy(
        update={
            "is_primary": now.is_primary,
            "status": now.status,
            "cname_target": now.cname_target,
            "verification_token": now.verification_token,
            "verification_record_name": record_name(state.domain),
            "verification_record_value": record_value(now.verification_token),
            "verified_at": now.verified_at,
        }
    )
