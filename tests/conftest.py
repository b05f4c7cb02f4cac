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

from mixpeek_emulator.state import STATUS_CASES, StatusCase  # noqa: E402
from tests.emulator_fixture import EmulatorHandle, start_emulator  # noqa: E402
from tests.engine import Stack, open_stack  # noqa: E402


@pytest.fixture(autouse=True)
def keeps_the_event_loop() -> Iterator[None]:
    """Fails the test that takes the main thread's event loop away (``asyncio.run`` does),
    rather than every later test in its worker that runs the SDK's mocks."""
    yield
    import asyncio
    import threading

    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    if (
        threading.current_thread() is threading.main_thread()
        and local is not None
        and local._set_called
        and local._loop is None
    ):
        asyncio.set_event_loop(asyncio.new_event_loop())  # the tests after it run as usual
        pytest.fail(
            "This test left the main thread with no event loop (asyncio.run does so), which "
            "the SDK's mocks in later tests need: run coroutines with tests.aio.run_apart."
        )


@pytest.fixture(scope="session", autouse=True)
def entry_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One compressed-entry cache for the session's deploys (and the providers they start),
    shared by them as users' deploys share theirs, never the user's own ~/.cache."""
    import os

    folder = tmp_path_factory.mktemp("entry-cache")
    before = os.environ.get("MIXPEEK_ENTRY_CACHE")
    os.environ["MIXPEEK_ENTRY_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("MIXPEEK_ENTRY_CACHE", None)
    else:
        os.environ["MIXPEEK_ENTRY_CACHE"] = before


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_status_spellings`` run against an emulator that spells plugin
    statuses as the wire examples do (``deployed``) and one that spells them as the status
    model's description does (``DEPLOYED``): the provider must read either."""
    if metafunc.definition.get_closest_marker("both_status_spellings") is not None:
        metafunc.parametrize("plugin_status_case", STATUS_CASES, indirect=True)


@pytest.fixture
def plugin_status_case(request: pytest.FixtureRequest) -> StatusCase:
    case: StatusCase = getattr(request, "param", "lower")
    return case


@pytest.fixture
def emulator(plugin_status_case: StatusCase) -> Iterator[EmulatorHandle]:
    """mixpeek-emulator on a free loopback port, in the official shape, with short builds."""
    handle = start_emulator(plugin_status_case=plugin_status_case)
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
