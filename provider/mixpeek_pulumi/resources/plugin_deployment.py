"""PluginDeployment: a plugin source uploaded, validated and deployed until it serves.

The Pulumi surface only; ``kinds.plugin_deployment`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    Resource,
)

from ..kinds.spec import PluginDeploymentState
from ._common import (
    DynamicProvider,
    resource_props,
)


class PluginDeploymentProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes PluginDeployment resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "PluginDeployment"


@dataclass(frozen=True, kw_only=True)
class PluginDeploymentArgs:
    """The inputs of a PluginDeployment; ``spec.PluginDeploymentInputs`` documents each one."""

    namespace_id: pulumi.Input[str]
    name: pulumi.Input[str]
    version: pulumi.Input[str]
    source: pulumi.Input[str]
    description: pulumi.Input[str] | None = None
    deployment_type: pulumi.Input[str] | None = None
    timeout_seconds: pulumi.Input[float] | None = None
    poll_interval_seconds: pulumi.Input[float] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


class PluginDeployment(Resource, module="mixpeek", name="PluginDeployment"):
    """A Mixpeek plugin, validated and deployed; serving under ``route_prefix`` once up returns."""

    code_sha256: pulumi.Output[str]
    plugin_id: pulumi.Output[str]
    route_prefix: pulumi.Output[str]
    feature_uri: pulumi.Output[str]
    status: pulumi.Output[str]
    deployed: pulumi.Output[bool]
    realtime_enabled: pulumi.Output[bool]
    validation_status: pulumi.Output[str]
    deployed_at: pulumi.Output[str]
    code_files: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        resource_name: str,
        args: PluginDeploymentArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or PluginDeploymentArgs(**kwargs)
        props = resource_props(
            "PluginDeployment", PluginDeploymentState, args, resource_name, paths=("source",)
        )
        super().__init__(PluginDeploymentProvider(), resource_name, props, opts)
