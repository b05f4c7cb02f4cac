"""What stands in front of a real site, on loopback, in front of the emulator's live sites: a
CDN that caches every page and ignores query strings and ``Cache-Control`` (as a CDN set to
ignore them does), one that sends every page gzip-compressed whatever it was asked (as S3 and
CloudFront serve pre-compressed objects), and one that holds or fails requests on cue."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Front:
    """``origin`` (a site's base URL) behind a server of ours at ``url``."""

    origin: str
    cache_seconds: float = 0.0
    gzip: bool = False
    status: int | None = None
    """Answer every request with this status instead of asking the origin."""
    hold: threading.Event | None = None
    """While set, every request is held without an answer (until the front closes)."""
    url: str = ""
    arrived: list[str] = field(default_factory=list)
    """Every request's path as it came in, held or not."""
    requests: list[str] = field(default_factory=list)
    """Every request's path once it is being answered."""
    _cache: dict[str, tuple[float, int, bytes, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str) -> tuple[int, bytes, str]:
        with self._lock:
            self.requests.append(path)
        if self.status is not None:
            return self.status, b"unavailable\n", "text/plain"
        key = path.split("?")[0]
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1], cached[2], cached[3]
        got = httpx.get(self.origin + key, timeout=10)
        kind = got.headers.get("content-type", "application/octet-stream")
        if self.cache_seconds:
            with self._lock:
                self._cache[key] = (time.monotonic(), got.status_code, got.content, kind)
        return got.status_code, got.content, kind


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        front = self.server.front
        with front._lock:
            front.arrived.append(self.path)
        hold = front.hold
        while hold is not None and hold.is_set() and not front.closing.wait(0.05):
            pass
        if front.closing.is_set():
            self.close_connection = True
            return
        status, body, kind = front.answer(self.path)
        headers = {"Content-Type": kind, "Cache-Control": "public, max-age=60"}
        if front.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    front: Front


@contextmanager
def front(origin: str, **settings: Any) -> Iterator[Front]:
    """A ``Front`` serving on a free loopback port until the block ends."""
    served = Front(origin.rstrip("/"), **settings)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.front = served
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.closing.set()
        httpd.shutdown()
        httpd.server_close()


def wire_server(script: Callable[[Any], None]) -> tuple[str, Callable[[], None]]:
    """A raw socket server on loopback: ``script(conn)`` writes whatever it likes to each
    connection (a status line one byte at a time, say). Returns its URL and the stop call."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_run, args=(script, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        stop.set()
        listener.close()

    return f"http://127.0.0.1:{listener.getsockname()[1]}", close


def _run(script: Callable[[Any], None], conn: Any) -> None:
    with conn:
        try:
            conn.recv(65536)
            script(conn)
        except OSError:
            pass
