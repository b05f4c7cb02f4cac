"""AppDomainVerification: waits until a custom domain is verified by its TXT record and live.

The Pulumi surface only; ``kinds.app_domain_verification`` does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from ..kinds.app_domain_verification import AppDomainVerificationState
from ._common import DynamicProvider, resource_props


class AppDomainVerificationProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes AppDomainVerification resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "AppDomainVerification"


@dataclass(frozen=True, kw_only=True)
class AppDomainVerificationArgs:
    """The inputs of an AppDomainVerification;
    ``kinds.app_domain_verification.AppDomainVerificationInputs`` documents each one."""

    app_id: pulumi.Input[str]
    domain: pulumi.Input[str]
    timeout_seconds: pulumi.Input[float] | None = None
    poll_interval_seconds: pulumi.Input[float] | None = None
    base_url: pulumi.Input[str] | None = None


class AppDomainVerification(Resource, module="mixpeek", name="AppDomainVerification"):
    """A custom domain verified and active, waited for (declare it after the DNS record)."""

    app_id: pulumi.Output[str]
    domain: pulumi.Output[str]
    status: pulumi.Output[str]
    verified_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: AppDomainVerificationArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppDomainVerificationArgs(**kwargs)
        props = resource_props(
            "AppDomainVerification", AppDomainVerificationState, args, resource_name
        )
        super().__init__(AppDomainVerificationProvider(), resource_name, props, opts)
