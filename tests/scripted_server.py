"""A loopback HTTP server that answers from a script and records every request it saw.

Besides plain answers it can hold a request without answering (``delay``, cut short when the
server closes), and send a body generated on the fly (``chunks``): one that trickles forever,
or one of hundreds of MB, never held in memory.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float = 0.0
    drop: bool = False  # read the request, then close the connection without answering
    chunks: Callable[[], Iterable[bytes]] | None = None
    """The body, written piece by piece as generated (chunked, unless ``length`` is set)."""
    length: int | None = None
    wire: bool = False
    """``chunks`` are the whole response as it goes on the wire, status line and headers too."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


_NO_ROUTE = Reply(404, {"status": 404, "error": {"message": "no route", "type": "NotFoundError"}})


class ScriptedServer:
    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[Reply]] = {}
        self.default: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.scripted = self
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queue = self.script.get((seen.method, seen.path), [])
            if queue:
                return queue.pop(0)
            return self.default.get((seen.method, seen.path), _NO_ROUTE)

    def add(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self.script.setdefault((method, path), []).extend(replies)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.method == method and s.path == path)

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _QuietServer

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        scripted = self.server.scripted
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        reply = scripted._next(Seen(self.command, path, dict(self.headers), body))
        if reply.delay and scripted.closing.wait(reply.delay):
            reply = Reply(drop=True)  # a request held past the test's end is let go
        if reply.drop:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if reply.chunks is not None:
            self._stream(reply)
            return
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: Reply) -> None:
        assert reply.chunks is not None
        if reply.wire:
            self.close_connection = True
            for piece in reply.chunks():
                if self.server.scripted.closing.is_set():
                    return
                self.wfile.write(piece)
            return
        chunked = reply.length is None
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        headers.update(
            {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(reply.length)}
        )
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        for piece in reply.chunks():
            if self.server.scripted.closing.is_set():
                return
            if not piece:
                continue  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _QuietServer(ThreadingHTTPServer):
    scripted: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a delayed reply (a timeout under test) has closed its end.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def trickle(every: float, lasting: float, start: bytes = b'{"deploy_id": "') -> Iterator[bytes]:
    """``start``, then one byte every ``every`` seconds for ``lasting`` seconds: a body that
    never completes within any test."""
    yield start
    end = time.monotonic() + lasting
    while time.monotonic() < end:
        time.sleep(every)
        yield b"x"


def flood(
    size: int, start: bytes = b'{"deploy_id": "', piece: int = 1024 * 1024
) -> Iterator[bytes]:
    """``start`` and then ``size`` bytes of one JSON string that never closes, generated a
    piece at a time."""
    yield start
    block = b"x" * piece
    for _ in range(size // piece):
        yield block


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()
