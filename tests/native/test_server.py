"""The provider protocol as the engine speaks it, against the real ``pulumi-resource-mixpeek``
process and the emulator: what reaches the program's author when a call goes wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi import __version__
from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle
from tests.plugin_process import native_provider
from tests.sites import plugin, site, write_tree

PLUGIN = Path(sys.executable).parent / "pulumi-resource-mixpeek"
URN = "urn:pulumi:dev::proj::mixpeek:index:AppDeploy::web"
PLUGIN_URN = "urn:pulumi:dev::proj::mixpeek:index:PluginDeployment::embed"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    return wire.dump(values)


@contextmanager
def serving(emulator: EmulatorHandle, tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    """The plugin process, configured as the engine does it: the key wrapped as a secret."""
    with native_provider(emulator.url, emulator.api_key, tmp_path / "inflight", env) as stub:
        yield stub


@pytest.fixture
def provider(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Any]:
    with serving(emulator, tmp_path) as stub:
        yield stub


def test_plugin_info_is_the_package_version(provider: Any) -> None:
    assert provider.GetPluginInfo(empty_pb2.Empty()).version == __version__


def test_check_names_each_bad_input_as_the_program_spells_it(provider: Any, tmp_path: Path) -> None:
    bundle = write_tree(tmp_path / "dist", site())
    news = {"appId": "app_1", "bundle": str(bundle), "bundel": "x", "timeoutSeconds": -5}
    answer = provider.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(news)))
    reasons = {f.property: f.reason for f in answer.failures}
    assert set(reasons) == {"bundel", "timeoutSeconds"}, reasons
    assert reasons["timeoutSeconds"] == "must be more than 0."


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


def test_check_of_a_plugin_without_realtime_py_names_the_deployment_type(
    provider: Any, tmp_path: Path
) -> None:
    """Refused as the program spells the input, and not while the engine does not know it."""
    files = {k: v for k, v in plugin().items() if k != "realtime.py"}
    news = {
        "namespaceId": "ns_test",
        "name": "text_embed",
        "version": "1.0.0",
        "source": str(write_tree(tmp_path / "src", files)),
    }

    def failures(values: dict[str, Any]) -> dict[str, str]:
        request = provider_pb2.CheckRequest(urn=PLUGIN_URN, olds=struct({}), news=struct(values))
        return {f.property: f.reason for f in provider.Check(request).failures}

    refused = failures({**news, "deploymentType": "realtime"})
    assert list(refused) == ["deploymentType"]
    assert "has no realtime.py beside manifest.py" in refused["deploymentType"]
    assert failures({**news, "deploymentType": wire.UNKNOWN}) == {}
    assert failures({**news, "deploymentType": "batch_only"}) == {}


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


def create_site(stub: Any, emulator: EmulatorHandle, tmp_path: Path, slug: str) -> Any:
    bundle = write_tree(tmp_path / slug, site())
    props = {"appId": emulator.create_app(slug), "bundle": str(bundle), "environment": "staging"}
    checked = stub.Check(
        provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(props))
    ).inputs
    return stub.Create(provider_pb2.CreateRequest(urn=URN, properties=checked))


def test_stray_environment_settings_never_stop_the_plugin_and_stack_config_wins(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """``MIXPEEK_BASE_URL=api.mixpeek.com`` is never used while stack config sets the
    endpoint; a bad ``MIXPEEK_HTTP_READ_TIMEOUT`` fails the call that needs it, in one
    sentence naming it, and the plugin goes on serving."""
    with serving(emulator, tmp_path, {"MIXPEEK_BASE_URL": "api.mixpeek.com"}) as stub:
        assert stub.GetPluginInfo(empty_pb2.Empty()).version == __version__
        created = create_site(stub, emulator, tmp_path, "env-url-site")
        assert wire.load(created.properties)["live"] is True
    with serving(emulator, tmp_path, {"MIXPEEK_HTTP_READ_TIMEOUT": "90s"}) as stub:
        with pytest.raises(grpc.RpcError) as caught:
            create_site(stub, emulator, tmp_path, "env-timeout-site")
        assert caught.value.details().splitlines()[0] == (
            "AppDeploy 'web': MIXPEEK_HTTP_READ_TIMEOUT must be a number of seconds from 1 to "
            "3600, not '90s'; fix or unset it in the environment of `pulumi`."
        )
        assert stub.GetPluginInfo(empty_pb2.Empty()).version == __version__


@pytest.mark.parametrize(
    ("urn", "id_", "says"),
    [
        (URN, "../staging", "'..' is not an id"),
        (URN, "app\n1/staging", "is not an id"),
        (URN, "äpp/production", "is not an id"),
        (PLUGIN_URN, "ns/..", "'..' is not an id"),
        (PLUGIN_URN, "../plugins", "'..' is not an id"),
        (PLUGIN_URN, "ns_1/", "'' is not an id"),
    ],
)
def test_import_ids_follow_the_input_id_rules_and_reach_no_other_path(
    provider: Any, emulator: EmulatorHandle, urn: str, id_: str, says: str
) -> None:
    before = len(emulator.requests())
    with pytest.raises(grpc.RpcError) as caught:
        provider.Read(provider_pb2.ReadRequest(id=id_, urn=urn))
    assert says in caught.value.details()
    assert "use <" in caught.value.details()
    assert len(caught.value.details().splitlines()) == 1
    assert len(emulator.requests()) == before  # refused before any request


def test_state_that_does_not_load_is_one_sentence_and_a_delete_without_an_id_sends_nothing(
    provider: Any, emulator: EmulatorHandle
) -> None:
    broken = {"appId": "app_1", "environment": "staging", "version": "seven"}
    with pytest.raises(grpc.RpcError) as caught:
        provider.Delete(provider_pb2.DeleteRequest(id="x", urn=URN, properties=struct(broken)))
    first = caught.value.details().splitlines()[0]
    assert first.startswith("AppDeploy 'web': its stack state cannot be read (`version` is ")
    assert "`pulumi state delete`" in first
    assert "Traceback" not in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        provider.Diff(provider_pb2.DiffRequest(id="x", urn=URN, olds=struct({}), news=struct({})))
    assert "`appId` is missing" in caught.value.details()  # as the program spells it

    before = len(emulator.requests())
    no_id = {"namespaceId": "ns_1", "name": "text_embed", "version": "1.0.0"}
    provider.Delete(provider_pb2.DeleteRequest(id="x", urn=PLUGIN_URN, properties=struct(no_id)))
    rollback = {"appId": "app_1", "environment": "staging", "onDelete": "rollback"}
    provider.Delete(provider_pb2.DeleteRequest(id="x", urn=URN, properties=struct(rollback)))
    assert len(emulator.requests()) == before  # nothing was sent for either
