"""The provider protocol's generated modules, loaded without the Pulumi SDK's package
initialisation.

``pulumi.runtime.proto`` lives inside the SDK, whose ``__init__`` imports the whole SDK (the
automation API, the runtime, opentelemetry: half a second) before any of its modules can load.
The plugin needs five generated modules and grpc. So, unless the SDK is already imported, the
three packages above them are stood in by empty packages with the SDK's own folders as their
path while those modules load, and removed afterwards: a later ``import pulumi`` runs the real
initialisation and finds the same module objects (and so the same descriptors) in place.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

_PACKAGES = ("pulumi", "pulumi.runtime", "pulumi.runtime.proto")
_MODULES = ("engine_pb2", "engine_pb2_grpc", "plugin_pb2", "provider_pb2", "provider_pb2_grpc")


def _load() -> list[Any]:
    names = [f"pulumi.runtime.proto.{name}" for name in _MODULES]
    if "pulumi" in sys.modules:
        return [importlib.import_module(name) for name in names]
    spec = importlib.util.find_spec("pulumi")
    if spec is None or not spec.submodule_search_locations:
        return [importlib.import_module(name) for name in names]
    root = next(iter(spec.submodule_search_locations))
    stood_in = []
    for package in _PACKAGES:
        stub = types.ModuleType(package)
        stub.__path__ = [root + package.removeprefix("pulumi").replace(".", "/")]
        stub.__package__ = package
        sys.modules[package] = stub
        stood_in.append(package)
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        for package in stood_in:
            sys.modules.pop(package, None)


if TYPE_CHECKING:
    from pulumi.runtime.proto import engine_pb2 as engine_pb2
    from pulumi.runtime.proto import engine_pb2_grpc as engine_pb2_grpc
    from pulumi.runtime.proto import plugin_pb2 as plugin_pb2
    from pulumi.runtime.proto import provider_pb2 as provider_pb2
    from pulumi.runtime.proto import provider_pb2_grpc as provider_pb2_grpc
else:
    engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2, provider_pb2_grpc = _load()
