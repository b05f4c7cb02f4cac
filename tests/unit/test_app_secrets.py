"""The App's password and build secrets are secret because the kind says so, in both front
doors, whatever the program marked: the dynamic resource wraps them before the engine sees
them, and the native provider hands them back marked in its outputs and checked inputs."""

from __future__ import annotations

from typing import Any

import pulumi

from mixpeek_pulumi.kinds.app import AppState
from mixpeek_pulumi.native import wire
from mixpeek_pulumi.native.server import Call
from mixpeek_pulumi.resources._common import SECRET_INPUTS, resource_props
from mixpeek_pulumi.resources.app import AppArgs, AppAuthConfigArgs, AppBuildConfigArgs
from tests.aio import run_apart

APP_URN = "urn:pulumi:dev::proj::mixpeek:index:App::site"


def test_the_dynamic_app_wraps_its_secrets_though_the_program_passed_them_plain() -> None:
    async def run() -> dict[str, Any]:
        props = resource_props(
            "App",
            AppState,
            AppArgs(
                slug="acme",
                meta={"title": "Acme"},
                auth_config=AppAuthConfigArgs(mode="password", password="pw-plain"),
                build_config=AppBuildConfigArgs(secrets={"KEY": "sk-1"}, env_vars={"MODE": "x"}),
            ),
            "site",
        )
        password = props["auth_config"]["password"]
        secrets = props["build_config"]["secrets"]
        assert isinstance(password, pulumi.Output) and isinstance(secrets, pulumi.Output)
        return {
            "secret": [await password.is_secret(), await secrets.is_secret()],
            "values": [await password.future(), await secrets.future()],
            "paths": await props[SECRET_INPUTS].future(),
            "plain": (props["build_config"]["env_vars"], props["auth_config"]["mode"]),
        }

    seen = run_apart(run())
    assert seen["secret"] == [True, True]
    assert seen["values"] == ["pw-plain", {"KEY": "sk-1"}]
    assert seen["paths"] == ["auth_config.password", "build_config.secrets"]
    assert seen["plain"] == ({"MODE": "x"}, "password")


def test_a_dynamic_app_without_secrets_adds_nothing_secret() -> None:
    props = resource_props("App", AppState, AppArgs(slug="acme", meta={"title": "A"}), "a")
    assert SECRET_INPUTS not in props
    assert props["slug"] == "acme"


def test_the_native_app_marks_its_secrets_in_its_outputs() -> None:
    call = Call(APP_URN)
    state = AppState(
        slug="acme",
        meta={"title": "Acme"},
        auth_config={"mode": "password", "password": "pw-plain"},
        build_config={"secrets": {"KEY": "sk-1"}, "env_vars": {"MODE": "x"}},
        app_id="app_1",
    )
    out = wire.load(call.outputs(state))
    assert wire.is_secret(out["authConfig"]["password"])
    assert wire.is_secret(out["buildConfig"]["secrets"])
    assert out["buildConfig"]["envVars"] == {"MODE": "x"}
    assert out["authConfig"]["mode"] == "password"
    assert out["appId"] == "app_1" and not wire.is_secret(out["appId"])
    assert "pw-plain" not in str({k: v for k, v in out.items() if k != "authConfig"})


def test_the_native_app_marks_its_secrets_in_what_it_keeps_as_inputs() -> None:
    call = Call(APP_URN)
    inputs = {"slug": "acme", "authConfig": {"mode": "password", "password": "pw-plain"}}
    kept = wire.wrap(inputs, call.secrets)
    assert wire.is_secret(kept["authConfig"]["password"])
    assert kept["slug"] == "acme"
