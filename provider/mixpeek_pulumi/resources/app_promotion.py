"""AppPromotion: put an exact, already-built app version into an environment, no rebuild.

Create and update restore that version into the environment and then verify the environment
serves it. Nothing is uploaded and nothing is built: the bytes that were tested are the bytes
that go live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, Resource, UpdateResult
from pydantic import Field

from ..client import MixpeekClient
from ..errors import (
    ApiConnectionError,
    DeployFailedError,
    NotFoundError,
    ResponseValidationError,
    ServerError,
)
from ..models import Environment
from ._common import (
    Inputs,
    as_int,
    changed_keys,
    echo,
    named_errors,
    normalized,
    resource_props,
    validate,
)
from ._environment import EnvironmentProvider, environment_url, served_version


class AppPromotionInputs(Inputs):
    app_id: str = Field(min_length=1)
    """The app. Changing it replaces the resource."""
    version: int = Field(gt=0)
    """The version to serve, e.g. ``staging.version``. Changing it updates (an instant restore)."""
    environment: Environment = "production"
    """Where to serve it. Changing it replaces the resource."""
    require_smoke_test: bool = True
    """Refuse a version whose deploy's smoke test failed."""
    on_delete: Literal["retain", "rollback"] = "retain"


REPLACE_KEYS: Final = ("app_id", "environment", "base_url")
UPDATE_KEYS: Final = ("version", "require_smoke_test", "on_delete", "resource_name")
OUTPUT_KEYS: Final = ("deploy_id", "asset_prefix", "previous_version", "url", "live")


@dataclass(frozen=True, kw_only=True)
class AppPromotionArgs:
    app_id: pulumi.Input[str]
    version: pulumi.Input[int]
    environment: pulumi.Input[str] | None = None
    require_smoke_test: pulumi.Input[bool] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


class AppPromotionProvider(EnvironmentProvider):
    kind = "AppPromotion"
    what = "promotion"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        _, failures = validate(AppPromotionInputs, news)
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(AppPromotionInputs, olds, news, REPLACE_KEYS)
        updates = changed_keys(AppPromotionInputs, olds, news, UPDATE_KEYS)
        drifted = olds.get("live") is False
        return DiffResult(changes=bool(replaces or updates or drifted), replaces=replaces)

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = AppPromotionInputs.model_validate(normalized(AppPromotionInputs, props))
        outs = self._promote(inputs, previous=None, first=True)
        return CreateResult(f"{inputs.app_id}/{inputs.environment}", outs)

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = AppPromotionInputs.model_validate(normalized(AppPromotionInputs, news))
        if as_int(olds.get("version")) == inputs.version and olds.get("live") is not False:
            return UpdateResult({**olds, **inputs.model_dump(mode="json")})
        return UpdateResult(
            self._promote(inputs, previous=as_int(olds.get("previous_version")), first=False)
        )

    def _promote(
        self, inputs: AppPromotionInputs, *, previous: int | None, first: bool
    ) -> dict[str, Any]:
        name = inputs.resource_name
        who = f"AppPromotion '{name}'"
        with self.client(inputs.base_url, name) as api:
            app = api.get_app(inputs.app_id)
            if first:
                previous = served_version(api, app, inputs.environment)
            try:
                record = api.get_version(inputs.app_id, inputs.version)
            except NotFoundError:
                raise DeployFailedError(
                    f"{who}: app {inputs.app_id} has no version {inputs.version} to promote to "
                    f"{inputs.environment} (only completed deploys become versions)",
                    resource=name,
                    deploy_id="",
                    status="missing",
                    reason="no such version",
                ) from None
            if inputs.require_smoke_test and record.deploy_id:
                self._require_smoke(api, inputs, who, record.deploy_id)
            expected = record.deploy_id
            lost: Exception | None = None
            try:
                restored = api.restore_version(inputs.app_id, inputs.version, inputs.environment)
                expected = restored.deploy_id
            except (ApiConnectionError, ResponseValidationError, ServerError) as exc:
                # The restore may have landed though its answer did not: look before failing.
                if expected is None:
                    raise
                lost = exc
            app = api.get_app(inputs.app_id)
            served = app.environment(inputs.environment)
            if served.deploy_id != expected and lost is not None:
                raise lost
            if served.deploy_id != expected:
                raise DeployFailedError(
                    f"{who}: after restoring version {inputs.version}, {inputs.environment} of app "
                    f"{inputs.app_id} serves deploy {served.deploy_id} instead of {expected}",
                    resource=name,
                    deploy_id=str(expected),
                    status="not_served",
                    reason="the environment did not switch",
                )
            echo(self.kind, name)(f"{inputs.environment} now serves version {inputs.version}")
            return {
                **inputs.model_dump(mode="json"),
                "deploy_id": expected,
                "asset_prefix": served.asset_prefix,
                "previous_version": previous,
                "url": environment_url(app, inputs.environment),
                "live": True,
            }

    def _require_smoke(
        self, api: MixpeekClient, inputs: AppPromotionInputs, who: str, deploy_id: str
    ) -> None:
        try:
            status = api.get_deploy(inputs.app_id, deploy_id)
        except NotFoundError:
            return
        smoke = status.smoke_test
        if status.known_status == "failed" or (smoke is not None and not smoke.passed):
            reason = (
                status.error or "; ".join(smoke.errors if smoke else []) or "its smoke test failed"
            )
            raise DeployFailedError(
                f"{who}: version {inputs.version} of app {inputs.app_id} is not promoted to "
                f"{inputs.environment}: its deploy {deploy_id} did not pass ({reason}); set "
                "require_smoke_test=False to promote it anyway",
                resource=inputs.resource_name,
                deploy_id=deploy_id,
                status=status.status,
                reason=reason,
            )


class AppPromotion(Resource, module="mixpeek", name="AppPromotion"):
    """Serves an exact, already-built app version in an environment (no upload, no rebuild)."""

    app_id: pulumi.Output[str]
    version: pulumi.Output[int]
    environment: pulumi.Output[str]
    deploy_id: pulumi.Output[str]
    asset_prefix: pulumi.Output[str]
    previous_version: pulumi.Output[int]
    url: pulumi.Output[str]
    live: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        args: AppPromotionArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppPromotionArgs(**kwargs)
        props = resource_props(args, OUTPUT_KEYS, resource_name)
        super().__init__(AppPromotionProvider(), resource_name, props, opts)
