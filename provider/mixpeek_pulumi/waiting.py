"""Waiting for a business state: an explicit loop with a deadline, an interval and a wake-up.

Not retrying: a status that is not terminal yet is a normal answer. The loop sleeps on an
``Event`` so whoever learns first that the deploy ended (the log stream's ``done``) wakes it at
once instead of costing up to one interval. Transient API failures while polling are reported
and waited through until the deadline; auth and not-found errors end the wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import (
    ApiConnectionError,
    ApiStatusError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

S = TypeVar("S")


@dataclass
class Clock:
    """The time seam: tests pass a fake, everything else uses the monotonic clock."""

    monotonic: Callable[[], float] = time.monotonic


class WaitTimeout(Exception, Generic[S]):
    def __init__(self, last: S | None, elapsed: float) -> None:
        super().__init__(f"still waiting after {elapsed:.1f}s")
        self.last = last
        self.elapsed = elapsed


@dataclass
class Poller(Generic[S]):
    fetch: Callable[[], S]
    is_terminal: Callable[[S], bool]
    timeout: float
    interval: float
    max_interval: float | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    on_status: Callable[[S], None] | None = None
    on_problem: Callable[[str], None] | None = None
    relaxed: Callable[[], bool] | None = None
    """While this holds (a live log stream will wake us), back off towards ``max_interval``;
    when it stops holding, poll at ``interval`` again."""
    clock: Clock = field(default_factory=Clock)

    def run(self) -> S:
        """Fetch until terminal; raises ``WaitTimeout`` with the last status at the deadline."""
        start = self.clock.monotonic()
        deadline = start + self.timeout
        interval = self.interval
        last: S | None = None
        while True:
            self.wake.clear()
            try:
                last = self.fetch()
            except (
                ApiConnectionError,
                RateLimitError,
                ServerError,
                ResponseValidationError,
            ) as exc:
                if self.on_problem:
                    self.on_problem(str(exc).splitlines()[0])
            else:
                if self.on_status:
                    self.on_status(last)
                if self.is_terminal(last):
                    return last
            now = self.clock.monotonic()
            if now >= deadline:
                raise WaitTimeout(last, now - start)
            self.wake.wait(min(interval, deadline - now))
            if self.relaxed is not None and not self.relaxed():
                interval = self.interval
            elif self.max_interval:
                interval = min(interval * 1.5, self.max_interval)


def is_fatal(exc: BaseException) -> bool:
    """Errors that waiting longer cannot fix."""
    return isinstance(exc, ApiStatusError) and not isinstance(exc, RateLimitError | ServerError)
