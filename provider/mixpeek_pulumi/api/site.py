"""One bounded GET of a live site, as the verification of a switch makes it: no API key, past
any cache, with every step (the name lookup, the connect, the status line, the headers, each
byte of the body) inside one bound that a Cancel ends at once.

httpx bounds each socket operation, not a request, and resolves names with the system's
resolver, which no timeout or socket shutdown reaches. So the name is looked up here, in a
thread whose wait has the bound, and the request goes to each address found in turn (as a
socket connect would), with the name kept for the ``Host`` header and TLS; the exchange's
watchdog (``bounds``) shuts the socket when the bound is spent. A site the environment sends
through a proxy is asked through it, name and all, as curl and browsers do. Redirects are
followed here, each one asked past the cache again.
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

from .._version import __version__
from ..deadline import Deadline
from ..errors import (
    ApiConnectionError,
    ApiInterruptedError,
    ApiTimeoutError,
    MixpeekError,
    UnreadableEncodingError,
)
from .transport import Lane, exchange

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
    """A GET that got no complete answer: ``timed_out`` (the bound ended it), ``interrupted``
    (a Cancel), or ``unreadable`` (an answer in an encoding the provider cannot read, which
    says nothing of the version)."""

    def __init__(
        self,
        message: str,
        *,
        timed_out: bool = False,
        interrupted: bool = False,
        unreadable: bool = False,
    ) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.interrupted = interrupted
        self.unreadable = unreadable


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
    kept = [q for q in parts.query.split("&") if q and not q.startswith(f"{BUST}=")]
    query = "&".join([*kept, f"{BUST}={secrets.token_hex(8)}"])
    return urlunsplit(parts._replace(query=query))


def get(
    url: str,
    deadline: Deadline,
    *,
    within: float,
    follow: bool = True,
    algorithms: Iterable[str] = (),
    resolve: Resolver | None = None,
) -> Page:
    """GET ``url`` (past any cache) within ``deadline``, redirects followed when ``follow``;
    the body is decoded (gzip, deflate) and hashed whole with each of ``algorithms`` as it
    arrives, its first MiB kept. Raises ``SiteError`` saying what went wrong, in words for
    the user (``within``: the seconds the bound allowed, as they name it)."""
    names = tuple(algorithms)
    look = resolve or socket.getaddrinfo
    for _ in range(MAX_REDIRECTS + 1):
        page, location = _one(busted(url), deadline, within, names, look)
        if not (follow and location and 300 <= page.status < 400):
            return page
        url = urljoin(url, location)
    raise SiteError(f"GET {shown(url)} redirected more than {MAX_REDIRECTS} times")


def _one(
    url: str, deadline: Deadline, within: float, algorithms: tuple[str, ...], resolve: Resolver
) -> tuple[Page, str | None]:
    """One request, to each address of the host in turn until one takes the connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _proxied(parts.scheme, host):
        return _ask(url, url, {}, deadline, within, algorithms, proxy=True)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _lookup(host, port, deadline, within, resolve)
    refused: SiteError | None = None
    for address in addresses:
        target, extensions = url, {}
        if address != host:
            literal = f"[{address}]" if ":" in address else address
            netloc = literal + (f":{parts.port}" if parts.port else "")
            target = urlunsplit(parts._replace(netloc=netloc))
            extensions["sni_hostname"] = host
        try:
            return _ask(url, target, extensions, deadline, within, algorithms, proxy=False)
        except _Unreachable as exc:
            refused = exc.error  # the next address may take it, as a socket connect tries
    assert refused is not None
    raise refused


class _Unreachable(Exception):
    """The connection was not taken at this address (nothing was sent)."""

    def __init__(self, error: SiteError) -> None:
        self.error = error


def _ask(
    url: str,
    target: str,
    extensions: dict[str, Any],
    deadline: Deadline,
    within: float,
    algorithms: tuple[str, ...],
    *,
    proxy: bool,
) -> tuple[Page, str | None]:
    parts = urlsplit(url)
    headers = {**HEADERS, "Host": parts.netloc.rpartition("@")[2]}
    # Sent to an address already looked up: no proxy (NO_PROXY names hosts, not addresses).
    with httpx.Client(headers=headers, follow_redirects=False, trust_env=proxy) as http:
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
                    page = _read(url, response, ex.chunks(response), algorithms)
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
            error = SiteError(f"GET {shown(url)} failed ({exc.reason})")
            if not exc.sent:
                raise _Unreachable(error) from None
            raise error from None
        except UnreadableEncodingError as exc:
            said = str(exc).rpartition(": ")[2].rstrip(".")
            raise SiteError(
                f"GET {shown(url)} answered a body that {said}", unreadable=True
            ) from None
        except MixpeekError as exc:  # a corrupt compressed body
            raise SiteError(
                f"GET {shown(url)} answered a body that cannot be read ({exc})"
            ) from None


def _read(
    url: str, response: httpx.Response, chunks: Iterable[bytes], algorithms: tuple[str, ...]
) -> Page:
    hashes = {name: hashlib.new(name) for name in algorithms}
    start = bytearray()
    size = 0
    if algorithms or response.status_code < 300:
        for chunk in chunks:
            size += len(chunk)
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


def _lookup(
    host: str, port: int, deadline: Deadline, within: float, resolve: Resolver
) -> list[str]:
    """The addresses of ``host``, looked up in a thread so that a resolver that never answers
    costs the bound, not its own timeout; the thread is left to end by itself."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    if host == "localhost" or host.endswith(".localhost"):
        # RFC 6761: every localhost name is loopback, as browsers and curl resolve it (the
        # system's resolver often knows only "localhost"); a local emulator serves each site
        # on a host of its own under it.
        return ["127.0.0.1", "::1"]
    found: list[str] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def look() -> None:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
            found.extend(dict.fromkeys(str(info[4][0]) for info in infos))
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
    return found


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
