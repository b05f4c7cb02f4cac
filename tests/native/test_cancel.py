"""Cancel (Ctrl-C) through the real ``pulumi-resource-mixpeek`` process: a create waiting on the
service returns at once, whatever it waits on (a request the service holds, a Retry-After, a
long poll interval), says it was interrupted, and keeps the deploy it started as partial state.

The build takes an hour and each wait outlasts the test's own timeout, so only the Cancel can
end the create in time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from google.rpc import status_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.plugin_process import native_provider
from tests.sites import site, write_tree

URN = "urn:pulumi:dev::proj::mixpeek:index:AppDeploy::web"


def status_path(app_id: str) -> str:
    return f"/v1/apps/{app_id}/deploys/dep_{'?' * 12}"  # the status, not its log stream


WAITS: dict[str, Callable[[EmulatorHandle, str], None]] = {
    "a status request the service holds": lambda emu, app: emu.fault(
        method="GET", path=status_path(app), action="delay", delay=3600
    ),
    "a Retry-After of 45 s": lambda emu, app: emu.fault(
        method="GET", path=status_path(app), status=429, retry_after="45"
    ),
    "a 40 s poll interval": lambda _emu, _app: None,
}


def init_failed(error: Any) -> Any:
    """The partial state the engine keeps: the ``ErrorResourceInitFailed`` in the details."""
    trailers = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    detail = provider_pb2.ErrorResourceInitFailed()
    assert status.details[0].Unpack(detail)
    return detail


@pytest.mark.timeout(60)
@pytest.mark.parametrize("waiting_on", list(WAITS))
def test_cancel_ends_a_create_at_once_and_keeps_its_deploy(
    emulator: EmulatorHandle, tmp_path: Path, waiting_on: str
) -> None:
    emulator.timing(build_seconds=3600)
    app = emulator.create_app("cancelled-site")
    WAITS[waiting_on](emulator, app)
    bundle = write_tree(tmp_path / "dist", site())
    news = {
        "appId": app,
        "bundle": str(bundle),
        "environment": "staging",
        "timeoutSeconds": 3000,
        "pollIntervalSeconds": 40,
    }
    with native_provider(emulator.url, emulator.api_key, tmp_path / "inflight") as stub:
        checked = stub.Check(
            provider_pb2.CheckRequest(urn=URN, olds=wire.dump({}), news=wire.dump(news))
        )
        create = stub.Create.future(
            provider_pb2.CreateRequest(urn=URN, properties=checked.inputs, timeout=0)
        )
        assert wait_until(lambda: emulator.count("POST", f"/v1/apps/{app}/deploy") == 1, 30)
        time.sleep(1.0)  # the create is in the wait this case is about
        stub.Cancel(empty_pb2.Empty())
        with pytest.raises(grpc.RpcError) as caught:
            create.result(timeout=10)
    message = caught.value.details()
    found = re.match(r"AppDeploy 'web': deploy (dep_[0-9a-f]{12}) to staging of app ", message)
    assert found, message
    assert "was interrupted before it finished" in message
    assert "the next `pulumi up` re-attaches to it" in message
    partial = init_failed(caught.value)
    assert partial.id == f"{app}/staging"
    assert wire.load(partial.properties)["deployId"] == found.group(1)
    assert emulator.count("POST", f"/v1/apps/{app}/deploy") == 1
