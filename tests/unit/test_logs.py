"""The log follower against a scripted SSE server: lines in order, nothing twice after a
reconnect, a bounded and redacted tail, the wake-up on ``done``, and no failure ever raised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.logs import LogFollower
from tests.clock import FakeClock
from tests.scripted_server import Reply, ScriptedServer, scripted_server

KEY = "sk_live_LOG_TEST_KEY_0c2f7e"
STREAM = "/v1/apps/app_1/deploys/dep_1/logs/stream"


def sse(*lines: str, done: bool = True, start: float = 100.0) -> Reply:
    events = [
        f"data: {json.dumps({'ts': start + i, 'line': line})}\n\n" for i, line in enumerate(lines)
    ]
    if done:
        events.append("event: done\ndata: {}\n\n")
    return Reply(200, raw="".join(events).encode(), headers={"Content-Type": "text/event-stream"})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


def follow(server: ScriptedServer, **kw: object) -> tuple[LogFollower, list[str], threading.Event]:
    seen: list[str] = []
    wake = threading.Event()
    client = MixpeekClient(api_key=KEY, base_url=server.url)
    follower = LogFollower(
        client,
        "app_1",
        "dep_1",
        sink=seen.append,
        wake=wake,
        clock=FakeClock(),
        **kw,  # type: ignore[arg-type]
    )
    follower.start()
    follower.join(timeout=30)
    client.close()
    assert not follower.is_alive()
    return follower, seen, wake


def test_lines_in_order_then_done_wakes_the_waiter(server: ScriptedServer) -> None:
    server.add("GET", STREAM, sse("Build started", "Extracting 3 files", "Deploy complete!"))
    follower, seen, wake = follow(server)
    assert seen == ["Build started", "Extracting 3 files", "Deploy complete!"]
    assert follower.finished.is_set() and wake.is_set()
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert server.seen[0].headers["Accept"] == "text/event-stream"


def test_a_reconnect_replays_the_cache_and_nothing_is_shown_twice(server: ScriptedServer) -> None:
    server.add(
        "GET",
        STREAM,
        sse("one", "two", done=False),  # the connection ends mid-build
        sse("one", "two", "three"),  # the server replays its cache, then goes on
    )
    follower, seen, _ = follow(server)
    assert seen == ["one", "two", "three"]
    assert server.count("GET", STREAM) == 2
    assert follower.finished.is_set()


def test_the_tail_is_bounded_and_redacted(server: ScriptedServer) -> None:
    lines = [f"step {i}" for i in range(30)] + [f"env MIXPEEK_API_KEY={KEY}"]
    server.add("GET", STREAM, sse(*lines))
    follower, seen, _ = follow(server, tail=5)
    assert len(seen) == 31
    assert KEY not in "\n".join(seen)
    assert follower.lines()[:4] == ["step 26", "step 27", "step 28", "step 29"]
    assert KEY not in follower.lines()[-1] and "MIXPEEK_API_KEY=" in follower.lines()[-1]


def test_a_stream_that_keeps_failing_is_given_up_without_an_error(
    server: ScriptedServer,
) -> None:
    server.add("GET", STREAM, *[Reply(503, {"error": {"message": "busy"}}) for _ in range(3)])
    follower, seen, wake = follow(server, max_reconnects=2)
    assert seen == []
    assert server.count("GET", STREAM) == 3
    assert not follower.finished.is_set()
    assert wake.is_set()  # the waiter looks at the status at once instead of waiting
