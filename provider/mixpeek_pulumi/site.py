"""One bounded GET of a live site, as the verification of a switch makes it: no API key, past
any cache, with every step (the name lookup, the connect, the status line, the headers, each
byte of the body) inside one bound that a Cancel ends at once.

httpx bounds each socket operation, not a request, and resolves names with the system's
resolver, which no timeout or socket shutdown reaches. So the name is looked up here, in a
thread whose wait has the bound, and the request goes to the address found with the name kept
for the ``Host`` header and TLS; the exchange's watchdog (``bounds``) shuts the socket when the
bound is spent. Redirects are followed here, each new host looked up the same way.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ._version import __version__
from .bounds import Lane, exchange, size_text
from .deadline import Deadline
from .errors import ApiConnectionError, ApiInterruptedError, ApiTimeoutError, MixpeekError

MAX_REDIRECTS: Final = 3
KEEP_TEXT: Final = 1024 * 1024
"""How much of a decoded body is kept to search for text; the rest is only hashed."""
BUST: Final = "mixpeek-verify"
"""The query parameter that makes each request one no cache has answered before."""
HEADERS: Final = {
    "User-Agent": f"mixpeek-pulumi/{__version__} (verify)",
    # Uncompressed is asked for; gzip and deflate are read anyway (a site serving only
    # pre-compressed objects sends them whatever it is asked).
    "Accept-Encoding": "identity",
    "Cache-Control": "no-cache, no-store, max-age=0",
    "Pragma": "no-cache",
}
Resolver = Callable[..., list[tuple[Any, ...]]]


class SiteError(MixpeekError):
    """A GET that got no complete answer; ``timed_out`` says the bound ended it."""

    def __init__(self, message: str, *, timed_out: bool = False, interrupted: bool = False):
        super().__init__(message)
        self.timed_out = timed_out
        self.interrupted = interrupted


@dataclass(frozen=True)
class Page:
    """What one GET answered: its URL after redirects, status, and the decoded body's
    start, size and digests."""

    url: str
    status: int
    start: bytes
    size: int
    digests: dict[str, str] = field(default_factory=dict)
    encoding: str = "identity"

    def text(self) -> str:
        return self.start.decode("utf-8", errors="replace")


def busted(url: str) -> str:
    """``url`` with a parameter no one asked for before, so no cache holds an answer for it."""
    parts = urlsplit(url)
    extra = f"{BUST}={secrets.token_hex(8)}"
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def get(
    url: str,
    deadline: Deadline,
    *,
    within: float,
    follow: bool = True,
    algorithms: Iterable[str] = (),
    max_bytes: int = 64 * 1024 * 1024,
    resolve: Resolver | None = None,
) -> Page:
    """GET ``url`` within ``deadline``, redirects followed when ``follow``; the body is
    decoded (gzip, deflate) and hashed with each of ``algorithms`` as it arrives. Raises
    ``SiteError`` saying what went wrong, in words for the user (``within``: the seconds the
    bound allowed, as they name it)."""
    names = tuple(algorithms)
    look = resolve or socket.getaddrinfo
    for _ in range(MAX_REDIRECTS + 1):
        page, location = _one(url, deadline, within, names, max_bytes, look)
        if not (follow and location and 300 <= page.status < 400):
            return page
        url = urljoin(url, location)
    raise SiteError(f"GET {shown(url)} redirected more than {MAX_REDIRECTS} times")


def _one(
    url: str,
    deadline: Deadline,
    within: float,
    algorithms: tuple[str, ...],
    cap: int,
    resolve: Resolver,
) -> tuple[Page, str | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    target, extensions = url, {}
    if not _proxied(parts.scheme, host):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _lookup(host, port, deadline, within, resolve)
        if address != host:
            literal = f"[{address}]" if ":" in address else address
            netloc = literal + (f":{parts.port}" if parts.port else "")
            target = urlunsplit(parts._replace(netloc=netloc))
            extensions["sni_hostname"] = host
    headers = {**HEADERS, "Host": parts.netloc.rpartition("@")[2]}
    with httpx.Client(headers=headers, follow_redirects=False) as http:
        lane = Lane(http)
        try:
            with exchange(lane, deadline, "GET", shown(url), None) as ex:
                request = http.build_request(
                    "GET",
                    target,
                    timeout=ex.timeouts(httpx.Timeout(None)),
                    extensions={**lane.extensions, **extensions},
                )
                with ex.streamed(request) as response:
                    page = _read(url, response, ex.chunks(response), algorithms, cap)
                    return page, response.headers.get("location")
        except SiteError:
            raise
        except ApiInterruptedError:
            raise SiteError(f"GET {shown(url)} was interrupted", interrupted=True) from None
        except ApiTimeoutError:
            raise SiteError(
                f"GET {shown(url)} did not answer in full within {_seconds(within)}",
                timed_out=True,
            ) from None
        except ApiConnectionError as exc:
            raise SiteError(f"GET {shown(url)} failed ({exc.reason})") from None
        except MixpeekError as exc:  # a body in an encoding it cannot read
            raise SiteError(
                f"GET {shown(url)} answered a body that cannot be read ({exc})"
            ) from None


def _read(
    url: str,
    response: httpx.Response,
    chunks: Iterable[bytes],
    algorithms: tuple[str, ...],
    cap: int,
) -> Page:
    hashes = {name: hashlib.new(name) for name in algorithms}
    start = bytearray()
    size = 0
    if algorithms or response.status_code < 300:
        for chunk in chunks:
            size += len(chunk)
            if size > cap:
                raise SiteError(f"GET {shown(url)} answered more than {size_text(cap)}")
            for digest in hashes.values():
                digest.update(chunk)
            if len(start) < KEEP_TEXT:
                start += chunk[: KEEP_TEXT - len(start)]
    return Page(
        url=url,
        status=response.status_code,
        start=bytes(start),
        size=size,
        digests={name: h.hexdigest() for name, h in hashes.items()},
        encoding=response.headers.get("content-encoding", "identity").strip() or "identity",
    )


def _lookup(host: str, port: int, deadline: Deadline, within: float, resolve: Resolver) -> str:
    """An address of ``host``, looked up in a thread so that a resolver that never answers
    costs the bound, not its own timeout; the thread is left to end by itself."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    found: list[str] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def look() -> None:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
            found.extend(str(info[4][0]) for info in infos)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting thread
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=look, name="mixpeek-resolve", daemon=True).start()
    release = deadline.on_cancel(done.set)
    try:
        deadline.clock.wait(done, deadline.remaining())
    finally:
        release()
    if deadline.cancelled:
        raise SiteError(f"looking up {host} was interrupted", interrupted=True)
    if failed:
        raise SiteError(f"{host} could not be looked up ({failed[0]})")
    if not found:
        raise SiteError(
            f"looking up {host} did not answer within {_seconds(within)}", timed_out=True
        )
    return found[0]


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment sends this request through a proxy (which looks the name up)."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _seconds(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + " s"


def shown(url: str) -> str:
    """The URL without the cache-busting parameter, as messages show it."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith(f"{BUST}="))
    return urlunsplit(parts._replace(query=query))
