"""Cancel (Ctrl-C) during the verification of a switch, through the real
``pulumi-resource-mixpeek`` process: the create returns within the bound of one check, says it
was interrupted and that the version serves unverified, and undoes nothing."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.plugin_process import native_provider
from tests.scripted_server import Reply, ScriptedServer
from tests.sites import site, write_tree

URN = "urn:pulumi:dev::proj::mixpeek:index:AppDeploy::web"


@pytest.mark.timeout(60)
def test_cancel_during_verification_ends_at_once_and_undoes_nothing(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app = emulator.create_app("verify-cancel")
    server = ScriptedServer()
    server.default[("GET", "/healthz")] = Reply(200, raw=b"ok", delay=3600)
    news = {
        "appId": app,
        "bundle": str(write_tree(tmp_path / "dist", site())),
        "environment": "staging",
        "pollIntervalSeconds": 0.1,
        "verify": {"url": server.url, "path": "/healthz", "timeoutSeconds": 3000},
    }
    try:
        with native_provider(emulator.url, emulator.api_key, tmp_path / "inflight") as stub:
            checked = stub.Check(
                provider_pb2.CheckRequest(urn=URN, olds=wire.dump({}), news=wire.dump(news))
            )
            assert not checked.failures, checked.failures
            create = stub.Create.future(
                provider_pb2.CreateRequest(urn=URN, properties=checked.inputs, timeout=0)
            )
            assert wait_until(lambda: bool(server.seen), timeout=30)  # a check is in flight
            stub.Cancel(empty_pb2.Empty())
            with pytest.raises(grpc.RpcError) as caught:
                create.result(timeout=10)
    finally:
        server.close()
    message = caught.value.details()
    assert message.startswith("AppDeploy 'web': the verification of version 1 in staging was ")
    assert "interrupted before it finished" in message
    assert "staging serves it, not yet verified" in message
    assert emulator.served_version(app, "staging") == 1
    assert emulator.count("POST", f"/v1/apps/{app}/versions/*/restore") == 0
