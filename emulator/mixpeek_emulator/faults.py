"""Fault injection and the request log, as raw ASGI middleware in front of the API.

A rule matches the next N requests by method and path glob and either answers for the server
(an error status, an HTML page, bad JSON), delays the request, drops the connection, trickles a
body that never ends (one byte every ``delay`` seconds) or floods one of ``size`` bytes made on
the fly (never held in memory); both stop when the client goes away. By
default the real handler never runs, so nothing is stored; ``after_handler`` runs it first and
then answers or drops, which models "the server stored it and the response was lost". The log
records method, path, status and whether the handler ran, never a header or a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .closing import Closing

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultRule(BaseModel):
    """One injected fault; ``times`` requests matching ``method`` and ``path`` (a glob) get it."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "*"
    path: str = Field(default="*", min_length=1, max_length=500)
    times: int = Field(default=1, ge=0, le=10**7)
    action: Literal["respond", "delay", "drop", "trickle", "flood"] = "respond"
    status: int = Field(default=500, ge=200, le=599)
    retry_after: str | None = Field(default=None, max_length=100)
    body: Any = None
    raw: str | None = None
    content_type: str | None = Field(default=None, max_length=200)
    delay: float = Field(default=0.0, ge=0, le=3600, allow_inf_nan=False)
    after_handler: bool = False
    size: int = Field(default=0, ge=0, le=2**32)
    """``flood``: the body's size in bytes."""


class NextOutcomes(BaseModel):
    """Outcomes applied to the next deploys / plugin deployments / streams."""

    model_config = ConfigDict(extra="forbid")

    deploy_fail_reason: str | None = Field(default=None, min_length=1, max_length=2000)
    smoke_test_fail: bool = False
    plugin_fail_reason: str | None = Field(default=None, min_length=1, max_length=2000)
    sse_cut_after: int | None = Field(default=None, ge=0, le=1000)
    sse_never_done: bool = False
    expire_upload_urls: int = Field(default=0, ge=0, le=1000)
    status_flap: list[str] = Field(default=[], max_length=1000)


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int  # 0 when the connection was cut before a status reached the client
    ts: float
    handled: bool = True  # whether the real handler ran (an injected answer stores nothing)


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    deploy_fail: list[str] = field(default_factory=list)
    smoke_fail: int = 0
    plugin_fail: list[str] = field(default_factory=list)
    sse_cut: list[int] = field(default_factory=list)
    sse_never_done: int = 0
    expire_urls: int = 0
    status_flap: list[str] = field(default_factory=list)
    log: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_rule(self, rule: FaultRule) -> None:
        with self.lock:
            self.rules.append(rule)

    def add_next(self, nxt: NextOutcomes) -> None:
        with self.lock:
            if nxt.deploy_fail_reason:
                self.deploy_fail.append(nxt.deploy_fail_reason)
            if nxt.smoke_test_fail:
                self.smoke_fail += 1
            if nxt.plugin_fail_reason:
                self.plugin_fail.append(nxt.plugin_fail_reason)
            if nxt.sse_cut_after is not None:
                self.sse_cut.append(nxt.sse_cut_after)
            if nxt.sse_never_done:
                self.sse_never_done += 1
            self.expire_urls += nxt.expire_upload_urls
            self.status_flap.extend(nxt.status_flap)

    def take(self, attr: str) -> Any:
        """Pop one pending outcome (a reason, a count, a cut point) or None."""
        with self.lock:
            value = getattr(self, attr)
            if isinstance(value, list):
                return value.pop(0) if value else None
            if value > 0:
                setattr(self, attr, value - 1)
                return True
            return None

    def match(self, method: str, path: str) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.times <= 0:
                    continue
                if rule.method not in ("*", method) or not fnmatch.fnmatchcase(path, rule.path):
                    continue
                rule.times -= 1
                return rule.model_copy()
        return None

    def record(self, method: str, path: str, status: int, handled: bool) -> None:
        with self.lock:
            self.log.append(LoggedRequest(method, path, status, time.time(), handled))

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.deploy_fail.clear()
            self.plugin_fail.clear()
            self.sse_cut.clear()
            self.status_flap.clear()
            self.smoke_fail = self.sse_never_done = self.expire_urls = 0
            self.log.clear()


class _Dropped(Exception):
    """Raised after a response has started, so the server closes the connection mid-response."""


class FaultMiddleware:
    def __init__(self, app: ASGIApp, faults: Faults, closing: Closing) -> None:
        self.app = app
        self.faults = faults
        self.closing = closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        status_seen = 0

        async def logged_send(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
            await send(message)

        rule = None if path.startswith("/_emulator") else self.faults.match(method, path)
        handled = rule is None or rule.action == "delay" or rule.after_handler
        try:
            if rule is None:
                await self.app(scope, receive, logged_send)
            elif rule.action == "delay":
                # The body arrives first and the answer is late, as with a slow server; a
                # shutdown cuts the wait short so the answer still goes out before it ends.
                replay = await _buffer(receive)
                await self.closing.wait(rule.delay)
                await self.app(scope, replay, logged_send)
            else:
                if rule.after_handler:
                    await self.app(scope, receive, _swallow)
                if rule.action == "respond":
                    await self._respond(rule, logged_send)
                elif rule.action in ("trickle", "flood"):
                    await _stream(rule, receive, logged_send)
                else:
                    try:
                        await _drop(send)
                    finally:
                        status_seen = 0  # the client never got a status
        finally:
            if not path.startswith("/_emulator"):
                self.faults.record(method, path, status_seen, handled)

    async def _respond(self, rule: FaultRule, send: Send) -> None:
        if rule.raw is not None:
            body = rule.raw.encode()
            ctype = rule.content_type or "text/html"
        else:
            payload = rule.body
            if payload is None:
                payload = {
                    "success": False,
                    "status": rule.status,
                    "error": {
                        "message": f"Injected fault: HTTP {rule.status}",
                        "type": _ERROR_TYPES.get(rule.status, "InternalServerError"),
                        "details": (
                            {"retryable": True, "retry_after_seconds": float(rule.retry_after)}
                            if rule.retry_after and rule.status in (429, 503)
                            else None
                        ),
                    },
                }
            body = json.dumps(payload).encode()
            ctype = rule.content_type or "application/json"
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        if rule.retry_after:
            headers.append((b"retry-after", rule.retry_after.encode()))
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_ERROR_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    409: "AlreadyExistsError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}


async def _buffer(receive: Receive) -> Receive:
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


async def _stream(rule: FaultRule, receive: Receive, send: Send) -> None:
    """A JSON string that never closes: trickled a byte at a time, or ``size`` bytes at once,
    each until the client hangs up."""
    gone = asyncio.Event()
    watcher = asyncio.create_task(_until_gone(receive, gone))
    headers = [(b"content-type", b"application/json")]
    try:
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        for piece in _pieces(rule):
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if rule.action == "trickle":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), rule.delay)
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()


def _pieces(rule: FaultRule) -> Iterator[bytes]:
    yield b'{"deploy_id": "'
    if rule.action == "trickle":
        yield from itertools.repeat(b"x")
        return
    block = b"x" * (1024 * 1024)
    whole, rest = divmod(rule.size, len(block))
    yield from itertools.repeat(block, whole)
    yield block[:rest]


async def _until_gone(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _swallow(_message: Message) -> None:
    return None


async def _drop(send: Send) -> None:
    # A response that promises a body and then dies: the client sees the connection cut.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise _Dropped("connection dropped by an injected fault")
