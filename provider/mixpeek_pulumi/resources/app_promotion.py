"""AppPromotion: put an exact, already-built app version into an environment, no rebuild.

The Pulumi surface only; ``kinds.app_promotion`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    Resource,
)

from ..kinds.spec import AppPromotionState
from ._common import (
    DynamicProvider,
    VerifyArgs,
    resource_props,
)


class AppPromotionProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes AppPromotion resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "AppPromotion"


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
    verify: pulumi.Input[VerifyArgs | dict[str, Any]] | None = None
    allow_older_commit: pulumi.Input[bool] | None = None


class AppPromotion(Resource, module="mixpeek", name="AppPromotion"):
    """Serves an exact, already-built app version in an environment (no upload, no rebuild)."""

    app_id: pulumi.Output[str]
    version: pulumi.Output[int]
    environment: pulumi.Output[str]
    deploy_id: pulumi.Output[str]
    asset_prefix: pulumi.Output[str]
    previous_version: pulumi.Output[int]
    rollback_version: pulumi.Output[int]
    verified: pulumi.Output[bool]
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
