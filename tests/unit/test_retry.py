"""The retry policy on a fake clock: what may be sent again, how long it waits, and that no
retry outlives the operation's deadline."""

from __future__ import annotations

import pytest

from mixpeek_pulumi.api.retry import RetryPolicy, is_retryable
from mixpeek_pulumi.deadline import Deadline
from mixpeek_pulumi.errors import (
    ApiConnectionError,
    ApiStatusError,
    BadRequestError,
    RateLimitError,
    ServerError,
    status_error_class,
)
from tests.clock import FakeClock


def status(code: int, retry_after: float | None = None, **details: object) -> ApiStatusError:
    return status_error_class(code)(
        method="POST",
        path="/v1/x",
        status_code=code,
        message="m",
        retry_after=retry_after,
        details=details,
    )


def failing(*errors: Exception, then: object = "ok") -> object:
    queue = list(errors)
    calls: list[int] = []

    def fn() -> object:
        calls.append(1)
        if queue:
            raise queue.pop(0)
        return then

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


NOT_SENT = ApiConnectionError(method="POST", path="/v1/x", reason="refused", sent=False)
SENT = ApiConnectionError(method="POST", path="/v1/x", reason="reset", sent=True)


@pytest.mark.parametrize(
    ("exc", "creates", "expected"),
    [
        (NOT_SENT, True, True),
        (SENT, True, False),  # it may have been stored: never sent twice
        (SENT, False, True),
        (status(429), True, True),
        (status(503), True, True),
        (status(500), True, False),
        (status(500), False, True),
        (status(502), False, True),
        (status(400), False, False),
        (status(409), False, False),
        (status(503, retryable=False), False, False),  # the server said no
    ],
)
def test_what_may_be_sent_again(exc: Exception, creates: bool, expected: bool) -> None:
    assert is_retryable(exc, creates=creates) is expected


def test_server_requested_waits_are_honoured_and_capped() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=5, max_retry_after=10.0, sleep=clock.sleep)
    fn = failing(status(429, retry_after=3), status(503, retry_after_seconds=2), status(429, 500))
    assert policy.call(fn, creates=True, what="POST /v1/x") == "ok"  # type: ignore[arg-type]
    assert clock.waits == [3.0, 2.0, 10.0]


def test_backoff_without_a_hint_grows_with_jitter_and_a_cap() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=6, initial_delay=0.5, max_delay=2.0, sleep=clock.sleep)
    errors = [status(502) for _ in range(5)]
    assert policy.call(failing(*errors), creates=False, what="GET /x") == "ok"  # type: ignore[arg-type]
    bounds = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (1.0, 2.0), (1.0, 2.0)]
    assert all(low <= wait <= high for wait, (low, high) in zip(clock.waits, bounds, strict=True))


def test_no_retry_waits_past_the_operation_deadline() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=50, max_retry_after=60.0, sleep=clock.sleep)
    fn = failing(*[status(503, retry_after=4) for _ in range(50)])
    with pytest.raises(ServerError):
        policy.call(fn, creates=False, what="GET /x", deadline=Deadline.after(10, clock))  # type: ignore[arg-type]
    assert clock.waits == [4.0, 4.0]  # a third 4 s wait would have ended past the deadline
    assert clock.now <= 1010.0


def test_attempts_run_out_and_the_last_error_is_raised() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, sleep=clock.sleep)
    fn = failing(status(429, 1), status(429, 1), status(429, 1), status(429, 1))
    with pytest.raises(RateLimitError):
        policy.call(fn, creates=True, what="POST /v1/x")  # type: ignore[arg-type]
    assert len(fn.calls) == 3  # type: ignore[attr-defined]


def test_other_errors_are_raised_at_once() -> None:
    clock = FakeClock()
    fn = failing(status(400))
    with pytest.raises(BadRequestError):
        RetryPolicy(sleep=clock.sleep).call(fn, creates=False, what="GET /x")  # type: ignore[arg-type]
    assert clock.waits == []


def test_retries_are_reported_with_the_reason_and_the_delay() -> None:
    clock = FakeClock()
    said: list[str] = []
    policy = RetryPolicy(sleep=clock.sleep, on_retry=said.append)
    policy.call(failing(status(429, 2)), creates=True, what="POST /v1/x")  # type: ignore[arg-type]
    assert said == [
        "POST /v1/x: attempt 1 of 6 failed (Mixpeek API answered POST /v1/x with HTTP 429 "
        "error: m); "
        "retrying in 2.0s"
    ]
