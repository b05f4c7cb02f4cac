"""getApp in process, in both front doors: an app found by its id or its slug, with its URL
and what each environment serves; a lookup that finds nothing, or names neither or both, says
so in one sentence."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi import MixpeekError, get_app
from mixpeek_pulumi.config import ProviderConfig
from mixpeek_pulumi.errors import InputError
from mixpeek_pulumi.native import wire
from mixpeek_pulumi.native.server import EngineLog, NativeProvider
from tests.aio import run_apart
from tests.emulator_fixture import EmulatorHandle


@pytest.fixture
def settings(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    monkeypatch.setenv("MIXPEEK_API_KEY", emulator.api_key)
    monkeypatch.setenv("MIXPEEK_BASE_URL", emulator.url)
    return emulator


def test_the_python_lookup_finds_an_app_by_id_or_slug(settings: EmulatorHandle) -> None:
    app_id = settings.create_app("acme-search")
    by_id = get_app(app_id=app_id)
    assert by_id == get_app(slug="acme-search")
    assert by_id.app_id == app_id and by_id.slug == "acme-search"
    assert by_id.url == "https://acme-search.mxp.co"
    assert isinstance(by_id.environments, dict)


def test_the_python_lookup_says_when_there_is_no_such_app(settings: EmulatorHandle) -> None:
    with pytest.raises(MixpeekError, match="no app with the slug nobody-here"):
        get_app(slug="nobody-here")
    with pytest.raises(MixpeekError, match="no app app_missing"):
        get_app(app_id="app_missing")
    with pytest.raises(MixpeekError, match="give `app_id` or `slug`, one of the two"):
        get_app(app_id="app_1", slug="acme")
    with pytest.raises(InputError):
        get_app(app_id=5)  # type: ignore[arg-type]


class Aborted(Exception):
    pass


class FakeContext:
    async def abort(self, code: Any, message: str) -> None:
        raise Aborted(message)


def invoke(emulator: EmulatorHandle, tok: str, args: dict[str, Any]) -> Any:
    provider = NativeProvider(EngineLog(None))
    provider.config = ProviderConfig(emulator.url, "`mixpeek:baseUrl`", emulator.api_key)
    struct = struct_pb2.Struct()
    struct.update(args)
    request = provider_pb2.InvokeRequest(tok=tok, args=struct)
    return run_apart(provider.Invoke(request, FakeContext()))


def test_the_native_invoke_returns_the_app_in_camel_case(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("acme-search")
    answer = invoke(emulator, "mixpeek:index:getApp", {"slug": "acme-search"})
    found = wire.load(getattr(answer, "return"))
    assert found["appId"] == app_id
    assert found["url"] == "https://acme-search.mxp.co"
    assert set(found) == {"appId", "slug", "url", "environments"}
    again = wire.load(
        getattr(invoke(emulator, "mixpeek:index:getApp", {"appId": app_id}), "return")
    )
    assert again == found


def test_the_native_invoke_fails_in_a_sentence(emulator: EmulatorHandle) -> None:
    with pytest.raises(Aborted, match="no app with the slug nobody-here"):
        invoke(emulator, "mixpeek:index:getApp", {"slug": "nobody-here"})
    with pytest.raises(Aborted, match="no function 'mixpeek:index:getPlugin'"):
        invoke(emulator, "mixpeek:index:getPlugin", {})
    answer = invoke(emulator, "mixpeek:index:getApp", {"appId": 5})
    assert [f.property for f in answer.failures] == ["appId"]
