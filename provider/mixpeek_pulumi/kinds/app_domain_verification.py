"""The verification of a custom domain: ask the service to look for the domain's TXT record,
then wait until the domain is ``active`` (record found, certificate live), or say in one
sentence which record it still waits for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..api.models import DomainResponse
from ..errors import DeployError
from ..run.context import Context
from ..run.waiting import Poller, await_terminal
from .app_domain import Hostname, domain_import_id, found, record_name, record_value
from .base import Kind
from .diffs import Diff, diff_inputs
from .spec import (
    MAX_POLL_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_POLL_SECONDS,
    STATE_CONFIG,
    Identifier,
    Inputs,
    Seconds,
    State,
    setting,
)

ACTIVE: Final = "active"


class AppDomainVerificationInputs(Inputs):
    """The inputs of AppDomainVerification."""

    app_id: Identifier = setting(change="replace")
    """The app the domain belongs to. Changing it replaces the resource."""
    domain: Hostname = setting(change="replace")
    """The domain to verify, added to the app already. Changing it replaces the resource."""
    timeout_seconds: Seconds = setting(3600, change="none", gt=0, le=MAX_TIMEOUT_SECONDS)
    """How long create waits for the domain to be ``active`` (the service checks DNS every 30
    minutes); the native provider's ``customTimeouts``, where set, take its place."""
    poll_interval_seconds: Seconds = setting(
        30, change="none", ge=MIN_POLL_SECONDS, le=MAX_POLL_SECONDS
    )
    """How often the domain's status is read while waiting."""


class AppDomainVerificationState(AppDomainVerificationInputs, State):
    """AppDomainVerification's state: the inputs and the domain's status."""

    model_config = STATE_CONFIG
    inputs_model = AppDomainVerificationInputs
    guaranteed = ("status", "verified_at")

    status: str | None = None
    """``active`` once verified; what the service reports since, after a refresh."""
    verified_at: str | None = None
    """When the service found the domain's TXT record."""

    @property
    def resource_id(self) -> str:
        return f"{self.app_id}/{self.domain}"


class AppDomainVerification(Kind[AppDomainVerificationInputs, AppDomainVerificationState]):
    """AppDomainVerification: a custom domain verified and live, waited for."""

    name = "AppDomainVerification"
    summary = (
        "Waits until a custom domain of a Mixpeek App is verified by its TXT record and "
        "served over TLS (`active`)."
    )
    details = (
        "Create asks the service to verify the domain and waits until it is `active`, for at "
        "most `timeoutSeconds`; past it, the error names the TXT record still missing. A "
        "refresh that finds the domain no longer active makes the next update verify again. "
        "Delete sends nothing. Import with the id `<appId>/<domain>`."
    )
    inputs = AppDomainVerificationInputs
    state = AppDomainVerificationState

    def diff(
        self, olds: AppDomainVerificationState, news: Mapping[str, Any], unknown: set[str]
    ) -> Diff:
        lapsed = ("status",) if olds.status != ACTIVE else ()
        return diff_inputs(
            AppDomainVerificationInputs, olds.model_dump(), news, unknown, extra=lapsed
        )

    def create(
        self, ctx: Context, inputs: AppDomainVerificationInputs
    ) -> AppDomainVerificationState:
        return self.verify(ctx, inputs)

    def update(
        self,
        ctx: Context,
        olds: AppDomainVerificationState,
        inputs: AppDomainVerificationInputs,
    ) -> AppDomainVerificationState:
        if olds.status == ACTIVE:
            return olds.with_inputs(inputs)
        return self.verify(ctx, inputs)

    def verify(
        self, ctx: Context, inputs: AppDomainVerificationInputs
    ) -> AppDomainVerificationState:
        """Ask for the verification unless the domain is active already, then wait until it
        is. Raises ``DeployFailedError`` when the domain is not the app's, and
        ``DeployTimeoutError`` naming the TXT record at the deadline or on Cancel."""
        domain = inputs.domain.lower()
        now = found(ctx, inputs.app_id, domain)
        if now is None:
            raise self._missing(ctx, inputs)
        if now.status != ACTIVE:
            now = ctx.api.verify_domain(inputs.app_id, domain)
            ctx.say(
                f"verifying {domain}: waiting for the TXT record {record_name(domain)} = "
                f"{record_value(now.verification_token)}"
            )
            now = self._wait(ctx, inputs, now)
        ctx.say(f"{domain} is {ACTIVE}")
        return AppDomainVerificationState(
            **dict(inputs), status=now.status, verified_at=now.verified_at
        )

    def _wait(
        self, ctx: Context, inputs: AppDomainVerificationInputs, first: DomainResponse
    ) -> DomainResponse:
        domain = inputs.domain.lower()
        seen = [first.status]
        token = first.verification_token

        def said(now: DomainResponse | None) -> None:
            if now is not None and now.status != seen[-1]:
                seen.append(now.status)
                ctx.say(f"{domain} is {now.status}")

        poller: Poller[DomainResponse | None] = Poller(
            fetch=lambda: found(ctx, inputs.app_id, domain),
            is_terminal=lambda now: now is None or now.status == ACTIVE,
            deadline=ctx.deadline,
            interval=inputs.poll_interval_seconds,
            on_status=said,
            on_problem=ctx.say,
        )

        def timed_out(last: DomainResponse | None) -> DeployError:
            return ctx.timed_out(
                f"the verification of {domain}, waiting for the TXT record "
                f"{record_name(domain)} with the value {record_value(token)},",
                subject=domain,
                status=last.status if last is not None else seen[-1],
                then="create the record at the domain's DNS host, then run the update again "
                "(the service keeps checking for up to 72 hours)",
            )

        now = await_terminal(poller, timed_out)
        if now is None:
            raise self._missing(ctx, inputs)
        return now

    def _missing(self, ctx: Context, inputs: AppDomainVerificationInputs) -> DeployError:
        return ctx.failed(
            f"app {inputs.app_id} has no custom domain {inputs.domain}: add the domain to the "
            "app first (and make this resource depend on it)",
            subject=inputs.domain,
            status="missing",
            reason="no such domain",
        )

    def read(
        self, ctx: Context, state: AppDomainVerificationState
    ) -> AppDomainVerificationState | None:
        now = found(ctx, state.app_id, state.domain)
        if now is None:
            return None
        return state.model_copy(update={"status": now.status, "verified_at": now.verified_at})

    def delete(self, ctx: Context, state: AppDomainVerificationState) -> None:
        """Nothing at the service: a verified domain stays verified until it is removed."""

    def import_(self, ctx: Context, resource_id: str) -> AppDomainVerificationState | None:
        app_id, domain = domain_import_id(resource_id)
        now = found(ctx, app_id, domain)
        if now is None:
            return None
        return AppDomainVerificationState(
            app_id=app_id, domain=now.domain, status=now.status, verified_at=now.verified_at
        )
