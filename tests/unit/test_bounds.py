"""The bounds of every exchange, through the real client and a loopback server: one time budget
for the whole exchange, a Cancel that ends waits and requests in flight at once, and caps on
what an answer may hold in memory.

Each hostile server here outlives its test (it trickles or holds for a minute or more), so a
missing bound shows as a test stopped by its own timeout, not as a slow pass.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.logs import LINE_CHARS, LogFollower
from mixpeek_pulumi.api.retry import RetryPolicy
from mixpeek_pulumi.api.transport import EventReader
from mixpeek_pulumi.deadline import Cancellation, Deadline
from mixpeek_pulumi.errors import (
    ApiInterruptedError,
    ApiTimeoutError,
    MixpeekError,
    ResponseTooLargeError,
    ServerError,
)
from mixpeek_pulumi.run.waiting import Poller, WaitTimeout
from tests.emulator_fixture import wait_until
from tests.scripted_server import Reply, ScriptedServer, flood, scripted_server, trickle

KEY = "sk_test_BOUNDS_KEY_4e1d9a"
STATUS = "/v1/apps/app_1/deploys/dep_1"
STREAM = f"{STATUS}/logs/stream"
OK_STATUS = {"deploy_id": "dep_1", "status": "building"}
HUGE = 400 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


def client(
    server: ScriptedServer,
    *,
    seconds: float = 600.0,
    cancel: Cancellation | None = None,
    read: float = 60.0,
    attempts: int = 1,
) -> MixpeekClient:
    return MixpeekClient(
        api_key=KEY,
        base_url=server.url,
        timeout=httpx.Timeout(connect=5.0, read=read, write=5.0, pool=5.0),
        retry=RetryPolicy(max_attempts=attempts, max_retry_after=60.0),
        deadline=Deadline.after(seconds, cancel=cancel),
    )


def outcome(call: Callable[[], Any]) -> Future[Any]:
    """``call`` on its own thread, its error as its result: what a Cancel arrives during."""

    def run() -> Any:
        try:
            return call()
        except Exception as exc:
            return exc

    pool = ThreadPoolExecutor(1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


# ------------------------------------------------------------------------ one time budget


@pytest.mark.timeout(30)
def test_a_body_trickled_forever_ends_at_the_deadline(server: ScriptedServer) -> None:
    server.add("GET", STATUS, Reply(chunks=lambda: trickle(0.3, 120)))
    with client(server, seconds=2.0) as api, pytest.raises(ApiTimeoutError) as info:
        api.get_deploy("app_1", "dep_1")
    assert not isinstance(info.value, ApiInterruptedError)
    assert info.value.sent
    assert str(info.value).startswith(
        f"GET {STATUS} could not reach the Mixpeek API (after it was sent): the whole answer "
        "did not arrive within "
    )
    assert str(info.value).endswith(", all the time left before the operation's deadline.")


@pytest.mark.timeout(30)
def test_the_read_timeout_bounds_the_whole_exchange_not_each_read(server: ScriptedServer) -> None:
    server.add("GET", STATUS, Reply(chunks=lambda: trickle(0.2, 120)))
    with client(server, read=1.0) as api, pytest.raises(ApiTimeoutError) as info:
        api.get_deploy("app_1", "dep_1")
    assert str(info.value).endswith("did not arrive within 1 s, the read timeout.")


@pytest.mark.timeout(30)
def test_headers_trickled_forever_are_cut_by_the_watchdog(server: ScriptedServer) -> None:
    # No chunk of body ever arrives to check between: only the watchdog can end this one.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
    server.add("GET", STATUS, Reply(chunks=lambda: trickle(0.2, 120, start=head), wire=True))
    with client(server, read=1.5) as api, pytest.raises(ApiTimeoutError) as info:
        api.get_deploy("app_1", "dep_1")
    assert "did not arrive within 1.5 s, the read timeout" in str(info.value)


def test_an_upload_checks_the_deadline_between_blocks(server: ScriptedServer) -> None:
    cancel = Cancellation()

    class Slow(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            block = super().read(size)
            if self.tell() > 1024 * 1024:
                cancel.set()  # the engine's Cancel arrives while the bundle is on its way
            return block

    with client(server, cancel=cancel, attempts=3) as api, pytest.raises(ApiInterruptedError):
        api.put_object(
            f"{server.url}/bucket/k.zip?X-Sig=s",
            Slow(b"z" * 3 * 1024 * 1024),
            size=3 * 1024 * 1024,
            content_type="application/zip",
        )
    assert server.count("PUT", "/bucket/k.zip") <= 1  # and it was not sent again


# --------------------------------------------------------------------------------- Cancel


@pytest.mark.timeout(30)
def test_cancel_ends_a_request_the_server_holds(server: ScriptedServer) -> None:
    server.add("GET", STATUS, Reply(delay=600))
    cancel = Cancellation()
    with client(server, cancel=cancel, attempts=5) as api:
        result = outcome(lambda: api.get_deploy("app_1", "dep_1"))
        assert wait_until(lambda: server.count("GET", STATUS) == 1)
        cancel.set()
        error = result.result(timeout=10)
    assert isinstance(error, ApiInterruptedError)
    assert str(error) == (
        f"GET {STATUS} was interrupted after it was sent: the engine asked the provider to stop "
        "(Ctrl-C or a cancelled update), so it was not waited for; run `pulumi up` again to "
        "finish."
    )
    assert server.count("GET", STATUS) == 1


@pytest.mark.timeout(30)
def test_one_cancel_reaches_every_operation_sharing_it(server: ScriptedServer) -> None:
    other = "/v1/apps/app_2/deploys/dep_2"
    server.add("GET", STATUS, Reply(delay=600))
    server.add("GET", other, Reply(delay=600))
    cancel = Cancellation()
    with client(server, cancel=cancel) as one, client(server, cancel=cancel) as two:
        first = outcome(lambda: one.get_deploy("app_1", "dep_1"))
        second = outcome(lambda: two.get_deploy("app_2", "dep_2"))
        assert wait_until(lambda: server.count("GET", STATUS) + server.count("GET", other) == 2)
        cancel.set()
        assert isinstance(first.result(timeout=10), ApiInterruptedError)
        assert isinstance(second.result(timeout=10), ApiInterruptedError)


@pytest.mark.timeout(30)
def test_cancel_ends_a_retry_after_wait(server: ScriptedServer) -> None:
    busy = {"status": 429, "error": {"type": "TooManyRequestsError", "message": "later"}}
    server.add("GET", STATUS, Reply(429, busy, {"Retry-After": "45"}), Reply(200, OK_STATUS))
    cancel = Cancellation()
    said: list[str] = []
    with MixpeekClient(
        api_key=KEY,
        base_url=server.url,
        log=said.append,
        deadline=Deadline.after(600, cancel=cancel),
    ) as api:
        result = outcome(lambda: api.get_deploy("app_1", "dep_1"))
        assert wait_until(lambda: bool(said))  # "... retrying in 45.0s": the wait has begun
        cancel.set()
        error = result.result(timeout=10)
    assert "retrying in 45.0s" in said[0]
    assert isinstance(error, ApiInterruptedError)
    assert str(error).startswith(f"GET {STATUS} was interrupted before it was sent:")
    assert server.count("GET", STATUS) == 1


@pytest.mark.timeout(20)
def test_cancel_ends_a_long_poll_interval() -> None:
    cancel = Cancellation()
    deadline = Deadline.after(600, cancel=cancel)
    fetched = threading.Event()

    def fetch() -> str:
        fetched.set()
        return "building"

    poller = Poller(fetch=fetch, is_terminal=lambda s: s == "live", deadline=deadline, interval=40)
    result = outcome(poller.run)
    assert fetched.wait(10)
    cancel.set()
    error = result.result(timeout=10)
    assert isinstance(error, WaitTimeout)
    assert error.last == "building"
    assert deadline.cancelled


def test_a_closed_client_opens_no_new_connections(server: ScriptedServer) -> None:
    api = client(server)
    api.close()
    with pytest.raises(MixpeekError, match="client was closed"):
        api.get_deploy("app_1", "dep_1")
    assert server.count("GET", STATUS) == 0


def test_a_listener_added_after_the_cancel_is_called_at_once() -> None:
    cancel = Cancellation()
    calls: list[str] = []
    release = cancel.subscribe(lambda: calls.append("before"))
    cancel.set()
    cancel.set()
    cancel.subscribe(lambda: calls.append("after"))
    release()
    assert calls == ["before", "after"]


# ------------------------------------------------------------------------------- the caps


def test_a_huge_json_body_is_refused_with_its_cap_sentence(server: ScriptedServer) -> None:
    server.add("GET", STATUS, Reply(chunks=lambda: flood(HUGE)))
    with client(server, attempts=3) as api, pytest.raises(ResponseTooLargeError) as info:
        api.get_deploy("app_1", "dep_1")
    assert str(info.value) == (
        f"GET {STATUS} answered HTTP 200 with a body over 16 MiB, more than the 16 MiB the "
        "provider reads of any answer to that request, so it stopped reading it and changed "
        "nothing; report this line to Mixpeek support."
    )
    assert "baseUrl" not in str(info.value)  # the address was right: nothing to blame on it
    assert server.count("GET", STATUS) == 1  # a refusal, not a transient failure


def test_a_declared_huge_body_is_refused_before_it_is_read(server: ScriptedServer) -> None:
    server.add("GET", STATUS, Reply(chunks=lambda: flood(HUGE), length=HUGE + 15))
    with client(server) as api, pytest.raises(ResponseTooLargeError, match=r"a body of 400\.0 MiB"):
        api.get_deploy("app_1", "dep_1")


def test_a_huge_error_body_keeps_its_status_and_says_it_was_not_read(
    server: ScriptedServer,
) -> None:
    server.add("GET", STATUS, Reply(503, chunks=lambda: flood(HUGE)))
    with client(server) as api, pytest.raises(ServerError) as info:
        api.get_deploy("app_1", "dep_1")
    assert info.value.status_code == 503
    assert "its error body is over 1 MiB, more than any Mixpeek error, so it was not read" in str(
        info.value
    )


def test_a_compressed_answer_is_inflated_within_the_cap(server: ScriptedServer) -> None:
    small = gzip.compress(json.dumps(OK_STATUS).encode())
    bomb = gzip.compress(b'{"deploy_id": "' + b"0" * (64 * 1024 * 1024) + b'"}', 9)
    zipped = {"Content-Encoding": "gzip"}
    server.add("GET", STATUS, Reply(raw=small, headers=zipped), Reply(raw=bomb, headers=zipped))
    with client(server) as api:
        assert api.get_deploy("app_1", "dep_1").status == "building"
        with pytest.raises(ResponseTooLargeError, match="over 16 MiB"):
            api.get_deploy("app_1", "dep_1")
    assert server.seen[0].headers["Accept-Encoding"] == "identity"


def test_a_log_line_longer_than_its_cap_is_cut_and_the_stream_goes_on(
    server: ScriptedServer,
) -> None:
    def stream() -> Iterator[bytes]:
        yield b'data: {"ts": 1, "line": "Build started"}\n\n'
        yield b'data: {"ts": 2, "line": "'
        yield from flood(8 * 1024 * 1024, start=b"")
        yield b'"}\n\n'
        yield b'data: {"ts": 3, "line": "Deploy complete!"}\n\nevent: done\ndata: {}\n\n'

    server.add("GET", STREAM, Reply(chunks=stream, headers={"Content-Type": "text/event-stream"}))
    seen: list[str] = []
    with MixpeekClient(api_key=KEY, base_url=server.url) as api:
        follower = LogFollower(api, "app_1", "dep_1", sink=seen.append, wake=threading.Event())
        follower.start()
        follower.join(timeout=30)
    assert follower.finished.is_set()
    assert seen[0] == "Build started" and seen[2] == "Deploy complete!"
    assert seen[1].startswith('{"ts": 2, "line": "xxx')  # cut mid-JSON: shown as it came
    kept = 64 * 1024 - len("data: ")  # the stream's line cap, then the display's
    assert seen[1].endswith(f" … [{kept - LINE_CHARS} more characters not shown]")
    assert all(len(line) < 2 * LINE_CHARS for line in follower.lines())


def test_the_event_reader_keeps_events_whole_across_chunks() -> None:
    reader = EventReader(cap=16)
    chunks = [
        b"event: do",
        b"ne\r\ndata: {}\r\n",
        b"\r\n: comment\n",
        b"data: 0123456789abcdefXYZ\n\n",
    ]
    events = list(reader.events(chunks))
    assert [(e.event, e.data) for e in events] == [("done", "{}"), ("message", "0123456789")]


# --------------------------------------------------------------------------- memory, measured

MEMORY_PROBE = """
import json, sys, threading
from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.logs import LogFollower

said = {}
with MixpeekClient(api_key="sk_test_MEMORY_PROBE_1", base_url=sys.argv[1]) as api:
    try:
        api.get_deploy("app_1", "dep_1")
    except Exception as exc:
        said["json"] = str(exc)
    lines = []
    follower = LogFollower(api, "app_1", "dep_1", sink=lines.append, wake=threading.Event())
    follower.start()
    follower.join(timeout=120)
    said["finished"] = follower.finished.is_set()
    said["lines"] = [len(line) for line in lines]
with open("/proc/self/status") as status:
    said["peak_kib"] = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
print(json.dumps(said))
"""


@pytest.mark.timeout(120)
def test_memory_stays_bounded_with_400_mb_answers(server: ScriptedServer) -> None:
    """The provider's own process, measured: a 400 MB JSON answer and a 400 MB log line."""

    def line() -> Iterator[bytes]:
        yield from flood(HUGE, start=b'data: {"ts": 1, "line": "')
        yield b'"}\n\nevent: done\ndata: {}\n\n'

    server.add("GET", STATUS, Reply(chunks=lambda: flood(HUGE)))
    server.add("GET", STREAM, Reply(chunks=line, headers={"Content-Type": "text/event-stream"}))
    path = os.pathsep.join(str(ROOT / p) for p in ("provider", "emulator", "."))
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, server.url],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONPATH": path},
        check=True,
    )
    said = json.loads(probe.stdout)
    assert "body over 16 MiB" in said["json"]
    assert said["finished"]
    assert len(said["lines"]) == 1 and said["lines"][0] < 2 * LINE_CHARS
    assert said["peak_kib"] < 300 * 1024, f"peak RSS {said['peak_kib'] // 1024} MB"
