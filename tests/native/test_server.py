"""The provider protocol as the engine speaks it, against the real ``pulumi-resource-mixpeek``
process and the emulator: what reaches the program's author when a call goes wrong."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from mixpeek_pulumi import __version__
from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle
from tests.sites import site, write_tree

PLUGIN = Path(sys.executable).parent / "pulumi-resource-mixpeek"
URN = "urn:pulumi:dev::proj::mixpeek:index:AppDeploy::web"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    return wire.dump(values)


@pytest.fixture
def provider(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Any]:
    """The plugin process, configured as the engine does it: the key wrapped as a secret."""
    proc = subprocess.Popen(
        [str(PLUGIN)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            secret = {wire.SIG: wire.SECRET_SIG, "value": emulator.api_key}
            stub.Configure(
                provider_pb2.ConfigureRequest(
                    args=struct({"apiKey": secret, "baseUrl": emulator.url})
                )
            )
            yield stub
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_plugin_info_is_the_package_version(provider: Any) -> None:
    assert provider.GetPluginInfo(empty_pb2.Empty()).version == __version__


def test_check_names_each_bad_input_as_the_program_spells_it(provider: Any, tmp_path: Path) -> None:
    bundle = write_tree(tmp_path / "dist", site())
    news = {"appId": "app_1", "bundle": str(bundle), "bundel": "x", "timeoutSeconds": -5}
    answer = provider.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(news)))
    reasons = {f.property: f.reason for f in answer.failures}
    assert set(reasons) == {"bundel", "timeoutSeconds"}, reasons
    assert "greater than 0" in reasons["timeoutSeconds"]


def test_check_of_a_good_bundle_adds_its_content_digest(provider: Any, tmp_path: Path) -> None:
    bundle = write_tree(tmp_path / "dist", site())
    answer = provider.Check(
        provider_pb2.CheckRequest(
            urn=URN, olds=struct({}), news=struct({"appId": "app_1", "bundle": str(bundle)})
        )
    )
    assert not answer.failures
    inputs = wire.load(answer.inputs)
    assert len(inputs["bundleSha256"]) == 64 and inputs["bundle"] == str(bundle)


def test_a_type_the_provider_does_not_have_is_refused_in_one_sentence(provider: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        provider.Check(
            provider_pb2.CheckRequest(
                urn="urn:pulumi:dev::proj::mixpeek:index:Bucket::b", news=struct({})
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        caught.value.details()
        == "The Mixpeek provider has no resource type 'mixpeek:index:Bucket'."
    )


def test_import_of_an_environment_that_serves_nothing_finds_nothing(
    provider: Any, emulator: EmulatorHandle
) -> None:
    app_id = emulator.create_app("empty-site")
    answer = provider.Read(provider_pb2.ReadRequest(id=f"{app_id}/staging", urn=URN))
    assert answer.id == ""  # the engine says the resource does not exist


def test_import_id_in_the_wrong_shape_says_what_it_should_be(provider: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        provider.Read(provider_pb2.ReadRequest(id="app_1", urn=URN))
    assert caught.value.details() == (
        "AppDeploy 'web': The import id 'app_1' names no app environment: use "
        "<app_id>/staging or <app_id>/production."
    )
