"""Promotions: put an exact, already-built app version into an environment, no rebuild.

The smoke-test gate works from documented data only. A version record names no deploy, so the
deploy that built the version is the one the program hands over (``source_deploy_id``), else
the deploy an environment serves with that version's assets. When neither is known the gate
refuses, with the sentence saying how to proceed: it never promotes silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..api.models import ENVIRONMENTS, AppResponse, DeployStatusResponse, VersionRecord
from ..errors import (
    ApiConnectionError,
    DeployFailedError,
    MixpeekError,
    NotFoundError,
    ResponseValidationError,
    ServerError,
    first_line,
)
from ..run.context import Context
from . import environments
from .base import Kind
from .diffs import Diff, diff_inputs
from .environments import (
    SERVED_NOW,
    AppEnvironment,
    Previous,
    drift,
    imported,
    nothing_as_zero,
)
from .ordering import Shipped, gate
from .spec import AppPromotionInputs, AppPromotionState
from .verify import Switch, verify_switch, verify_unchanged


class AppPromotion(Kind[AppPromotionInputs, AppPromotionState]):
    """AppPromotion: an exact, already built version served in an environment."""

    name = "AppPromotion"
    summary = (
        "Serves an exact, already built App version in an environment (an instant "
        "restore, no rebuild), gated on its deploy's smoke test."
    )
    details = (
        "No upload and no rebuild: the version is restored into the environment and checked to "
        "be served. With `requireSmokeTest`, the deploy that built the version "
        "(`sourceDeployId`) must be complete with a passing smoke test. Import with the id "
        "`<appId>/<environment>`."
    )
    inputs = AppPromotionInputs
    state = AppPromotionState

    def diff(self, olds: AppPromotionState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return diff_inputs(AppPromotionInputs, olds.model_dump(), news, unknown, extra=drift(olds))

    def create(self, ctx: Context, inputs: AppPromotionInputs) -> AppPromotionState:
        return self.promote(ctx, inputs, rollback=SERVED_NOW)

    def read(self, ctx: Context, state: AppPromotionState) -> AppPromotionState | None:
        return environments.refresh(ctx, state)

    def delete(self, ctx: Context, state: AppPromotionState) -> None:
        environments.roll_back(ctx, state, "promotion")

    def update(
        self, ctx: Context, olds: AppPromotionState, inputs: AppPromotionInputs
    ) -> AppPromotionState:
        if olds.version == inputs.version and olds.live is not False:
            return verify_unchanged(ctx, olds, olds.with_inputs(inputs))
        return self.promote(ctx, inputs, rollback=olds.rollback_version)

    def promote(
        self, ctx: Context, inputs: AppPromotionInputs, *, rollback: Previous
    ) -> AppPromotionState:
        """Restore ``inputs.version`` into the environment, check that it serves it, and
        verify the live site when ``inputs.verify`` asks to; ``rollback`` is the version
        ``on_delete="rollback"`` restores (what is served now, on a first promotion).

        Raises ``DeployFailedError`` for a missing version, a failed gate, an environment that
        did not switch, or a failed verification (after serving the version before again)."""
        env = AppEnvironment(ctx.api, inputs.app_id, inputs.environment)
        app = env.app()
        before = env.served_version(app)
        if before == inputs.version:
            # Served already: by an earlier run of this machine that did not finish (what it
            # replaced is in the journal), else by someone else, and this run switches nothing.
            before = self._pending_before(ctx, inputs)
        record = self._version(ctx, inputs)
        if inputs.require_smoke_test:
            self._gate(ctx, inputs, app, record)
        if env.served_version(app) != inputs.version:
            ours = Shipped(record.git_commit_sha, f"version {inputs.version}", Path.cwd())
            gate(ctx, env, app, ours, allow=inputs.allow_older_commit)
        self._remember_pending(ctx, inputs, before)
        expected = self._restore(ctx, inputs, env)
        app = env.app()
        now = self._switched(ctx, inputs, env, app, expected)
        ctx.say(f"{inputs.environment} now serves version {inputs.version}")
        switch = Switch(env, inputs.version, now, before, before != inputs.version, env.url(app))
        state = AppPromotionState(
            **inputs.model_dump(),
            deploy_id=now,
            asset_prefix=app.environment(inputs.environment).asset_prefix,
            previous_version=before,
            rollback_version=nothing_as_zero(before) if rollback == SERVED_NOW else rollback,
            url=env.url(app),
            live=True,
            verified=False,
        )
        verified = verify_switch(ctx, inputs.verify, switch, pending=lambda: state)
        self._forget_pending(ctx, inputs)
        return state.model_copy(update={"verified": verified})

    # The dynamic resources' memory of a switch left unverified: the engine keeps no state of
    # a failed dynamic create, so the version to restore is kept on this machine.

    def _pending_key(self, ctx: Context, inputs: AppPromotionInputs) -> tuple[str, ...]:
        return ("verify", ctx.api.base_url, inputs.app_id, inputs.environment)

    def _remember_pending(
        self, ctx: Context, inputs: AppPromotionInputs, before: int | None
    ) -> None:
        journal = ctx.journal
        if journal is not None and inputs.verify is not None and before is not None:
            journal.record(self._pending_key(ctx, inputs), f"{inputs.version}:{before}")

    def _pending_before(self, ctx: Context, inputs: AppPromotionInputs) -> int | None:
        """The version an earlier run on this machine replaced with ``inputs.version`` and
        left unverified, if the journal holds it; else None (no switch of ours)."""
        journal = ctx.journal
        entry = journal.lookup(self._pending_key(ctx, inputs)) if journal is not None else None
        promoted, _, before = entry.deploy_id.partition(":") if entry else ("", "", "")
        if promoted != str(inputs.version) or not before.isdigit():
            return inputs.version
        ctx.say(
            f"an earlier run switched {inputs.environment} to version {inputs.version} and "
            f"left it unverified ({entry.path if entry else 'the journal'}): version {before} "
            "is restored if it fails its checks"
        )
        return int(before)

    def _forget_pending(self, ctx: Context, inputs: AppPromotionInputs) -> None:
        if ctx.journal is not None:
            ctx.journal.forget(self._pending_key(ctx, inputs))

    def _switched(
        self,
        ctx: Context,
        inputs: AppPromotionInputs,
        env: AppEnvironment,
        app: AppResponse,
        expected: str | None,
    ) -> str:
        """The deploy the environment serves once it serves the version, or the refusal."""
        served = env.served_version(app)
        now = env.deploy_id(app)
        if served != inputs.version or (expected is not None and now != expected) or not now:
            raise self._refused(
                ctx,
                inputs,
                now or "",
                "not_served",
                f"after restoring version {inputs.version}, {inputs.environment} of app "
                f"{inputs.app_id} serves version {served} (deploy {now}) instead",
                "the environment did not switch",
            )
        return now

    def import_(self, ctx: Context, resource_id: str) -> AppPromotionState | None:
        """What ``pulumi import <app_id>/<environment>`` reads: the version served there."""
        found = imported(ctx.api, resource_id)
        if found is None:
            return None
        env, app = found
        record = env.served(app)
        if record is None or record.version is None:
            return None
        return AppPromotionState(
            app_id=env.app_id,
            version=record.version,
            environment=env.name,
            deploy_id=env.deploy_id(app),
            asset_prefix=app.environment(env.name).asset_prefix,
            url=env.url(app),
            live=True,
        )

    def _version(self, ctx: Context, inputs: AppPromotionInputs) -> VersionRecord:
        try:
            return ctx.api.get_version(inputs.app_id, inputs.version)
        except NotFoundError:
            raise self._refused(
                ctx,
                inputs,
                "",
                "missing",
                f"app {inputs.app_id} has no version {inputs.version} to promote to "
                f"{inputs.environment} ({self._existing(ctx, inputs.app_id)}; only completed "
                "deploys become versions)",
                "no such version",
            ) from None

    def _existing(self, ctx: Context, app_id: str) -> str:
        """The last five versions the app has, newest first, for a version that is not."""
        try:
            records = ctx.api.list_versions(app_id).records()
        except MixpeekError as exc:
            return f"its versions cannot be listed: {first_line(exc)}"
        found = sorted({r.version for r in records if r.version is not None}, reverse=True)
        if not found:
            return "it has no versions yet"
        shown = ", ".join(str(v) for v in found[:5])
        return (
            f"the last {min(5, len(found))} it has: {shown}"
            if len(found) > 1
            else f"it has only version {shown}"
        )

    def _restore(self, ctx: Context, inputs: AppPromotionInputs, env: AppEnvironment) -> str | None:
        """The restore, and the deploy id the environment should then serve (None when the
        answer was lost: the check that follows decides by the version served)."""
        try:
            return env.restore(inputs.version).deploy_id
        except (ApiConnectionError, ResponseValidationError, ServerError) as exc:
            # The restore may have landed though its answer did not: look before failing.
            if env.served_version(env.app()) != inputs.version:
                raise exc from None
            return None

    def _builder(self, ctx: Context, app: AppResponse, record: VersionRecord) -> str | None:
        """The deploy an environment serves with this version's assets, if one does."""
        for name in ENVIRONMENTS:
            entry = app.environment(name)
            same_assets = record.asset_prefix and entry.asset_prefix == record.asset_prefix
            if entry.deploy_id and (same_assets or record.serves(name)):
                return entry.deploy_id
        return None

    def _gate(
        self, ctx: Context, inputs: AppPromotionInputs, app: AppResponse, record: VersionRecord
    ) -> None:
        """Refuse a version whose deploy did not pass, or whose deploy cannot be told."""
        where = f"version {inputs.version} of app {inputs.app_id} is not promoted to "
        where += inputs.environment
        status = self._builder_status(ctx, inputs, app, record, where)
        if status.known_status != "complete" or status.smoke_failed:
            reason = _why_not_passed(status)
            raise self._refused(
                ctx,
                inputs,
                status.deploy_id,
                status.status,
                f"{where}: its deploy {status.deploy_id} did not pass ({reason}); set "
                "require_smoke_test=False to promote it anyway",
                reason,
            )

    def _builder_status(
        self,
        ctx: Context,
        inputs: AppPromotionInputs,
        app: AppResponse,
        record: VersionRecord,
        where: str,
    ) -> DeployStatusResponse:
        """The deploy that built the version, as the service has it: the one the program
        names, else the one an environment serves with its assets; a refusal when neither
        can be had or the named one did not build it."""
        deploy_id = inputs.source_deploy_id or self._builder(ctx, app, record)
        if deploy_id is None:
            raise self._refused(
                ctx,
                inputs,
                "",
                "unverified",
                f"{where}: nothing tells which deploy built it, so its smoke test cannot be "
                "checked; pass source_deploy_id (for example staging.deploy_id) or set "
                "require_smoke_test=False",
                "the deploy that built the version is unknown",
            )
        try:
            status = ctx.api.get_deploy(inputs.app_id, deploy_id)
        except NotFoundError:
            raise self._refused(
                ctx,
                inputs,
                deploy_id,
                "unverified",
                f"{where}: the service does not know deploy {deploy_id}, which should have "
                "built it; check source_deploy_id or set require_smoke_test=False",
                "unknown deploy",
            ) from None
        named = inputs.source_deploy_id is not None
        if named and status.message and record.message and status.message != record.message:
            raise self._refused(
                ctx,
                inputs,
                deploy_id,
                "mismatch",
                f"{where}: deploy {deploy_id} did not build it (their messages differ); pass "
                "the deploy that did as source_deploy_id",
                "source_deploy_id names another deploy",
            )
        return status

    def _refused(
        self,
        ctx: Context,
        inputs: AppPromotionInputs,
        deploy_id: str,
        status: str,
        text: str,
        reason: str,
    ) -> DeployFailedError:
        return ctx.failed(text, subject=deploy_id, status=status, reason=reason)


def _why_not_passed(status: DeployStatusResponse) -> str:
    smoke = status.smoke_test
    return (
        status.error
        or "; ".join((smoke.errors or []) if smoke else [])
        or ("its smoke test failed" if status.smoke_failed else f"it is {status.status}")
    )
