"""The plugin's tie to the engine that started it: when that engine is gone (killed with
SIGKILL, say), the plugin ends its operations and exits, instead of serving gRPC to nobody.

Two signs, whichever comes first: the parent process changed (the engine starts the plugin
itself, so its death hands the plugin to init), or the engine's gRPC address stopped taking
connections, twice in a row (for a plugin whose parent is not the engine).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Final

import grpc

PARENT_EVERY: Final = 1.0
ADDRESS_EVERY: Final = 10.0
ADDRESS_TIMEOUT: Final = 5.0
MISSES: Final = 2


def watch(
    address: str | None, gone: Callable[[str], None], parent: int | None = None
) -> threading.Thread:
    """Start watching; ``gone(why)`` is called once, from the watching thread. ``parent`` is
    the engine's process, as read when the plugin started (by default, now)."""
    thread = threading.Thread(
        target=_watch,
        args=(address, os.getppid() if parent is None else parent, gone),
        name="mixpeek-lifeline",
        daemon=True,
    )
    thread.start()
    return thread


def _watch(address: str | None, parent: int, gone: Callable[[str], None]) -> None:
    pause = threading.Event()
    misses, waited = 0, 0.0
    while True:
        pause.wait(PARENT_EVERY)
        waited += PARENT_EVERY
        if os.getppid() != parent:
            gone(f"its parent process {parent} (the engine) ended")
            return
        if address is None or waited < ADDRESS_EVERY:
            continue
        waited = 0.0
        misses = 0 if _answers(address) else misses + 1
        if misses >= MISSES:
            gone(f"the engine at {address} stopped taking connections")
            return


LOOPBACK: Final = (("grpc.enable_http_proxy", 0),)
"""The engine is on this machine: a proxy in the environment (which gRPC's C core honours for
any address NO_PROXY does not name exactly) must never stand between them."""


def _answers(address: str) -> bool:
    channel = grpc.insecure_channel(address, options=LOOPBACK)
    try:
        grpc.channel_ready_future(channel).result(timeout=ADDRESS_TIMEOUT)
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()
    return True
