"""Serving the emulator with uvicorn: in a thread (tests, the demo) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from .app import Emulator
from .closing import Closing


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this. Without it, every answer on a kept-alive connection waits
    # ~40 ms (the response goes out in two writes; Nagle holds the second for a delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def server_for(
    emulator: Emulator, sock: socket.socket, tls: tuple[str, str] | None = None
) -> uvicorn.Server:
    """A uvicorn server for ``emulator`` on ``sock``; ``tls`` is (certificate, key) files."""
    emulator.set_public_url(url_of(sock, tls))
    config = uvicorn.Config(
        emulator.asgi,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    return _Server(config, emulator.closing)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the emulator when its shutdown starts (see ``Closing``)."""

    def __init__(self, config: uvicorn.Config, closing: Closing) -> None:
        super().__init__(config)
        self._closing = closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._closing.set()
        await super().shutdown(sockets)


def url_of(sock: socket.socket, tls: tuple[str, str] | None = None) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{host}:{port}"


@dataclass
class RunningEmulator:
    emulator: Emulator
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.emulator.close()


def start_in_thread(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: tuple[str, str] | None = None,
) -> RunningEmulator:
    """Serve on a free loopback port in a daemon thread; returns once it accepts requests."""
    sock = bind(host, port)
    server = server_for(emulator, sock, tls)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("mixpeek-emulator did not start within 10 seconds")
        time.sleep(0.01)
    return RunningEmulator(emulator, server, thread, url_of(sock, tls))
