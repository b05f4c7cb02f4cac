"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol through a
pipe, not a port: it loads a page and reports every request, answer, failure and error it saw.

Chromium is kept to loopback: no proxy, no QUIC, no background, component, sync or first-run
traffic, a fresh profile, and every answer's address is returned for the caller to check.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

CHROMIUM: Final = shutil.which("chromium")
FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # a proxy in the environment must not see the page's requests
    "--remote-debugging-pipe",  # the protocol on fds 3 and 4: no port to open
)


TRAMPOLINE: Final = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class BrowserError(Exception):
    pass


@dataclass
class PageLoad:
    """What loading one page showed: each request's URL, and its answer or failure."""

    requested: dict[str, str] = field(default_factory=dict)  # request id -> URL
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> response
    failures: list[dict[str, Any]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors
    loaded: bool = False

    def note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requested[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            self.answers[params["requestId"]] = params["response"]
        elif method == "Network.loadingFinished":
            self.finished.add(params["requestId"])
        elif method == "Network.loadingFailed":
            self.finished.add(params["requestId"])
            self.failures.append(params)
        elif method == "Page.loadEventFired":
            self.loaded = True
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:2000])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"{params['entry'].get('url')}: {params['entry']['text']}")

    @property
    def settled(self) -> bool:
        """The load event fired and every request started has ended, well or not."""
        return self.loaded and set(self.requested) <= self.finished

    def failed(self) -> list[str]:
        """Every request that did not end in a 2xx or 3xx answer, in words, by URL."""
        failures = {f["requestId"]: f["errorText"] for f in self.failures}
        said = []
        for request, url in sorted(self.requested.items(), key=lambda item: item[1]):
            status = int(self.answers.get(request, {}).get("status", 0))
            if status >= 400:
                said.append(f"{url} answered {status}")
            elif request in failures:
                said.append(f"{url} failed: {failures[request]}")
        return said

    def ended(self, path: str) -> bool:
        """Whether a request for ``path`` was made and has ended, well or not."""
        return any(
            urlsplit(url).path == path and request in self.finished
            for request, url in self.requested.items()
        )


class Browser:
    """One headless Chromium with a fresh profile in ``profile``; close it after use."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None, "the caller skips when Chromium is not installed"
        to_browser, self._commands = os.pipe()
        self._answers, from_browser = os.pipe()
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            # The protocol pipe is the child's fds 3 (commands) and 4 (answers). Popen cannot
            # choose a child's fd numbers and a shell's redirections stop at fd 9, so a Python
            # trampoline puts them there and becomes Chromium.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    TRAMPOLINE,
                    str(to_browser),
                    str(from_browser),
                    CHROMIUM,
                    *FLAGS,
                    f"--user-data-dir={profile / 'profile'}",
                    "about:blank",
                ],
                pass_fds=(to_browser, from_browser),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        os.close(to_browser)
        os.close(from_browser)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0
        self._session: str | None = None

    def _read(self) -> None:
        pending = b""
        with os.fdopen(self._answers, "rb", buffering=0) as answers:
            while chunk := answers.read(65536):
                pending += chunk
                *messages, pending = pending.split(b"\0")
                for raw in messages:
                    self._inbox.put(json.loads(raw))
        self._inbox.put(None)  # the browser is gone

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BrowserError("Chromium did not answer in time") from None
        if message is None:
            raise BrowserError(f"Chromium exited; its log: {self.log_tail()}")
        return message

    def call(
        self, method: str, deadline: float, page: PageLoad | None = None, **params: Any
    ) -> dict[str, Any]:
        """Send a command (to the page, once one is open) and wait for its answer; the
        events that come meanwhile go to ``page``."""
        sent = self._send(method, params, self._session)
        while True:
            message = self._next(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if page is not None and message.get("sessionId") == self._session:
                page.note(message)

    def load(self, url: str, seconds: float = 60.0) -> PageLoad:
        """Open ``url`` in a new tab and wait until it is loaded and every request it made
        has ended; the tab stays open for ``evaluate``."""
        deadline = time.monotonic() + seconds
        page = PageLoad()
        target = self.call("Target.createTarget", deadline, url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", deadline, targetId=target, flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", deadline, page)
        navigated = self.call("Page.navigate", deadline, page, url=url)
        if navigated.get("errorText"):
            raise BrowserError(f"{url} did not load: {navigated['errorText']}")
        self.wait(page, lambda: page.settled, deadline)
        return page

    def wait(self, page: PageLoad, condition: Callable[[], bool], deadline: float) -> None:
        """Take the page's events until ``condition`` holds, or fail at ``deadline``."""
        while not condition():
            message = self._next(deadline)
            if message.get("sessionId") == self._session:
                page.note(message)

    def evaluate(self, expression: str, page: PageLoad, seconds: float = 30.0) -> Any:
        """The value of ``expression`` in the open page, awaited if it is a promise."""
        deadline = time.monotonic() + seconds
        result = self.call(
            "Runtime.evaluate",
            deadline,
            page,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            timeout=seconds * 1000,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        try:
            self._session = None
            self._send("Browser.close", {}, None)
            self.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=15)
        finally:
            os.close(self._commands)
            self._reader.join(timeout=15)
