"""AppPromotion: put an exact, already-built app version into an environment, no rebuild.

The Pulumi surface only; ``deploy.promotions`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from ..deploy import promotions
from ..deploy.common import validate_inputs
from ..deploy.environments import refresh, roll_back
from ..spec import AppPromotionInputs, AppPromotionState
from ._common import (
    READ_TIMEOUT,
    MixpeekProvider,
    check_failures,
    diff_result,
    named_errors,
    resource_props,
    split_unknowns,
)


class AppPromotionProvider(MixpeekProvider):
    """Creates, updates, refreshes and deletes AppPromotion resources."""

    kind = "AppPromotion"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        known, unknown = split_unknowns(news)
        _, failures = validate_inputs(AppPromotionInputs, known, unknown)
        return CheckResult(news, check_failures(failures))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        known, unknown = split_unknowns(news)
        return diff_result(promotions.diff(AppPromotionState.load(olds), known, unknown))

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = AppPromotionInputs.parse(props)
        with self.session(inputs) as (api, op):
            state = promotions.Promoter(api, op).promote(inputs, previous=None, first=True)
        return CreateResult(state.resource_id, state.to_outputs())

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = AppPromotionInputs.parse(news)
        with self.session(inputs) as (api, op):
            state = promotions.Promoter(api, op).update(AppPromotionState.load(olds), inputs)
        return UpdateResult(state.to_outputs())

    @named_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        state = AppPromotionState.load(props)
        with self.session(state, timeout=READ_TIMEOUT, name=id_) as (api, _):
            now = refresh(api, state)
        return ReadResult(None, {}) if now is None else ReadResult(id_, now.to_outputs())

    @named_errors
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        state = AppPromotionState.load(props)
        with self.session(state, name=id_) as (api, op):
            roll_back(api, op, state, "promotion")


@dataclass(frozen=True, kw_only=True)
class AppPromotionArgs:
    """The inputs of an AppPromotion; ``spec.AppPromotionInputs`` documents each one."""

    app_id: pulumi.Input[str]
    version: pulumi.Input[int]
    environment: pulumi.Input[str] | None = None
    source_deploy_id: pulumi.Input[str] | None = None
    require_smoke_test: pulumi.Input[bool] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


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
        props = resource_props("AppPromotion", AppPromotionState, args, resource_name)
        super().__init__(AppPromotionProvider(), resource_name, props, opts)
