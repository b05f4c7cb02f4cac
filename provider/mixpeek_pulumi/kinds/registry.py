"""The registry of resource kinds: every list of kinds (both front doors, the schema, the
tests) is read from here, so adding a kind is one line here and its own module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .app_deploy import AppDeploy
from .app_promotion import AppPromotion
from .base import AnyKind
from .plugin_deployment import PluginDeployment

_ALL: Final[tuple[AnyKind, ...]] = (AppDeploy(), AppPromotion(), PluginDeployment())
KINDS: Final[Mapping[str, AnyKind]] = {kind.name: kind for kind in _ALL}
