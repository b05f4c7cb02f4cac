"""AppDeploy: a build folder or .zip turned into a live Mixpeek App deploy, waited for.

The Pulumi surface only; ``kinds.app_deploy`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    Resource,
)

from ..kinds.spec import AppDeployState
from ._common import (
    DynamicProvider,
    VerifyArgs,
    resource_props,
)


class AppDeployProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes AppDeploy resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "AppDeploy"


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
    verify: pulumi.Input[VerifyArgs | dict[str, Any]] | None = None
    allow_older_commit: pulumi.Input[bool] | None = None


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
    rollback_version: pulumi.Output[int]
    verified: pulumi.Output[bool]
    bundle_files: pulumi.Output[dict[str, str]]

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
