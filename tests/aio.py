"""Running a coroutine from a test without taking the thread's event loop away."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run to its end on a loop of its own, never made current: ``asyncio.run``
    would leave this thread with no event loop, and the Pulumi SDK's mocks, which later tests
    in the same worker run, ask for the current one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
