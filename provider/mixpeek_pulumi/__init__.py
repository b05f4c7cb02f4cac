"""Pulumi dynamic resources that deploy Mixpeek Apps and Plugins."""

from ._version import __version__

__all__ = ["__version__"]
