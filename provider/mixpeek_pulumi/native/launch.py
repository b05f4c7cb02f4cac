"""``pulumi-resource-mixpeek``'s entry point: the port is printed before the provider loads.

The engine waits for a plugin's port before it sends anything, and most of a start is
importing the deploy layer (pydantic models, httpx). So the gRPC server starts first with a
stand-in for each verb, the port is printed, and the provider (``server``) is imported on a
thread meanwhile: a verb that arrives before it is ready waits for it. ``--version`` needs
nothing else; ``--schema`` and ``--help`` are ``server.describe``'s.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, Final, cast

from .._version import __version__
from ..run.progress import write_line

PARENT: Final = os.getppid()
"""The engine that started the plugin, read first thing: an engine killed while the plugin
is still starting is seen going too (``lifeline``)."""
# The schema a release build carries beside this module, written from the same sources when it
# was frozen (scripts/dist.py); absent elsewhere.
SCHEMA: Final = Path(__file__).with_name("schema.json")


async def listen(make: Callable[[], Any], address: str | None = None) -> None:
    """Serve the provider that ``make`` builds (on a thread, after the port is printed) on a
    free loopback port until the engine ends the process, or until the engine at ``address``
    is gone (``lifeline``: watched from the moment the port is printed, so that an engine
    killed at once is seen going too)."""
    import grpc

    from . import lifeline
    from .protos import provider_pb2_grpc as rpc

    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)])
    deferred = cast("rpc.ResourceProviderServicer", _Deferred(ready))
    rpc.add_ResourceProviderServicer_to_server(deferred, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # The engine reads the port from the first line on stdout; nothing else is printed there.
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # Only now: an import on another thread holds the interpreter most of the time, and would
    # hold back the port instead of the first verb.
    built: list[Any] = []
    lifeline.watch(address, lambda why: _gone(why, built), parent=PARENT)
    loading = asyncio.ensure_future(_settle(ready, lambda: _kept(built, make())))
    await server.wait_for_termination()
    await loading


def _kept(built: list[Any], provider: Any) -> Any:
    built.append(provider)
    return provider


def _gone(why: str, built: list[Any]) -> None:
    """Nobody is left to report to: every wait ends, and the process with it. The engine took
    the far end of stderr with it, so the farewell line may find no reader."""
    try:
        for provider in built:
            provider.cancelled.set()
        write_line(f"pulumi-resource-mixpeek: exiting, as {why}")
    except OSError:
        pass
    finally:
        os._exit(0)


async def _settle(ready: asyncio.Future[Any], make: Callable[[], Any]) -> None:
    try:
        ready.set_result(await asyncio.to_thread(make))
    except Exception as exc:  # noqa: BLE001 - every verb then answers with it
        ready.set_exception(exc)


class _Deferred:
    """Every verb of the provider ``ready`` will hold, waiting for it first; but the two a
    plugin started only for its schema is asked (a Pulumi YAML program starts one such), which
    need nothing of the deploy layer when the build carries its schema (``SCHEMA``)."""

    def __init__(self, ready: asyncio.Future[Any]) -> None:
        self._ready = ready

    async def GetPluginInfo(self, request: Any, context: Any) -> Any:
        from .protos import plugin_pb2

        return plugin_pb2.PluginInfo(version=__version__)

    async def GetSchema(self, request: Any, context: Any) -> Any:
        from .protos import provider_pb2

        try:
            schema = SCHEMA.read_text(encoding="utf-8")
        except OSError:  # not a release build: the provider makes it
            return await self.__getattr__("GetSchema")(request, context)
        return provider_pb2.GetSchemaResponse(schema=schema)

    def __getattr__(self, verb: str) -> Callable[[Any, Any], Any]:
        async def call(request: Any, context: Any) -> Any:
            provider = await asyncio.shield(self._ready)
            answer = getattr(provider, verb)(request, context)
            return await answer if inspect.isawaitable(answer) else answer

        return call


def _provider(argv: list[str]) -> Callable[[], Any]:
    def make() -> Any:
        from . import server

        return server.provider(argv)

    return make


def main(argv: list[str] | None = None) -> None:
    """The console script and the release binary's entry point. The engine runs it with its
    own flags (``-v=9``, ``--logtostderr``, ``--tracing <endpoint>``) and its address."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["--version"], ["version"], ["-V"]):
        print(__version__)  # noqa: T201
        return
    if args[:1] in (["--schema"], ["-h"], ["help"]) or "--help" in args:
        from . import server

        server.describe(args)
        return
    with suppress(KeyboardInterrupt):
        asyncio.run(listen(_provider(args), engine_address(args)))


def engine_address(argv: list[str]) -> str | None:
    """The engine's address: the one argument that is not a flag (``-v=9``, ``--logtostderr``,
    ``--tracing <endpoint>``)."""
    rest = iter(argv)
    for arg in rest:
        if arg == "--tracing":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return None
