"""A mock monitor that sends each dynamic resource's exact registration to the engine stand-in."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pulumi.runtime import mocks
from pulumi.runtime.proto import resource_pb2

from tests.engine import EngineError, FakeEngine, from_struct, to_struct


class _Mocks(mocks.Mocks):
    def __init__(self, stack_references: Mapping[str, Mapping[str, Any]]) -> None:
        self.stack_references = stack_references

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name") or args.name
            if name not in self.stack_references:
                raise EngineError("read", name, f"Error: unknown stack reference {name!r}")
            return name, {"name": name, "outputs": dict(self.stack_references[name])}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class EngineBackedMonitor(mocks.MockMonitor):
    """Forwards ``RegisterResourceRequest.object`` for dynamic resources to a ``FakeEngine``."""

    def __init__(
        self,
        engine: FakeEngine,
        *,
        preview: bool,
        stack_references: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.mocks = _Mocks(stack_references)
        super().__init__(self.mocks)
        self.engine = engine
        self.preview = preview
        self.registered: set[str] = set()
        self.errors: list[EngineError] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        if not request.type.startswith("pulumi-python:dynamic"):
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        urn = self.engine.urn(request.type, request.name)
        with self._lock:
            self.registered.add(urn)
        try:
            id_, outs = self.engine.register(
                request.type,
                request.name,
                from_struct(request.object),
                preview=self.preview,
                additional_secret_outputs=list(request.additionalSecretOutputs),
                delete_before_replace=request.deleteBeforeReplace,
            )
        except EngineError as exc:
            with self._lock:
                self.errors.append(exc)
            raise
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=to_struct(outs))
