"""Fake clocks: one for the provider's deadline, poll loop and retry waits, where time passes
only when the code under test waits; one for the emulator, whose two readings a test moves.
Tests never sleep and never depend on the machine's speed."""

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


class SteppedClock:
    """The machine's two clocks, which the test moves: ``advance`` lets time pass; assigning
    ``wall`` alone steps the wall clock, as NTP or an operator would."""

    def __init__(self, wall: float, monotonic: float) -> None:
        self.wall = wall
        self.mono = monotonic

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
