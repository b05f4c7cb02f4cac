"""The patches to the SDK's dynamic provider host (``python -m pulumi.dynamic``), each applied
only where the host is shaped as expected: more calls at once, the engine's Cancel passed on,
and each diff's changed properties sent."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from pulumi.dynamic import DiffResult

from ..deadline import Cancellation
from ..kinds.diffs import Diff

# How many create/update/read/delete calls the provider host serves at once (the SDK's own
# host serves 4, and each create holds its call until the deploy is done).
HOST_WORKERS: Final = 64
HOST_VERBS: Final = ("Create", "Update", "Read", "Delete")


def widen_provider_host() -> bool:
    """In the SDK's dynamic-provider host (``python -m pulumi.dynamic``), serve the long calls
    on a pool of ``HOST_WORKERS`` threads instead of the host's 4, so that deploys wait on the
    service side by side; the engine's ``--parallel`` is then the only bound.

    It uses gRPC's per-method ``experimental_thread_pool`` on the host's servicer methods. When
    the host or gRPC is not shaped as expected, it changes nothing and says so in one line."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is None or spec.name != "pulumi.dynamic.__main__":
        return False  # the program's own process, or a test harness: nothing to widen
    servicer = getattr(main, "DynamicResourceProviderServicer", None)
    if not honour_cancel(main, servicer):
        print(  # noqa: T201 - the CLI shows the host's stderr under the stack
            "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so "
            "Ctrl-C does not reach its deploys: each runs on until its timeout_seconds",
            file=sys.stderr,
            flush=True,
        )
    verbs = [getattr(servicer, verb, None) for verb in HOST_VERBS]
    try:
        from grpc import _server
    except ImportError:
        _server = None
    if (
        servicer is None
        or not all(callable(v) for v in verbs)
        or not hasattr(_server, "_select_thread_pool_for_behavior")
    ):
        print(  # noqa: T201 - the CLI shows the host's stderr under the stack
            "mixpeek-pulumi: this Pulumi SDK's provider host is not the one expected, so it "
            "keeps serving 4 deploys at a time",
            file=sys.stderr,
            flush=True,
        )
        return False
    detail_host_diffs(main)
    if getattr(verbs[0], "experimental_thread_pool", None) is None:
        pool = ThreadPoolExecutor(HOST_WORKERS, thread_name_prefix="mixpeek-host")
        for verb in verbs:
            verb.experimental_thread_pool = pool  # type: ignore[union-attr]
    return True


HOST_CANCEL: Final = Cancellation()
"""The engine's Cancel (Ctrl-C) in this provider host: every operation's deadline ends on it."""


def honour_cancel(main: Any, servicer: Any) -> bool:
    """Let the SDK's host pass the engine's Cancel on: its own ``Cancel`` does nothing, so a
    Ctrl-C would leave every wait running until its own timeout. The host registered that
    method with gRPC when it started, so the method's code is replaced in place (it runs
    with the host module's globals, where the hook is put)."""
    method: Any = getattr(servicer, "Cancel", None)
    code = getattr(method, "__code__", None)
    if code is None or code.co_argcount != _cancel.__code__.co_argcount:
        return False
    if not hasattr(main, "empty_pb2"):
        return False  # the answer the replaced code builds
    if code is not _cancel.__code__:
        main._mixpeek_host_cancel = HOST_CANCEL.set
        method.__code__ = _cancel.__code__
    return True


def _cancel(self: Any, request: Any, context: Any) -> Any:  # runs as the host's Cancel
    _mixpeek_host_cancel()  # type: ignore[name-defined]  # noqa: F821 - the host's global
    return empty_pb2.Empty()  # type: ignore[name-defined]  # noqa: F821 - the host's global


class Replaces(list[str]):
    """A diff's ``replaces`` carrying the whole ``Diff`` with it: the one value the SDK's host
    hands on from ``diff`` to the ``DiffResponse`` it builds, so the detail travels with it."""

    def __init__(self, diff: Diff) -> None:
        super().__init__(diff.replaces)
        self.diff = diff


def diff_result(diff: Diff) -> DiffResult:
    return DiffResult(changes=diff.changed, replaces=Replaces(diff), delete_before_replace=False)


class _DetailedDiffResponse:
    """The host's ``DiffResponse`` with the changed properties added (``diffs``,
    ``detailedDiff``): the SDK's host sends only ``changes`` and ``replaces`` (3.139 to
    3.272), so the CLI would name the inputs whose values differ instead (a digest)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # DIFF_SOME and the like

    def __call__(self, **fields: Any) -> Any:
        replaces = fields.get("replaces")
        if isinstance(replaces, Replaces) and "diffs" not in fields:
            fields = {**fields, "replaces": list(replaces), **detailed_fields(replaces.diff)}
        return self._real(**fields)


def detailed_fields(diff: Diff) -> dict[str, Any]:
    from pulumi.runtime.proto import provider_pb2

    kinds = {"update": provider_pb2.PropertyDiff.UPDATE}
    kinds["replace"] = provider_pb2.PropertyDiff.UPDATE_REPLACE
    return {
        "diffs": list(diff.changes),
        "detailedDiff": {
            key: provider_pb2.PropertyDiff(kind=kinds[kind], inputDiff=key not in diff.outputs)
            for key, kind in diff.kinds().items()
        },
        "hasDetailedDiff": True,
    }


class _HostProto:
    """The host's ``proto`` module, with ``DiffResponse`` detailed."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.DiffResponse = _DetailedDiffResponse(real.DiffResponse)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def detail_host_diffs(main: Any) -> bool:
    """Let the SDK's host send each diff's changed properties, where it is shaped as expected
    (its ``Diff`` builds ``proto.DiffResponse`` from the module's ``proto``); else nothing
    changes and the CLI names the inputs that differ."""
    real = getattr(main, "proto", None)
    if isinstance(real, _HostProto):
        return True
    if real is None or not callable(getattr(real, "DiffResponse", None)):
        return False
    main.proto = _HostProto(real)
    return True
