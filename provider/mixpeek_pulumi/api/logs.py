"""Following a deploy's SSE log stream on a side thread, with a bounded tail for errors.

The stream is a side channel: status truth comes from GET, so a broken or stuck stream never
fails a deploy. A reconnect replays cached lines, which are skipped so nothing echoes twice.
When the server ends the stream with ``event: done`` the waiter is woken at once. Memory stays
bounded whatever the server sends: a line is shown up to ``LINE_CHARS`` characters (the client
already cut the stream's lines at 64 KiB), and only the last ``MAX_SEEN`` lines are remembered.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Final

from ..deadline import SYSTEM_CLOCK, Clock
from ..errors import MixpeekError, redact
from .client import MixpeekClient

TAIL_LINES: Final = 20
MAX_RECONNECTS: Final = 5
LINE_CHARS: Final = 1000
MAX_SEEN: Final = 100_000


class LogFollower(threading.Thread):
    """Reads the stream until ``done``, a stop request or too many broken connections."""

    def __init__(
        self,
        client: MixpeekClient,
        app_id: str,
        deploy_id: str,
        *,
        sink: Callable[[str], None],
        wake: threading.Event,
        tail: int = TAIL_LINES,
        max_reconnects: int = MAX_RECONNECTS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name=f"logs-{deploy_id}", daemon=True)
        self.client = client
        self.app_id = app_id
        self.deploy_id = deploy_id
        self.sink = sink
        self.wake = wake
        self.tail: deque[str] = deque(maxlen=tail)
        self.max_reconnects = max_reconnects
        self.clock = clock
        self.finished = threading.Event()  # the server said done
        self.stopping = threading.Event()
        self._seen: dict[int, None] = {}  # in arrival order, so the oldest go first
        self._lock = threading.Lock()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self.tail)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.wake.set()  # done or given up: either way the waiter should look now

    def _run(self) -> None:
        attempts = 0
        while not self.stopping.is_set() and attempts <= self.max_reconnects:
            try:
                if self._follow_once():
                    self.finished.set()
                    return
            except MixpeekError:
                pass
            attempts += 1
            if self.clock.wait(self.stopping, min(0.2 * 2**attempts, 5.0)):
                return

    def _follow_once(self) -> bool:
        with self.client.deploy_log_events(self.app_id, self.deploy_id) as events:
            for event in events:
                if self.stopping.is_set():
                    return False
                if event.event == "done":
                    return True
                if not event.data:
                    continue
                self._line(event.data)
        return False

    def _line(self, data: str) -> None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            payload = {"line": data}
        if not isinstance(payload, dict):
            return
        line = _shown(redact(str(payload.get("line", ""))))
        key = hash((str(payload.get("ts")), line))
        with self._lock:
            if key in self._seen:
                return
            self._seen[key] = None
            if len(self._seen) > MAX_SEEN:
                del self._seen[next(iter(self._seen))]
            self.tail.append(line)
        self.sink(line)


def _shown(line: str) -> str:
    if len(line) <= LINE_CHARS:
        return line
    return f"{line[:LINE_CHARS]} … [{len(line) - LINE_CHARS} more characters not shown]"
