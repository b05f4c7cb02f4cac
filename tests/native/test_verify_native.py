"""Verification through the real ``pulumi-resource-mixpeek`` process: a secret in the verify
inputs stays out of every message and stays secret in what the plugin returns; input errors
name fields as the program spells them; and a verification cut short by Ctrl-C leaves the
version to restore in the partial state, which the next run (a fresh plugin) acts on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi.native import wire
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.fronts import front
from tests.native.test_cancel import init_failed
from tests.plugin_process import native_provider
from tests.sites import site, write_tree

DEPLOY = "urn:pulumi:dev::proj::mixpeek:index:AppDeploy::site"
PROMOTE = "urn:pulumi:dev::proj::mixpeek:index:AppPromotion::prod"
TOKEN = "bypass-7f3a9c2e5d1b"


def secret(value: Any) -> dict[str, Any]:
    return {wire.SIG: wire.SECRET_SIG, "value": value}


def loaded(struct: Any) -> dict[str, Any]:
    found: dict[str, Any] = json_format.MessageToDict(struct)
    return found


@contextmanager
def plugin(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with native_provider(emulator.url, emulator.api_key, tmp_path / "inflight") as stub:
        yield stub


def create(stub: Any, urn: str, news: dict[str, Any]) -> dict[str, Any]:
    checked = stub.Check(
        provider_pb2.CheckRequest(urn=urn, olds=wire.dump({}), news=wire.dump(news))
    )
    assert not checked.failures, checked.failures
    made = stub.Create(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))
    return loaded(made.properties)


def staged(stub: Any, emulator: EmulatorHandle, app: str, folder: Path) -> dict[str, Any]:
    news = {
        "appId": app,
        "bundle": str(folder),
        "environment": "staging",
        "pollIntervalSeconds": 0.1,
    }
    return create(stub, DEPLOY, news)


def test_a_secret_in_verify_is_never_shown_and_stays_secret(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app = emulator.create_app("secret-verify")
    sites = f"{emulator.url}/_sites/{app}/production"
    healthy = {**site("v1"), "healthz": "ok"}
    with plugin(emulator, tmp_path) as stub, front(sites) as passing:
        built = staged(stub, emulator, app, write_tree(tmp_path / "v1", healthy))
        verify = {
            "url": passing.url,
            "path": secret(f"/healthz?bypass={TOKEN}"),
            "checks": 1,
            "timeoutSeconds": 3,
        }
        news = {"appId": app, "version": built["version"], "sourceDeployId": built["deployId"]}
        out = create(stub, PROMOTE, {**news, "verify": verify})
        assert out["verified"] is True
        assert wire.is_secret(out["verify"]["path"])  # the engine keeps it encrypted
        assert not wire.is_secret(out["verify"]["url"])

        built = staged(stub, emulator, app, write_tree(tmp_path / "v2", site("v2")))
        news = {"appId": app, "version": built["version"], "sourceDeployId": built["deployId"]}
        with pytest.raises(grpc.RpcError) as caught:
            create(stub, PROMOTE, {**news, "verify": verify})
    message = caught.value.details()
    assert "version 2 failed verification" in message
    # The whole secret path is hidden, where the site was asked for it.
    assert f"(GET {passing.url}[REDACTED] answered 404, expected 200)" in message
    assert TOKEN not in message
    assert all(TOKEN not in r["path"] for r in emulator.requests())


def test_verify_input_errors_name_fields_as_the_program_spells_them(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    with plugin(emulator, tmp_path) as stub:
        cases = {
            "verify.intervalSeconds": (
                {"intervalSeconds": "abc"},
                "must be a number, not the text 'abc'.",
            ),
            "verify.url": (
                {"url": "ftp://files.example.com"},
                "is not a site address the checks can ask: it is not an http(s) URL with a host "
                "(for example https://www.example.com).",
            ),
            "verify.expectStatus": ({"expectStatus": 700}, "must be at most 599."),
            "verify": (
                {"checks": 3, "intervalSeconds": 30, "timeoutSeconds": 60},
                "3 checks `intervalSeconds` (30 s) apart take at least 60.5 s (a check is "
                "started with 0.5 s left at least), which `timeoutSeconds` (60 s) does not "
                "leave, so they could never pass in time; raise `timeoutSeconds` or lower "
                "`checks` or `intervalSeconds`.",
            ),
        }
        for field, (verify, reason) in cases.items():
            news = {"appId": "app_1", "version": 1, "verify": verify}
            answer = stub.Check(
                provider_pb2.CheckRequest(urn=PROMOTE, olds=wire.dump({}), news=wire.dump(news))
            )
            assert [(f.property, f.reason) for f in answer.failures] == [(field, reason)]


@pytest.mark.timeout(120)
def test_an_interrupted_verification_is_rolled_back_by_the_next_run(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app = emulator.create_app("native-interrupted")
    sites = f"{emulator.url}/_sites/{app}/production"
    with plugin(emulator, tmp_path) as stub:
        built = staged(stub, emulator, app, write_tree(tmp_path / "v1", site("v1")))
        create(stub, PROMOTE, {"appId": app, "version": 1, "sourceDeployId": built["deployId"]})
        built = staged(stub, emulator, app, write_tree(tmp_path / "v2", site("v2")))
    news = {"appId": app, "version": 2, "sourceDeployId": built["deployId"]}
    with front(sites, hold=threading.Event()) as held:
        assert held.hold is not None
        held.hold.set()
        news["verify"] = {"url": held.url, "checks": 2, "intervalSeconds": 0.1, "timeoutSeconds": 3}
        with plugin(emulator, tmp_path / "run-1") as stub:
            checked = stub.Check(
                provider_pb2.CheckRequest(urn=PROMOTE, olds=wire.dump({}), news=wire.dump(news))
            )
            future = stub.Create.future(
                provider_pb2.CreateRequest(urn=PROMOTE, properties=checked.inputs)
            )
            assert wait_until(lambda: bool(held.arrived), timeout=30)
            stub.Cancel(empty_pb2.Empty())
            with pytest.raises(grpc.RpcError) as caught:
                future.result(timeout=30)
        assert (
            "the verification of version 2 in production was interrupted" in caught.value.details()
        )
        partial = loaded(init_failed(caught.value).properties)
        assert (partial["verified"], partial["previousVersion"]) == (False, 1)
        assert emulator.served_version(app, "production") == 2

        held.hold.clear()
        held.status = 500
        with plugin(emulator, tmp_path / "run-2") as stub:  # the next `pulumi up`, anywhere
            olds = wire.dump(partial)
            diff = stub.Diff(
                provider_pb2.DiffRequest(id="x", urn=PROMOTE, olds=olds, news=checked.inputs)
            )
            assert list(diff.diffs) == ["verified"]
            with pytest.raises(grpc.RpcError) as caught:
                stub.Update(provider_pb2.UpdateRequest(urn=PROMOTE, olds=olds, news=checked.inputs))
    assert caught.value.details().startswith(
        "AppPromotion 'prod': version 2 failed verification after the switch to production "
        f"(GET {held.url}/ answered 500, expected 200); production serves version 1 again."
    )
    assert emulator.served_version(app, "production") == 1
