"""The one deadline an operation has, and the clock it is read from.

A create, update or delete gets one ``Deadline`` (``timeout_seconds``, or the engine's own timeout
where it sends one). Polls, retries and each request's read timeout all take what is left of it,
so no layer can wait on its own budget past the resource's timeout. The engine's ``Cancel`` is a
``Cancellation``: it ends every wait at once and calls back whoever holds a connection open.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Listener = Callable[[], None]


class Clock(Protocol):
    """The time seam: the monotonic clock and a sleep that a wake-up event can cut short."""

    def monotonic(self) -> float: ...

    def wait(self, event: threading.Event, seconds: float) -> bool: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


def _nothing() -> None:
    return None


class Cancellation(threading.Event):
    """The engine's request to stop: an ``Event`` (every wait on it ends when it is set) that
    also calls its listeners once, so one ``Cancel`` reaches the connections of every operation
    sharing it. Listeners run on the thread that sets it and must return at once."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()
        self._listeners: dict[int, Listener] = {}
        self._counter = 0

    def set(self) -> None:
        with self._guard:
            super().set()
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for listener in listeners:
            listener()

    def subscribe(self, listener: Listener) -> Listener:
        """Call ``listener`` when this is set (now, if it already is); returns the call that
        takes it back."""
        with self._guard:
            if not self.is_set():
                self._counter += 1
                key = self._counter
                self._listeners[key] = listener
                return lambda: self._drop(key)
        listener()
        return _nothing

    def _drop(self, key: int) -> None:
        with self._guard:
            self._listeners.pop(key, None)


@dataclass(frozen=True)
class Deadline:
    """A point on a clock by which an operation must end; ``math.inf`` seconds means none. A
    set ``cancel`` event (the engine asked to stop) ends it at once."""

    at: float
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False, repr=False)
    cancel: threading.Event | None = field(default=None, compare=False, repr=False)

    @classmethod
    def after(
        cls, seconds: float, clock: Clock = SYSTEM_CLOCK, cancel: threading.Event | None = None
    ) -> Deadline:
        return cls(clock.monotonic() + seconds, clock, cancel)

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def remaining(self) -> float:
        if self.cancelled:
            return 0.0
        return max(0.0, self.at - self.clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, seconds: float) -> float:
        """``seconds``, or less if the deadline comes first."""
        return min(seconds, self.remaining())

    def on_cancel(self, listener: Listener) -> Listener:
        """Call ``listener`` when the operation is cancelled; returns the call that takes it
        back. A plain ``Event`` cannot call back: it is only looked at between steps."""
        if isinstance(self.cancel, Cancellation):
            return self.cancel.subscribe(listener)
        return _nothing

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this deadline's clock, or less if the operation is cancelled."""
        self.clock.wait(self.cancel or threading.Event(), seconds)

    def sooner(self, seconds: float | None) -> Deadline:
        """This deadline, or one ``seconds`` from now if that comes first."""
        if seconds is None:
            return self
        other = self.clock.monotonic() + seconds
        return self if self.at <= other else Deadline(other, self.clock, self.cancel)
