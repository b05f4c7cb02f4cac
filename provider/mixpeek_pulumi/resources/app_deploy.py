"""AppDeploy: a build folder or .zip turned into a live Mixpeek App deploy, waited for.

The Pulumi surface only; ``deploy.apps`` does the work.
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

from ..deploy import apps
from ..deploy.common import validate_inputs
from ..deploy.environments import refresh, roll_back
from ..spec import AppDeployInputs, AppDeployState
from ._common import (
    READ_TIMEOUT,
    MixpeekProvider,
    check_failures,
    diff_result,
    named_errors,
    resource_props,
    split_unknowns,
)


class AppDeployProvider(MixpeekProvider):
    """Creates, updates, refreshes and deletes AppDeploy resources."""

    kind = "AppDeploy"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        known, unknown = split_unknowns(news)
        inputs, failures = validate_inputs(AppDeployInputs, known, unknown)
        computed, more = apps.check(inputs, unknown)
        checked = {k: v for k, v in news.items() if k != "bundle_sha256"} | computed
        return CheckResult(checked, check_failures(failures + more))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        known, unknown = split_unknowns(news)
        return diff_result(apps.diff(AppDeployState.load(olds), known, unknown))

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = AppDeployInputs.parse(props)
        with self.session(inputs) as (api, op):
            state = apps.AppDeployer(api, op).deploy(inputs, previous=None, first=True)
        return CreateResult(state.resource_id, state.to_outputs())

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = AppDeployInputs.parse(news)
        with self.session(inputs) as (api, op):
            state = apps.AppDeployer(api, op).update(AppDeployState.load(olds), inputs)
        return UpdateResult(state.to_outputs())

    @named_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        state = AppDeployState.load(props)
        with self.session(state, timeout=READ_TIMEOUT, name=id_) as (api, _):
            now = refresh(api, state)
        return ReadResult(None, {}) if now is None else ReadResult(id_, now.to_outputs())

    @named_errors
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        state = AppDeployState.load(props)
        with self.session(state, name=id_) as (api, op):
            roll_back(api, op, state, "deploy")


@dataclass(frozen=True, kw_only=True)
class AppDeployArgs:
    """The inputs of an AppDeploy; ``spec.AppDeployInputs`` documents each one."""

    app_id: pulumi.Input[str]
    bundle: pulumi.Input[str]
    environment: pulumi.Input[str] | None = None
    message: pulumi.Input[str] | None = None
    git_commit_sha: pulumi.Input[str] | None = None
    git_commit_message: pulumi.Input[str] | None = None
    git_author: pulumi.Input[str] | None = None
    exclude: pulumi.Input[list[str]] | None = None
    include_source_files: pulumi.Input[bool] | None = None
    timeout_seconds: pulumi.Input[float] | None = None
    poll_interval_seconds: pulumi.Input[float] | None = None
    require_smoke_test: pulumi.Input[bool] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


class AppDeploy(Resource, module="mixpeek", name="AppDeploy"):
    """A Mixpeek App deploy of a build folder or .zip, live once ``pulumi up`` returns."""

    app_id: pulumi.Output[str]
    environment: pulumi.Output[str]
    bundle_sha256: pulumi.Output[str]
    deploy_id: pulumi.Output[str]
    version: pulumi.Output[int]
    status: pulumi.Output[str]
    bundle_s3_key: pulumi.Output[str]
    bundle_size: pulumi.Output[int]
    file_count: pulumi.Output[int]
    url: pulumi.Output[str]
    smoke_test: pulumi.Output[dict[str, Any]]
    queued_at: pulumi.Output[str]
    live: pulumi.Output[bool]
    deploy_message: pulumi.Output[str]
    previous_version: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        args: AppDeployArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppDeployArgs(**kwargs)
        props = resource_props("AppDeploy", AppDeployState, args, resource_name, paths=("bundle",))
        super().__init__(AppDeployProvider(), resource_name, props, opts)
