"""The registry of resource kinds: every list of kinds (both front doors, the schema, the
tests) is read from here, so adding a kind is one line here and its own ``Lifecycle``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .app_deploy import AppDeployLifecycle
from .app_promotion import AppPromotionLifecycle
from .base import Kind, Registered
from .plugin_deployment import PluginDeploymentLifecycle

# Each is inferred with its own models first; the tuple then holds them as the seam sees them.
_APP_DEPLOY = Registered(AppDeployLifecycle())
_APP_PROMOTION = Registered(AppPromotionLifecycle())
_PLUGIN_DEPLOYMENT = Registered(PluginDeploymentLifecycle())
_ALL: Final[tuple[Kind, ...]] = (_APP_DEPLOY, _APP_PROMOTION, _PLUGIN_DEPLOYMENT)
KINDS: Final[Mapping[str, Kind]] = {kind.name: kind for kind in _ALL}
