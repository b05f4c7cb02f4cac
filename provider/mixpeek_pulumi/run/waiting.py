"""Waiting for a business state: an explicit loop with a deadline, an interval and a wake-up.

Not retrying: a status that is not terminal yet is a normal answer. The loop sleeps on an
``Event`` so whoever learns first that the deploy ended (the log stream's ``done``) wakes it at
once instead of costing up to one interval. Transient API failures while polling are reported
and waited through until the deadline; auth and not-found errors end the wait. The deadline is
the operation's, shared with every request and retry made while waiting; its Cancel wakes the
loop too, which then ends as at the deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from ..deadline import Deadline
from ..errors import ApiConnectionError, RateLimitError, ResponseValidationError, ServerError

S = TypeVar("S")

# Failures that waiting longer can fix; anything else ends the wait at once.
TRANSIENT = (ApiConnectionError, RateLimitError, ServerError, ResponseValidationError)


FINAL_READ: Final = 1.0
"""Seconds kept before the deadline for a last status read."""


class WaitTimeout(Exception, Generic[S]):
    """The deadline passed; ``last`` is the last status seen (None if none was)."""

    def __init__(self, last: S | None) -> None:
        super().__init__("the deadline passed while waiting")
        self.last = last


@dataclass
class Poller(Generic[S]):
    fetch: Callable[[], S]
    is_terminal: Callable[[S], bool]
    deadline: Deadline
    interval: float
    max_interval: float | None = None
    """Intervals grow by half each time up to this; None keeps them fixed."""
    wake: threading.Event = field(default_factory=threading.Event)
    on_status: Callable[[S], None] | None = None
    on_problem: Callable[[str], None] | None = None
    relaxed: Callable[[], bool] | None = None
    """While this holds (a live log stream will wake us), back off towards ``max_interval``;
    when it stops holding, poll at ``interval`` again."""

    def run(self) -> S:
        """Fetch until terminal; raises ``WaitTimeout`` with the last status at the deadline,
        or as soon as the operation is cancelled."""
        release = self.deadline.on_cancel(self.wake.set)
        try:
            return self._loop()
        finally:
            release()

    def _loop(self) -> S:
        clock = self.deadline.clock
        interval = self.interval
        last: S | None = None
        while True:
            self.wake.clear()
            try:
                last = self.fetch()
            except TRANSIENT as exc:
                # At the deadline the refusal is only the deadline itself, which the timeout says.
                if self.on_problem and not self.deadline.expired:
                    self.on_problem(str(exc).splitlines()[0])
            else:
                if self.on_status:
                    self.on_status(last)
                if self.is_terminal(last):
                    return last
            if self.deadline.expired:
                raise WaitTimeout(last)
            clock.wait(self.wake, self._pause(interval))
            if self.deadline.cancelled:
                raise WaitTimeout(last)
            interval = self._next(interval)

    def _pause(self, interval: float) -> float:
        # A backed-off wait would leave the last status a whole interval old when the deadline
        # comes ("last status queued" of a deploy long since building): the wait that would
        # pass the deadline ends FINAL_READ before it instead, for one fresh read in time.
        remaining = self.deadline.remaining()
        if remaining > FINAL_READ and interval > remaining - FINAL_READ:
            return remaining - FINAL_READ
        return min(interval, remaining)

    def _next(self, interval: float) -> float:
        if self.relaxed is not None and not self.relaxed():
            return self.interval
        if self.max_interval:
            return min(interval * 1.5, self.max_interval)
        return interval


def await_terminal(poller: Poller[S], timed_out: Callable[[S | None], Exception]) -> S:
    """Run ``poller`` to a terminal status; at the deadline raise what ``timed_out`` builds
    from the last status seen."""
    try:
        return poller.run()
    except WaitTimeout as exc:
        raise timed_out(exc.last) from None
