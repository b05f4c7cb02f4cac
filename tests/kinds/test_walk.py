"""The walk of one create is short: from either front door's verb, the kind's own code is
reached in one call and the first deploy step in at most three, with no forwarding layer in
between (docs/architecture.md walks the same path)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from google.protobuf import struct_pb2

import mixpeek_pulumi
from mixpeek_pulumi.native import server
from mixpeek_pulumi.native.protos import provider_pb2
from mixpeek_pulumi.resources.app_deploy import AppDeployProvider
from tests.aio import run_apart
from tests.emulator_fixture import EmulatorHandle

PACKAGE = str(Path(mixpeek_pulumi.__file__).parent)
FIRST_STEP = "AppDeploy.deploy"
"""Where the deploy itself starts: the environment read, the commit gate, packing."""


@contextmanager
def chain_at(step: str) -> Iterator[list[list[str]]]:
    """The calls of this package on the stack each time ``step`` is entered (on any thread),
    outermost first; context managers' frames are plumbing, not calls of ours."""
    seen: list[list[str]] = []

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or frame.f_code.co_qualname != step:
            return
        chain: list[str] = []
        at: FrameType | None = frame
        while at is not None:
            code = at.f_code
            if code.co_filename.startswith(PACKAGE) and not code.co_name.startswith("__"):
                chain.append(code.co_qualname)
            at = at.f_back
        seen.append(chain[::-1])

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


def site(tmp_path: Path) -> str:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "index.html").write_text("<h1>walk</h1>")
    return str(folder)


@pytest.fixture
def provider_env(emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXPEEK_BASE_URL", emulator.url)
    monkeypatch.setenv("MIXPEEK_API_KEY", emulator.api_key)
    monkeypatch.setenv("MIXPEEK_PULUMI_STATE_DIR", str(tmp_path / "journal"))


def dynamic_create(app_id: str, bundle: str) -> Callable[[], Any]:
    props = {"app_id": app_id, "bundle": bundle, "resource_name": "site"}
    return lambda: AppDeployProvider().create(props)


def native_create(app_id: str, bundle: str) -> Callable[[], Any]:
    properties = struct_pb2.Struct()
    properties.update({"appId": app_id, "bundle": bundle})
    request = provider_pb2.CreateRequest(
        urn="urn:pulumi:dev::walk::mixpeek:index:AppDeploy::site",
        type="mixpeek:index:AppDeploy",
        name="site",
        properties=properties,
    )

    async def call() -> Any:
        provider = server.NativeProvider(server.EngineLog(None))
        try:
            return await provider.Create(request, None)
        finally:
            provider.pool.shutdown()

    def run() -> Any:
        return run_apart(call())

    return run


@pytest.mark.parametrize(
    ("door", "verb"),
    [(dynamic_create, "DynamicProvider.create"), (native_create, "NativeProvider.Create")],
    ids=["dynamic", "native"],
)
def test_a_create_reaches_the_first_deploy_step_in_at_most_three_calls(
    emulator: EmulatorHandle,
    tmp_path: Path,
    provider_env: None,
    door: Callable[[str, str], Callable[[], Any]],
    verb: str,
) -> None:
    app_id = emulator.create_app("walk")
    create = door(app_id, site(tmp_path))
    with chain_at(FIRST_STEP) as seen:
        done = create()
    assert done is not None
    assert emulator.served_version(app_id, "production") == 1  # the create really deployed
    [chain] = seen
    # The native door's verb hands its work to a thread; the closure it runs is its verb too.
    start = next(i for i, name in enumerate(chain) if name.startswith(verb))
    walk = chain[start:]
    assert walk[-2:] == ["AppDeploy.create", FIRST_STEP], walk
    calls = len(walk) - 1
    assert calls <= 3, f"{calls} calls from {verb} to {FIRST_STEP}: {' -> '.join(walk)}"
