"""The emulator's state: apps, their custom domains, deploys, versions, plugins and uploads,
their rules, how each is shown on the wire, and the store that keeps and persists them.

Split by job: ``apps`` and ``plugins`` hold each family's records, rules and official JSON,
``domains`` an app's custom domains and their verification; ``common`` what they share;
``persistence`` the ``state.json`` format; ``store`` the lock, saving and settling. The names
stay importable from here, where routes, tests and tools always found them.
"""

from .apps import APP_SETTINGS, ENVIRONMENTS, App, Deploy, Version
from .common import EXTENSIONS, Timing, iso, new_id
from .domains import DnsHold, DnsHolds, Domain
from .persistence import State
from .plugins import STATUS_CASES, Plugin, PluginUpload, StatusCase
from .store import Store

__all__ = [
    "APP_SETTINGS",
    "ENVIRONMENTS",
    "EXTENSIONS",
    "STATUS_CASES",
    "App",
    "Deploy",
    "DnsHold",
    "DnsHolds",
    "Domain",
    "Plugin",
    "PluginUpload",
    "State",
    "StatusCase",
    "Store",
    "Timing",
    "Version",
    "iso",
    "new_id",
]
