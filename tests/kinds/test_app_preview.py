"""An App's id is known in the preview of an update, in both front doors: the engine previews
an update's outputs from the checked inputs, so check carries the id there, from the old
inputs, or, where they lack it (the create's check could not know it), from the service by the
old slug."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi.config import ProviderConfig
from mixpeek_pulumi.kinds.base import check_inputs
from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.native import wire
from mixpeek_pulumi.native.server import EngineLog, NativeProvider
from mixpeek_pulumi.resources.app import AppProvider
from tests.aio import run_apart
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make

META = {"title": "Acme"}


def config(emulator: EmulatorHandle, *, skip: bool = False) -> ProviderConfig:
    return ProviderConfig(
        emulator.url, "`mixpeek:baseUrl`", emulator.api_key, skip_credentials_check=skip
    )


def test_an_update_s_check_carries_the_app_id(resource: Make, emulator: EmulatorHandle) -> None:
    app = resource("App", "site", drops_nulls=True)
    out = app.up(slug="acme-search", meta=META)
    checked = app.check(slug="acme-search", meta={"title": "Acme 2"})
    assert checked["app_id"] == out["app_id"]
    # A create's check cannot know it.
    assert "app_id" not in resource("App", "other").check(slug="acme-other", meta=META)


def test_old_inputs_without_the_id_get_it_from_the_service_by_slug(
    resource: Make, emulator: EmulatorHandle
) -> None:
    out = resource("App", "site").up(slug="acme-search", meta=META)
    olds = {"slug": "acme-search", "meta": META}  # what the create's check kept
    news = {"slug": "acme-renamed", "meta": META, "resource_name": "site"}
    computed, failures = check_inputs(config(emulator), KINDS["App"], olds, news, set())
    assert failures == [] and computed == {"app_id": out["app_id"]}
    # Offline previews (no key check) ask nothing: the id stays unknown.
    before = len(emulator.requests())
    offline, _ = check_inputs(config(emulator, skip=True), KINDS["App"], olds, news, set())
    assert offline == {} and len(emulator.requests()) == before


def test_the_dynamic_check_hands_the_engine_the_id(
    resource: Make, emulator: EmulatorHandle
) -> None:
    out = resource("App", "site").up(slug="acme-search", meta=META)
    provider = AppProvider()
    provider._config = config(emulator)
    olds = {"slug": "acme-search", "meta": META, "resource_name": "site"}
    news = {**olds, "meta": {"title": "Acme 2"}, "app_id": None, "url": None, "version": None}
    result = provider.check(olds, news)
    assert result.failures == []
    assert result.inputs["app_id"] == out["app_id"]


def test_the_native_check_hands_the_engine_the_id(resource: Make, emulator: EmulatorHandle) -> None:
    out = resource("App", "site").up(slug="acme-search", meta=META)
    provider = NativeProvider(EngineLog(None))
    provider.config = config(emulator)

    def struct(values: dict[str, Any]) -> struct_pb2.Struct:
        made = struct_pb2.Struct()
        made.update(values)
        return made

    request = provider_pb2.CheckRequest(
        urn="urn:pulumi:dev::proj::mixpeek:index:App::site",
        olds=struct({"slug": "acme-search", "meta": META}),
        news=struct({"slug": "acme-search", "meta": {"title": "Acme 2"}}),
    )
    answer = run_apart(provider.Check(request, None))
    assert list(answer.failures) == []
    assert wire.load(answer.inputs)["appId"] == out["app_id"]
