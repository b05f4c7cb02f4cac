"""Pulumi dynamic resources that deploy Mixpeek Apps and Plugins.

The resources are imported when first named (``from mixpeek_pulumi import AppDeploy`` works as
ever): they bring in the Pulumi SDK, which the native provider plugin, a user of this package
too, never needs and would otherwise load at every start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ApiError,
    BundleError,
    ConfigError,
    DeployError,
    DeployFailedError,
    DeployTimeoutError,
    MixpeekError,
)

if TYPE_CHECKING:
    from .resources._common import VerifyArgs
    from .resources.app import (
        App,
        AppApiAllowArgs,
        AppArgs,
        AppAuthConfigArgs,
        AppBuildConfigArgs,
        AppMetaArgs,
        AppMonitoringArgs,
    )
    from .resources.app_deploy import AppDeploy, AppDeployArgs
    from .resources.app_domain import AppDomain, AppDomainArgs
    from .resources.app_domain_verification import (
        AppDomainVerification,
        AppDomainVerificationArgs,
    )
    from .resources.app_promotion import AppPromotion, AppPromotionArgs
    from .resources.get_app import GetAppResult, get_app
    from .resources.plugin_deployment import PluginDeployment, PluginDeploymentArgs

_LAZY = {
    "VerifyArgs": ".resources._common",
    "App": ".resources.app",
    "AppArgs": ".resources.app",
    "AppApiAllowArgs": ".resources.app",
    "AppAuthConfigArgs": ".resources.app",
    "AppBuildConfigArgs": ".resources.app",
    "AppMetaArgs": ".resources.app",
    "AppMonitoringArgs": ".resources.app",
    "AppDomain": ".resources.app_domain",
    "get_app": ".resources.get_app",
    "GetAppResult": ".resources.get_app",
    "AppDomainArgs": ".resources.app_domain",
    "AppDomainVerification": ".resources.app_domain_verification",
    "AppDomainVerificationArgs": ".resources.app_domain_verification",
    "AppDeploy": ".resources.app_deploy",
    "AppDeployArgs": ".resources.app_deploy",
    "AppPromotion": ".resources.app_promotion",
    "AppPromotionArgs": ".resources.app_promotion",
    "PluginDeployment": ".resources.plugin_deployment",
    "PluginDeploymentArgs": ".resources.plugin_deployment",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ApiError",
    "App",
    "AppApiAllowArgs",
    "AppArgs",
    "AppAuthConfigArgs",
    "AppBuildConfigArgs",
    "AppDeploy",
    "AppDeployArgs",
    "AppDomain",
    "AppDomainArgs",
    "AppDomainVerification",
    "AppDomainVerificationArgs",
    "AppMetaArgs",
    "AppMonitoringArgs",
    "AppPromotion",
    "AppPromotionArgs",
    "BundleError",
    "ConfigError",
    "DeployError",
    "DeployFailedError",
    "DeployTimeoutError",
    "GetAppResult",
    "MixpeekError",
    "PluginDeployment",
    "PluginDeploymentArgs",
    "VerifyArgs",
    "__version__",
    "get_app",
]
