"""The plugin leaves with the engine: killed with SIGKILL, the engine leaves its plugin to init,
and the plugin notices and exits instead of serving gRPC to nobody; an engine whose address
stops taking connections counts as gone too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from mixpeek_pulumi.native import lifeline
from tests.emulator_fixture import wait_until
from tests.plugin_process import PLUGIN

ENGINE = """\
import subprocess, sys, time
# As the engine starts a plugin: both its stdout and its stderr are the engine's pipes, so a
# killed engine leaves the plugin nowhere to write.
plugin = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
port = plugin.stdout.readline()
print(plugin.pid, flush=True)
time.sleep(3600)
"""


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.timeout(90)
def test_a_plugin_whose_engine_was_killed_exits(tmp_path: Path) -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(PLUGIN)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert engine.stdout is not None
    plugin = int(engine.stdout.readline())
    try:
        assert running(plugin)
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        assert wait_until(lambda: not running(plugin), timeout=45), "the plugin outlived its engine"
    finally:
        engine.stdout.close()
        if running(plugin):
            os.kill(plugin, signal.SIGKILL)


def test_an_engine_address_that_stops_answering_counts_as_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifeline, "PARENT_EVERY", 0.05)
    monkeypatch.setattr(lifeline, "ADDRESS_EVERY", 0.1)
    monkeypatch.setattr(lifeline, "ADDRESS_TIMEOUT", 0.5)
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    said: list[str] = []
    lifeline.watch(f"127.0.0.1:{port}", said.append)
    try:
        assert not wait_until(lambda: bool(said), timeout=1.5)  # an engine that answers is kept
    finally:
        server.stop(0).wait()
    assert wait_until(lambda: bool(said), timeout=30)
    assert said == [f"the engine at 127.0.0.1:{port} stopped taking connections"]
