"""AppDomain: a custom domain added to a Mixpeek App, with the DNS records it needs.

The Pulumi surface only; ``kinds.app_domain`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from ..kinds.app_domain import AppDomainState
from ._common import DynamicProvider, resource_props


class AppDomainProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes AppDomain resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "AppDomain"


@dataclass(frozen=True, kw_only=True)
class AppDomainArgs:
    """The inputs of an AppDomain; ``kinds.app_domain.AppDomainInputs`` documents each one."""

    app_id: pulumi.Input[str]
    domain: pulumi.Input[str]
    is_primary: pulumi.Input[bool] | None = None
    base_url: pulumi.Input[str] | None = None


class AppDomain(Resource, module="mixpeek", name="AppDomain"):
    """A custom domain of an app; its outputs name the TXT record that proves it
    (``verification_record_name``, ``verification_record_value``) and the CNAME target."""

    app_id: pulumi.Output[str]
    domain: pulumi.Output[str]
    is_primary: pulumi.Output[bool]
    status: pulumi.Output[str]
    cname_target: pulumi.Output[str]
    verification_token: pulumi.Output[str]
    verification_record_name: pulumi.Output[str]
    verification_record_value: pulumi.Output[str]
    verified_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: AppDomainArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppDomainArgs(**kwargs)
        props = resource_props("AppDomain", AppDomainState, args, resource_name)
        super().__init__(AppDomainProvider(), resource_name, props, opts)
