"""Pulumi dynamic resources that deploy Mixpeek Apps and Plugins."""

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
from .resources._common import VerifyArgs
from .resources.app_deploy import AppDeploy, AppDeployArgs
from .resources.app_promotion import AppPromotion, AppPromotionArgs
from .resources.plugin_deployment import PluginDeployment, PluginDeploymentArgs

__all__ = [
    "ApiError",
    "AppDeploy",
    "AppDeployArgs",
    "AppPromotion",
    "AppPromotionArgs",
    "BundleError",
    "ConfigError",
    "DeployError",
    "DeployFailedError",
    "DeployTimeoutError",
    "MixpeekError",
    "PluginDeployment",
    "PluginDeploymentArgs",
    "VerifyArgs",
    "__version__",
]
