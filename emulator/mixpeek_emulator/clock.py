"""The emulator's two readings of time: the wall clock, for every timestamp it reports and for
presigned URLs (which carry a date, as S3's do), and a monotonic clock, for how far a build or
a rollout has come, so that stepping the machine's clock changes nothing but the timestamps.

Tests hand ``create_app`` a clock of their own and step either reading as they please.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, as the machine's clock says (it may step)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back; meaningless across processes."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
