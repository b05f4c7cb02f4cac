"""A fake clock for the deadline, the poll loop and the retry waits: time passes only when
the code under test waits, so tests never sleep and never depend on the machine's speed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class FakeClock:
    now: float = 1000.0
    waits: list[float] = field(default_factory=list)
    """Every wait asked for, in order (a wait cut short by its event records 0)."""
    on_wait: list[object] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            self.waits.append(0.0)
            return True
        self.waits.append(seconds)
        self.now += seconds
        return False

    def sleep(self, seconds: float) -> None:
        """What tenacity calls between retries."""
        self.waits.append(seconds)
        self.now += seconds
