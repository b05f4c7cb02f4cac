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
from .resources.app_deploy import AppDeploy, AppDeployArgs
from .resources.app_promotion import AppPromotion, AppPromotionArgs

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
    "__version__",
]
