"""Long work is never silent: byte meters for packing and uploading, a heartbeat while a wait
hears nothing, and lines written whole.

``MIXPEEK_PROGRESS_SECONDS`` (default 5) is the most a meter stays quiet between its first
and last line; ``MIXPEEK_HEARTBEAT_SECONDS`` (default 30) the most a wait stays quiet. Both
are read when an operation starts; a value that is not a positive number is the default.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from ..sizes import rate_text, size_text

PROGRESS_ENV: Final = "MIXPEEK_PROGRESS_SECONDS"
HEARTBEAT_ENV: Final = "MIXPEEK_HEARTBEAT_SECONDS"
PROGRESS_SECONDS: Final = 5.0
HEARTBEAT_SECONDS: Final = 30.0
MB: Final = 1_000_000

_WRITE = threading.Lock()


def write_line(text: str, fd: int = 2) -> None:
    """One line to ``fd`` in one piece: the text and its newline in a single write, under a
    lock, so lines of resources deploying side by side never fuse."""
    data = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
    with _WRITE:
        while data:
            data = data[os.write(fd, data) :]


def seconds_from(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get(name, "")
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if 0 < value < 86400 else default


def elapsed(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{seconds:.1f}s"


class Meter:
    """Counts bytes of one step (``packing``, ``uploading``) and says where it is: at the
    start, at least every ``every`` seconds, and at the end, in files, sizes and rates (``sizes``)."""

    def __init__(
        self,
        say: Callable[[str], None],
        what: str,
        total_bytes: int,
        files: int,
        *,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say, self.what, self.total, self.files = say, what, total_bytes, files
        self.every = seconds_from(PROGRESS_ENV, PROGRESS_SECONDS) if every is None else every
        self.clock = clock
        self.done = 0
        self.started = self.last = clock()
        self._lock = threading.Lock()
        say(f"{what}: {files} files, {size_text(total_bytes)}")

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = self.clock()
            if now - self.last < self.every:
                return
            self.last = now
        rate = rate_text(self.done, now - self.started)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        self.say(f"{self.what}: {size_text(self.done)} of {size_text(self.total)}{share}, {rate}")

    def finish(self, total: int | None = None) -> None:
        spent = max(self.clock() - self.started, 1e-6)
        size = self.done if total is None else total
        self.say(
            f"{self.what}: done, {self.files} files, {size_text(size)} in {elapsed(spent)} "
            f"({rate_text(size, spent)})"
        )


class Readable(Protocol):
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def read(self, size: int = -1) -> bytes: ...


class MeteredReader:
    """A binary file whose reads feed a ``Meter`` (an upload's body)."""

    def __init__(self, handle: Readable, meter: Meter) -> None:
        self.handle, self.meter = handle, meter

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self.meter.done = 0  # a retry sends it again from the start
        return self.handle.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.meter.add(len(data))
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self.handle, name)


class Heartbeat:
    """While a wait runs, says ``what`` with the elapsed time whenever nothing else was said
    for ``every`` seconds. ``say`` is the sink to pass on: each line through it counts."""

    def __init__(
        self,
        sink: Callable[[str], None],
        what: Callable[[], str],
        *,
        every: float | None = None,
    ) -> None:
        self.sink, self.what = sink, what
        self.every = seconds_from(HEARTBEAT_ENV, HEARTBEAT_SECONDS) if every is None else every
        self.started = self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixpeek-heartbeat", daemon=True)

    def say(self, line: str) -> None:
        self.last = time.monotonic()
        self.sink(line)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            now = time.monotonic()
            if now - self.last >= self.every:
                self.say(f"{self.what()}, {elapsed(now - self.started)} elapsed")
