"""The poll loop on a fake clock: intervals, back-off, the wake-up, transient errors, and the
one deadline."""

from __future__ import annotations

import threading

import pytest

from mixpeek_pulumi.deadline import Deadline
from mixpeek_pulumi.errors import ApiTimeoutError, AuthenticationError, ServerError
from mixpeek_pulumi.run.waiting import Poller, WaitTimeout
from tests.clock import FakeClock


def answers(*statuses: object) -> object:
    """A fetch that returns (or raises) each item in turn, then repeats the last."""
    queue = list(statuses)

    def fetch() -> object:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return fetch


def poller(clock: FakeClock, fetch: object, **kw: object) -> Poller[object]:
    options: dict[str, object] = {"interval": 2.0, "deadline": Deadline.after(60, clock)}
    options.update(kw)
    return Poller(fetch=fetch, is_terminal=lambda s: s == "done", **options)  # type: ignore[arg-type]


def test_polls_at_the_interval_until_terminal() -> None:
    clock = FakeClock()
    assert poller(clock, answers("queued", "building", "done")).run() == "done"
    assert clock.waits == [2.0, 2.0]


def test_backs_off_while_relaxed_and_returns_to_the_interval_after() -> None:
    clock = FakeClock()
    stream_alive = iter([True, True, True, False])
    result = poller(
        clock,
        answers("a", "b", "c", "d", "done"),
        max_interval=10.0,
        relaxed=lambda: next(stream_alive),
    ).run()
    assert result == "done"
    assert clock.waits == [2.0, 3.0, 4.5, 6.75]
    assert clock.waits[-1] > 2.0
    # After the stream stopped (False), the next wait went back to the interval.
    clock2 = FakeClock()
    alive = iter([True, False, False])
    poller(
        clock2, answers("a", "b", "c", "done"), max_interval=10.0, relaxed=lambda: next(alive)
    ).run()
    assert clock2.waits == [2.0, 3.0, 2.0]


def test_a_wake_up_ends_the_wait_at_once() -> None:
    clock = FakeClock()
    wake = threading.Event()
    statuses = answers("building", "done")

    def fetch() -> object:
        status = statuses()  # type: ignore[operator]
        wake.set()  # the log stream said "done" while we were asking
        return status

    poller(clock, fetch, interval=30.0, wake=wake).run()
    assert clock.waits == [0.0]  # no 30 s wait: the event cut it short


def test_transient_errors_are_reported_and_waited_through() -> None:
    clock = FakeClock()
    problems: list[str] = []
    flaky = ServerError(method="GET", path="/s", status_code=503, message="busy")
    timeout = ApiTimeoutError(method="GET", path="/s", reason="read timeout", sent=True)
    result = poller(clock, answers(flaky, timeout, "done"), on_problem=problems.append).run()
    assert result == "done"
    assert len(problems) == 2 and problems[0].startswith("Mixpeek API answered GET /s")


def test_errors_waiting_cannot_fix_end_the_wait() -> None:
    clock = FakeClock()
    denied = AuthenticationError(method="GET", path="/s", status_code=401, message="bad key")
    with pytest.raises(AuthenticationError):
        poller(clock, answers("queued", denied)).run()
    assert clock.waits == [2.0]


def test_the_deadline_ends_the_wait_with_the_last_status_seen() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        poller(clock, answers("building"), deadline=Deadline.after(5, clock)).run()
    assert info.value.last == "building"
    assert clock.waits == [2.0, 2.0, 1.0]  # the last wait is cut to the deadline
    assert clock.now == 1005.0


def test_a_deadline_reached_while_failing_reports_no_status() -> None:
    clock = FakeClock()
    flaky = ServerError(method="GET", path="/s", status_code=503, message="busy")
    with pytest.raises(WaitTimeout) as info:
        poller(clock, answers(flaky), deadline=Deadline.after(3, clock)).run()
    assert info.value.last is None


def test_a_timeout_reports_the_status_read_just_before_the_deadline() -> None:
    """With backed-off polls the last read could be a whole interval old at the deadline; the
    read that reaches the deadline is cut by it (as a real request is), so one fresh read lands
    just before it and the timeout names what the deploy is doing now."""
    clock = FakeClock()
    deadline = Deadline.after(15, clock)

    def fetch() -> object:
        if deadline.expired:
            raise ApiTimeoutError(method="GET", path="/s", reason="deadline", sent=False)
        return "queued" if clock.now < 1012 else "building"

    with pytest.raises(WaitTimeout) as info:
        poller(clock, fetch, interval=10.0, deadline=deadline).run()
    assert info.value.last == "building"
    assert clock.waits == [10.0, 4.0, 1.0]
