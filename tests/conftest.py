"""The fixtures every tier shares: the emulator on loopback, and a stack of it, the real
provider host and the engine stand-in."""

from __future__ import annotations

import logging

# Imported before any test starts threads: CPython 3.11 can fail to compile (assertion-rewrite)
# a module imported late from pytest's terminal summary after gRPC threads ran.
import hypothesis  # noqa: F401

# A failed registration rejects the SDK's futures, as a failed `pulumi up` does; asyncio would
# log each unretrieved one at garbage collection. The engine stand-in reports the failure itself.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.emulator_fixture import EmulatorHandle, start_emulator  # noqa: E402
from tests.engine import Stack, open_stack  # noqa: E402


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """mixpeek-emulator on a free loopback port, in the official shape, with short builds."""
    handle = start_emulator()
    try:
        yield handle
    finally:
        handle.running.stop()


@pytest.fixture
def stack(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Stack]:
    """The emulator, the real provider host and the engine stand-in, wired together."""
    s = open_stack(emulator, tmp_path)
    try:
        yield s
    finally:
        s.host.close()
