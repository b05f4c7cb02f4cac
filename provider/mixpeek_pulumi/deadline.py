"""The one deadline an operation has, and the clock it is read from.

A create, update or delete gets one ``Deadline`` (``timeout_seconds``, or the engine's own timeout
where it sends one). Polls, retries and each request's read timeout all take what is left of it,
so no layer can wait on its own budget past the resource's timeout.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol


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

    def sooner(self, seconds: float | None) -> Deadline:
        """This deadline, or one ``seconds`` from now if that comes first."""
        if seconds is None:
            return self
        other = self.clock.monotonic() + seconds
        return self if self.at <= other else Deadline(other, self.clock, self.cancel)
