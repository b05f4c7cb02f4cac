"""The moment the server starts shutting down, for everything that waits open-ended."""

from __future__ import annotations

import asyncio


class Closing:
    """Set when the server begins its shutdown. Log streams and injected delays wait on this as
    well as on their clock, so every open connection finishes on its own inside the grace
    period; uvicorn would otherwise cancel each one at its end and print a traceback per task.

    An ``asyncio.Event`` belongs to the first loop that waits on it: an emulator is served once.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Called on the server's loop, as its shutdown starts."""
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if shutdown starts first; True when it did."""
        if self._event.is_set():
            return True
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True
