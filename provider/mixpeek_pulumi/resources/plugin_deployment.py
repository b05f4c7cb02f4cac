"""PluginDeployment: a plugin source uploaded, validated and deployed until it serves.

The Pulumi surface only; ``deploy.plugins`` does the work.
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

from ..deploy import plugins
from ..deploy.common import validate_inputs
from ..spec import PluginDeploymentInputs, PluginDeploymentState
from ._common import (
    READ_TIMEOUT,
    MixpeekProvider,
    check_failures,
    diff_result,
    named_errors,
    resource_props,
    split_unknowns,
)


class PluginDeploymentProvider(MixpeekProvider):
    """Creates, updates, refreshes and deletes PluginDeployment resources."""

    kind = "PluginDeployment"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        known, unknown = split_unknowns(news)
        inputs, failures = validate_inputs(PluginDeploymentInputs, known, unknown)
        computed, more = plugins.check(inputs, unknown, olds)
        checked = {k: v for k, v in news.items() if k != "code_sha256"} | computed
        return CheckResult(checked, check_failures(failures + more))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        known, unknown = split_unknowns(news)
        return diff_result(plugins.diff(PluginDeploymentState.load(olds), known, unknown))

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = PluginDeploymentInputs.parse(props)
        with self.session(inputs) as (api, op):
            state = plugins.PluginRollout(api, op).create(inputs)
        return CreateResult(state.resource_id, state.to_outputs())

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = PluginDeploymentInputs.parse(news)
        with self.session(inputs) as (api, op):
            state = plugins.PluginRollout(api, op).update(PluginDeploymentState.load(olds), inputs)
        return UpdateResult(state.to_outputs())

    @named_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        state = PluginDeploymentState.load(props)
        with self.session(state, timeout=READ_TIMEOUT, name=id_) as (api, op):
            now = plugins.PluginRollout(api, op).read(state)
        return ReadResult(None, {}) if now is None else ReadResult(id_, now.to_outputs())

    @named_errors
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        state = PluginDeploymentState.load(props)
        with self.session(state, name=id_) as (api, op):
            plugins.PluginRollout(api, op).remove(state)


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
