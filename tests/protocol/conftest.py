"""A stack: the emulator, the real provider host and the engine stand-in, wired together."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.emulator_fixture import EmulatorHandle
from tests.engine import FakeEngine, ProviderHost


@dataclass
class Stack:
    emulator: EmulatorHandle
    host: ProviderHost
    engine: FakeEngine
    workdir: Path


def open_stack(emulator: EmulatorHandle, tmp_path: Path, **config: str) -> Stack:
    host = ProviderHost(env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path / "inflight")})
    cfg = {"mixpeek:apiKey": emulator.api_key, "mixpeek:baseUrl": emulator.url, **config}
    engine = FakeEngine(host, config=cfg, secret_keys={"mixpeek:apiKey"})
    return Stack(emulator, host, engine, tmp_path)


@pytest.fixture
def stack(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Stack]:
    s = open_stack(emulator, tmp_path)
    try:
        yield s
    finally:
        s.host.close()
