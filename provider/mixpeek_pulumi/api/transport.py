"""The bounds of every HTTP exchange: one time budget for all of it, cut short by Cancel, and a
cap on the bytes it may hold in memory.

httpx's timeouts bound each socket operation, not an exchange: a server that sends one byte
every half second never trips a 60 s read timeout, and a read another thread is blocked in ends
only at its own timeout. Here one exchange (connect, send, every read of the answer) gets one
budget, the smaller of its limit and what is left of the operation's deadline. The answer is
read chunk by chunk with the Cancel, the budget and a byte cap checked between chunks; a
watchdog shuts the exchange's sockets when the budget is spent, and the operation's
``Cancellation`` shuts them at once: only a shutdown, never a close, ends a blocked read.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import weakref
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

import httpx
from httpx_sse import ServerSentEvent

from ..deadline import Deadline
from ..errors import (
    ApiConnectionError,
    ApiInterruptedError,
    ApiTimeoutError,
    ResponseTooLargeError,
    UnreadableEncodingError,
    redact,
)
from ..sizes import MIB, size_text

MAX_BODY: Final = 16 * MIB
"""An API answer: the largest real one (a version list, a plugin's detail) is a few hundred KiB."""
MAX_ERROR_BODY: Final = 1 * MIB
"""An error answer: beyond this only its status is used."""
MAX_SSE_LINE: Final = 64 * 1024
"""One line of the build log stream, and one event's data; a longer one is cut."""
MIN_REQUEST_SECONDS: Final = 0.05
"""A request is never started with less than this left: it could not finish anyway."""
INFLATE_CHUNK: Final = 64 * 1024

# httpx's trace extension reports each connection as it is made, with its network stream.
_OPENED: Final = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})
# Transport failures after which the request cannot have reached the server.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


class Lane:
    """One thread's connection pool and the sockets it opened.

    A thread makes one request at a time, so shutting its lane's sockets ends exactly the
    exchange it has under way (an idle kept-alive connection is simply dialled again)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._refusing = False
        self.extensions = {"trace": self._trace}

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event not in _OPENED:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.add(sock)
                refusing = self._refusing
            if refusing:  # opened after its exchange was ended: end it too
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def shut(self) -> None:
        """End every read and write under way on this lane's sockets, from any thread, and
        any connection the ended exchange still opens (until ``reopen``)."""
        with self._lock:
            self._refusing = True
            sockets = list(self._sockets)
        for sock in sockets:
            with suppress(OSError):  # closed already: nothing is blocked on it
                sock.shutdown(socket.SHUT_RDWR)

    def reopen(self) -> None:
        """The ended exchange is over: the lane's next one may connect again."""
        with self._lock:
            self._refusing = False


@dataclass(frozen=True)
class Answer:
    """A response read within its bounds; ``cut`` says the body was longer than its cap and
    ``body`` is only its start."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    cut: bool = False

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def is_redirect(self) -> bool:
        # Never followed, and never a success: with or without a Location, a 3xx means the
        # request did not land where it was sent.
        return 300 <= self.status_code < 400

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Exchange:
    """One request and its answer within one time budget: ``limit`` (None: the deadline only),
    cut to what is left of ``deadline``."""

    def __init__(
        self, lane: Lane, deadline: Deadline, method: str, shown: str, limit: float | None
    ) -> None:
        self.lane = lane
        self.deadline = deadline
        self.method = method
        self.shown = shown
        left = deadline.remaining()
        self.budget = left if limit is None else min(limit, left)
        self.by_deadline = limit is None or left <= limit
        self.end = time.monotonic() + self.budget
        self._lock = threading.Lock()
        self._live = True
        self._spent = False

    def timeouts(self, base: httpx.Timeout) -> httpx.Timeout:
        """``base``, each cut to the budget."""

        def cut(value: float | None) -> float | None:
            if value is None:
                return None if math.isinf(self.budget) else self.budget
            return min(value, self.budget)

        return httpx.Timeout(
            connect=cut(base.connect),
            read=cut(base.read),
            write=cut(base.write),
            pool=cut(base.pool),
        )

    def check(self) -> None:
        """Between two chunks: stop at a Cancel, or once the budget is spent."""
        if self.deadline.cancelled:
            raise ApiInterruptedError(method=self.method, path=self.shown, sent=True)
        if time.monotonic() >= self.end or self.deadline.expired:
            raise self.timed_out(sent=True)

    def timed_out(self, *, sent: bool) -> ApiTimeoutError:
        cause = "the read timeout"
        if self.by_deadline:
            cause = "all the time left before the operation's deadline"
        return ApiTimeoutError(
            method=self.method,
            path=self.shown,
            reason=f"the whole answer did not arrive within {_seconds(self.budget)}, {cause}",
            sent=sent,
        )

    def failure(self, exc: Exception) -> ApiConnectionError:
        """What an httpx failure means here: a Cancel, the budget, or the transport itself."""
        sent = not isinstance(exc, _NOT_SENT)
        if self.deadline.cancelled:
            return ApiInterruptedError(method=self.method, path=self.shown, sent=sent)
        if self._spent or time.monotonic() >= self.end:
            return self.timed_out(sent=sent)
        error = ApiTimeoutError if isinstance(exc, httpx.TimeoutException) else ApiConnectionError
        return error(method=self.method, path=self.shown, reason=describe(exc), sent=sent)

    @contextmanager
    def watched(self) -> Iterator[None]:
        """The watchdog at the budget's end and the Cancel listener, both for this exchange
        only: once it ended, neither touches the lane's next exchange."""
        timer = None if math.isinf(self.budget) else threading.Timer(self.budget, self._spend)
        if timer is not None:
            timer.daemon = True
            timer.start()
        release = self.deadline.on_cancel(self._shut)
        try:
            yield
        finally:
            with self._lock:
                self._live = False
            release()
            if timer is not None:
                timer.cancel()
            self.lane.reopen()

    def _spend(self) -> None:
        with self._lock:
            self._spent = True
            if self._live:
                self.lane.shut()

    def _shut(self) -> None:
        with self._lock:
            if self._live:
                self.lane.shut()

    # ------------------------------------------------------------------------- reading

    @contextmanager
    def streamed(self, request: httpx.Request) -> Iterator[httpx.Response]:
        """Send ``request``; the answer's body is left to read, and closed after."""
        response = self.lane.http.send(request, stream=True)
        try:
            yield response
        finally:
            response.close()

    def fetch(self, request: httpx.Request, *, cap: int = MAX_BODY) -> Answer:
        """Send ``request`` and read its answer: a success up to ``cap`` (past it,
        ``ResponseTooLargeError``), an error status up to ``MAX_ERROR_BODY`` (past it, cut)."""
        with self.streamed(request) as response:
            return self.answer(response, cap)

    def answer(self, response: httpx.Response, cap: int = MAX_BODY) -> Answer:
        failed = response.is_error or response.is_redirect
        body, cut = self.read(response, MAX_ERROR_BODY if failed else cap)
        if cut and not failed:
            raise self.too_large(response, cap)
        return Answer(response.status_code, response.reason_phrase, response.headers, body, cut)

    def too_large(self, response: httpx.Response, cap: int) -> ResponseTooLargeError:
        declared = response.headers.get("content-length", "")
        plain = response.headers.get("content-encoding", "identity").strip() in ("", "identity")
        known = plain and declared.isdigit() and int(declared) > cap
        return ResponseTooLargeError(
            method=self.method,
            path=self.shown,
            status_code=response.status_code,
            cap=size_text(cap),
            declared=size_text(int(declared)) if known else "",
        )

    def read(self, response: httpx.Response, cap: int) -> tuple[bytes, bool]:
        """The body, or its first ``cap`` bytes and True when it is longer."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return b"", True
        body = bytearray()
        for chunk in self.chunks(response):
            room = cap - len(body)
            if len(chunk) > room:
                body += chunk[:room]
                return bytes(body), True
            body += chunk
        return bytes(body), False

    def chunks(self, response: httpx.Response) -> Iterator[bytes]:
        """The body as it arrives (inflated in bounded steps if the server compressed it
        unasked), with the Cancel and the budget checked before each chunk."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        for chunk in _inflated(response.iter_raw(), encoding, self, response.status_code):
            self.check()
            yield chunk

    def guarded(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        """An upload's blocks, with the Cancel and the budget checked before each one."""
        for block in blocks:
            self.check()
            yield block


@contextmanager
def exchange(
    lane: Lane, deadline: Deadline, method: str, shown: str, limit: float | None
) -> Iterator[Exchange]:
    """One bounded exchange; every httpx failure inside becomes one of ours, and past the
    deadline (or after a Cancel) the request is not started at all."""
    if deadline.cancelled:
        raise ApiInterruptedError(method=method, path=shown, sent=False)
    ex = Exchange(lane, deadline, method, shown, limit)
    if ex.budget < MIN_REQUEST_SECONDS:
        raise ApiTimeoutError(
            method=method, path=shown, reason="the operation's deadline has passed", sent=False
        )
    with ex.watched():
        try:
            yield ex
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise ex.failure(exc) from None


def describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}")


def _seconds(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + " s"


def _inflated(raw: Iterator[bytes], encoding: str, ex: Exchange, status: int) -> Iterator[bytes]:
    """``raw`` as is, or inflated no more than ``INFLATE_CHUNK`` bytes at a time, so that a
    small compressed chunk cannot become a huge one before the cap sees it. A gzip body may
    hold several members (RFC 1952), and ``deflate`` comes zlib-wrapped or raw, as servers send
    it either way."""
    if encoding in ("", "identity"):
        yield from raw
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        if status >= 300:
            return  # an error's status says enough; its body is not worth a refusal of its own
        raise UnreadableEncodingError(
            method=ex.method,
            path=ex.shown,
            status_code=status,
            problem=f"it is {encoding}-encoded, which the provider did not ask for and cannot read",
        )
    gzipped = "gzip" in encoding
    inflate = _Inflater(gzipped)
    for chunk in raw:
        yield from inflate.feed(chunk, encoding)
    yield from inflate.feed(b"", encoding)


class _Inflater:
    """One compressed body: gzip members one after another, or deflate with or without its
    zlib header (decided by its first bytes)."""

    def __init__(self, gzipped: bool) -> None:
        self.gzipped = gzipped
        self.raw = False
        self.started = False
        self.z = self._new()

    def _new(self) -> Any:
        if self.gzipped:
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        return zlib.decompressobj(-zlib.MAX_WBITS if self.raw else zlib.MAX_WBITS)

    def feed(self, data: bytes, encoding: str) -> Iterator[bytes]:
        if not self.started and data and not self.gzipped:
            # A zlib stream starts with a header whose first two bytes are a multiple of 31.
            self.raw = len(data) < 2 or ((data[0] << 8) | data[1]) % 31 != 0 or data[0] & 0x0F != 8
            self.z = self._new()
        self.started = self.started or bool(data)
        final = not data
        while data or final:
            try:
                out = (
                    self.z.decompress(data, INFLATE_CHUNK)
                    if data
                    else self.z.decompress(b"", INFLATE_CHUNK)
                )
            except zlib.error as exc:
                raise httpx.DecodingError(f"the {encoding} body is corrupt: {exc}") from None
            data = self.z.unconsumed_tail
            if out:
                yield out
            if self.z.eof and self.z.unused_data:
                if not self.gzipped:
                    return  # bytes after a deflate stream: not part of the body
                data, self.z = self.z.unused_data + data, self._new()  # the next gzip member
                continue
            if final and not out:
                return


# ----------------------------------------------------------------------------- the log stream


class EventReader:
    """Server-sent events from raw chunks, holding at most ``cap`` bytes of a line and of an
    event's data: the rest of a longer line is dropped as it arrives, never buffered."""

    def __init__(self, cap: int = MAX_SSE_LINE) -> None:
        self.cap = cap
        self._line = bytearray()
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def events(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        for chunk in chunks:
            yield from self.feed(chunk)

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._keep(chunk[start:end])
            line = bytes(self._line).rstrip(b"\r").decode("utf-8", errors="replace")
            self._line.clear()
            event = self._field(line)
            if event is not None:
                yield event
            start = end + 1
        self._keep(chunk[start:])

    def _keep(self, piece: bytes) -> None:
        room = self.cap - len(self._line)
        if room > 0:
            self._line += piece[:room]

    def _field(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data" and self._size < self.cap:
            kept = value[: self.cap - self._size]
            self._data.append(kept)
            self._size += len(kept) + 1
        return None  # a comment (":..."), an id, a retry: nothing the provider uses

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._event and not self._data:
            return None
        event = ServerSentEvent(event=self._event or "message", data="\n".join(self._data))
        self._event, self._data, self._size = "", [], 0
        return event
