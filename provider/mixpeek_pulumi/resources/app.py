"""App: a Mixpeek App's settings as code (its slug, chrome, access, build and monitoring).

The Pulumi surface only; ``kinds.app`` does the work. The password and the build secrets'
values are made secret by the resource itself (``resource_props``), whatever the program did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from ..kinds.app import AppState
from ._common import DynamicProvider, resource_props


class AppProvider(DynamicProvider):
    """Creates, updates, refreshes and deletes App resources through its kind (``kinds.registry``); its module path and name are pickled into users' stacks, so they never move."""

    kind = "App"


@dataclass(frozen=True, kw_only=True)
class AppMetaArgs:
    """The app's chrome; ``kinds.app.AppMeta`` documents each field."""

    title: pulumi.Input[str]
    description: pulumi.Input[str] | None = None
    logo_url: pulumi.Input[str] | None = None
    favicon_url: pulumi.Input[str] | None = None
    indexable: pulumi.Input[bool] | None = None


@dataclass(frozen=True, kw_only=True)
class AppAuthConfigArgs:
    """Who may open the app; ``kinds.app.AuthConfig`` documents each field. ``password`` is
    kept secret by the resource."""

    mode: pulumi.Input[str] | None = None
    clerk_allowed_providers: pulumi.Input[list[str]] | None = None
    password: pulumi.Input[str] | None = None
    saml_idp_metadata_url: pulumi.Input[str] | None = None
    saml_sp_entity_id: pulumi.Input[str] | None = None
    saml_acs_url: pulumi.Input[str] | None = None
    oidc_issuer: pulumi.Input[str] | None = None
    oidc_client_id: pulumi.Input[str] | None = None
    oidc_client_secret_name: pulumi.Input[str] | None = None
    oidc_scopes: pulumi.Input[list[str]] | None = None
    jwt_jwks_url: pulumi.Input[str] | None = None
    jwt_audience: pulumi.Input[str] | None = None
    jwt_issuer: pulumi.Input[str] | None = None


@dataclass(frozen=True, kw_only=True)
class AppApiAllowArgs:
    """One widening of the app's ``/api`` proxy allowlist."""

    pattern: pulumi.Input[str]
    methods: pulumi.Input[list[str]] | None = None


@dataclass(frozen=True, kw_only=True)
class AppBuildConfigArgs:
    """How the app is built; ``kinds.app.AppBuildConfig`` documents each field. Each value of
    ``secrets`` is kept secret by the resource."""

    entry: pulumi.Input[str] | None = None
    framework: pulumi.Input[str] | None = None
    tailwind: pulumi.Input[bool] | None = None
    env_vars: pulumi.Input[dict[str, str]] | None = None
    secrets: pulumi.Input[dict[str, str]] | None = None
    api_allow: pulumi.Input[list[AppApiAllowArgs | dict[str, Any]]] | None = None


@dataclass(frozen=True, kw_only=True)
class AppMonitoringArgs:
    """Opt-in monitoring; ``kinds.app.AppMonitoring`` documents each field."""

    enabled: pulumi.Input[bool] | None = None
    error_boundary_enabled: pulumi.Input[bool] | None = None
    sentry_enabled: pulumi.Input[bool] | None = None
    posthog_enabled: pulumi.Input[bool] | None = None
    custom_error_message: pulumi.Input[str] | None = None
    auto_fix_enabled: pulumi.Input[bool] | None = None


@dataclass(frozen=True, kw_only=True)
class AppArgs:
    """The inputs of an App; ``kinds.app.AppInputs`` documents each one. Nested settings take
    their Args classes or plain dicts with the same snake_case keys."""

    slug: pulumi.Input[str]
    meta: pulumi.Input[AppMetaArgs | dict[str, Any]]
    auth_config: pulumi.Input[AppAuthConfigArgs | dict[str, Any]] | None = None
    build_config: pulumi.Input[AppBuildConfigArgs | dict[str, Any]] | None = None
    monitoring_config: pulumi.Input[AppMonitoringArgs | dict[str, Any]] | None = None
    is_active: pulumi.Input[bool] | None = None
    base_url: pulumi.Input[str] | None = None


class App(Resource, module="mixpeek", name="App"):
    """A Mixpeek App: its slug (its address ``<slug>.mxp.co``), chrome, access, build and
    monitoring settings; ``app_id`` feeds AppDeploy, AppPromotion and AppDomain."""

    slug: pulumi.Output[str]
    meta: pulumi.Output[dict[str, Any]]
    auth_config: pulumi.Output[dict[str, Any]]
    build_config: pulumi.Output[dict[str, Any]]
    monitoring_config: pulumi.Output[dict[str, Any]]
    is_active: pulumi.Output[bool]
    app_id: pulumi.Output[str]
    url: pulumi.Output[str]
    version: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        args: AppArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppArgs(**kwargs)
        props = resource_props("App", AppState, args, resource_name)
        super().__init__(AppProvider(), resource_name, props, opts)
