"""The retry policy: what may be sent again, and how long to wait first (tenacity).

Retrying is for transient transport and HTTP failures; waiting for a deploy to finish is
``waiting``'s job. A request that creates something is only sent again when it provably never
reached the server, or when the server said it stored nothing (429, 503), so one call never makes
two deploys. A wait between attempts ends at once when the operation is cancelled.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from tenacity import RetryCallState, Retrying
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ..deadline import Deadline
from ..errors import ApiConnectionError, ApiStatusError, RateLimitError, ServerError

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS: Final = 6
DEFAULT_DEADLINE_SECONDS: Final = 180.0
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0

# Statuses after which the server has, by its own account, stored nothing.
_NOTHING_STORED: Final = frozenset({429, 503})
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def is_retryable(exc: BaseException, *, creates: bool) -> bool:
    """Whether ``exc`` may be retried for a request that does (or does not) create something."""
    if isinstance(exc, ApiConnectionError):
        return not exc.sent or not creates
    if isinstance(exc, ApiStatusError):
        if exc.retryable_hint is False:
            return False
        if creates:
            return exc.status_code in _NOTHING_STORED
        return exc.status_code in _TRANSIENT
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Plain, picklable retry settings; ``sleep`` is the seam tests replace (by default the
    wait is on the operation's deadline, so that a Cancel ends it)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    sleep: Callable[[float], None] | None = field(default=None, compare=False)
    on_retry: Callable[[str], None] | None = field(default=None, compare=False)

    def call(
        self,
        fn: Callable[[], T],
        *,
        creates: bool,
        what: str,
        deadline: Deadline | None = None,
    ) -> T:
        """Run ``fn``, retrying per this policy; the last error is raised as is.

        No retry starts if its wait would end past ``deadline`` (the operation's) or past this
        policy's own ``deadline_seconds`` from the first attempt, whichever comes first.
        """
        if deadline is None:
            overall = Deadline.after(self.deadline_seconds)
        else:
            overall = deadline.sooner(self.deadline_seconds)
        retrying = Retrying(
            retry=_RetryIf(creates),
            wait=_ServerAwareWait(self),
            stop=_Stop(self.max_attempts, overall),
            sleep=self.sleep or overall.sleep,
            reraise=True,
            before_sleep=self._before_sleep(what),
        )
        return retrying(fn)

    def _before_sleep(self, what: str) -> Callable[[RetryCallState], None]:
        def report(state: RetryCallState) -> None:
            if self.on_retry is None or state.outcome is None or state.next_action is None:
                return
            exc = state.outcome.exception()
            first = str(exc).splitlines()[0] if exc else "unknown error"
            self.on_retry(
                f"{what}: attempt {state.attempt_number} of {self.max_attempts} failed "
                f"({first.rstrip('.')}); "
                f"retrying in {state.next_action.sleep:.1f}s"
            )

        return report


class _Stop(stop_base):
    """Out of attempts, or the next wait would end past the deadline."""

    def __init__(self, attempts: int, deadline: Deadline) -> None:
        self.attempts = attempts
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.attempts:
            return True
        return retry_state.upcoming_sleep >= self.deadline.remaining()


class _RetryIf:
    def __init__(self, creates: bool) -> None:
        self.creates = creates

    def __call__(self, state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        exc = state.outcome.exception()
        return exc is not None and is_retryable(exc, creates=self.creates)


class _ServerAwareWait(wait_base):
    """Retry-After (header or ``error.details.retry_after_seconds``) first, else backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = server_requested_delay(exc)
        if asked is not None:
            return min(asked, self.policy.max_retry_after)
        exp = self.policy.initial_delay * (2.0 ** (retry_state.attempt_number - 1))
        capped = float(min(exp, self.policy.max_delay))
        # Full jitter keeps four provider threads from retrying in lockstep.
        return capped / 2 + random.uniform(0, capped / 2)


def server_requested_delay(exc: BaseException | None) -> float | None:
    """The delay the server asked for on a 429/503, from the header or the error details."""
    if not isinstance(exc, RateLimitError | ServerError):
        return None
    if exc.retry_after is not None:
        return exc.retry_after
    value = exc.details.get("retry_after_seconds")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value))
    return None
