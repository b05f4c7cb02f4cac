"""The engine stand-in and the real engine, side by side on one program: the same operations,
the same state. Where they differ, the stand-in is wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scripts.pulumi_cli import Cli
from tests.cli.conftest import example, open_stack
from tests.emulator_fixture import EmulatorHandle
from tests.engine import SECRET_SIG, FakeEngine, ProviderHost, run_program

pytestmark = pytest.mark.cli

# Values that name one run's objects: ids, times and keys the service mints.
RUN_SPECIFIC = {
    "deploy_id",
    "source_deploy_id",
    "queued_at",
    "bundle_s3_key",
    "app_id",
    "url",
    "smoke_test",
    "bundle",
    "asset_prefix",
}
PREVIEW_STEP = re.compile(
    r"^\s*[-+~]?\s*pulumi-python:dynamic/\S+ (\S+) (create|update|delete|replace)\b"
)
STEP = re.compile(
    r"^\s*[-+~]?\s*pulumi-python:dynamic/\S+ (\S+) (created|updated|deleted|replaced)"
)


def cli_steps(lines: list[str]) -> list[tuple[str, str]]:
    ops = {"created": "create", "updated": "update", "deleted": "delete", "replaced": "replace"}
    return sorted((ops[m[2]], m[1]) for line in lines if (m := STEP.match(line)))


def preview_steps(lines: list[str]) -> list[tuple[str, str]]:
    found = (PREVIEW_STEP.match(line) for line in lines)
    return sorted((m[2], m[1]) for m in found if m)


def app_of(stack: Any) -> str:
    return str(stack.resources()["site-staging"]["outputs"]["app_id"])


def repoint_staging(emulator: EmulatorHandle, app_id: str) -> None:
    """Someone deploys a second version to staging by hand, behind the provider's back."""
    store = emulator.running.emulator.store
    with store.lock:
        app = store.state.apps[app_id]
        app.environments["staging"] = {**app.environments["staging"], "deploy_id": "dep_by_hand"}


def secret_keys(props: dict[str, Any]) -> set[str]:
    return {k for k, v in props.items() if isinstance(v, dict) and SECRET_SIG in v}


def comparable(props: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in props.items()
        if k not in RUN_SPECIFIC and k != "__provider" and not k.startswith("resource_")
    }


def test_stand_in_and_real_engine_agree_on_steps_and_state(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    project = example("app", tmp_path)
    program = project / "__main__.py"

    host = ProviderHost(project="mixpeek-app", env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path)})
    try:
        engine = FakeEngine(
            host,
            config={"mixpeek:apiKey": emulator.api_key, "mixpeek:baseUrl": emulator.url},
            secret_keys={"mixpeek:apiKey"},
            project="mixpeek-app",
        )
        config = {"mixpeek-app:appId": emulator.create_app("parity-stand-in")}
        stand_in_up = sorted(run_program(engine, program, config=config).steps)
        stand_in_again = run_program(engine, program, config=config, preview=True).steps
        stand_in_state = {r.name: r for r in engine.state.values()}
        repoint_staging(emulator, config["mixpeek-app:appId"])
        engine.refresh()
        stand_in_drift = sorted(run_program(engine, program, config=config, preview=True).steps)
    finally:
        host.close()

    stack = open_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", emulator.create_app("parity-cli"))
    up = stack.up()
    assert up.ok, up.output
    again = stack.preview(expect_no_changes=True)
    repoint_staging(emulator, app_of(stack))
    assert stack.refresh().ok
    real_state = stack.resources()  # compared after the refresh, as the stand-in's is
    drift = stack.preview()

    assert (
        stand_in_up
        == cli_steps(up.lines)
        == [
            ("create", "site-production"),
            ("create", "site-staging"),
        ]
    )
    assert {op for op, _ in stand_in_again} == {"same"}
    assert again.ok and again.summary == {"same": 3}
    # After drift, the deploy is an update and the promotion reading its (now unknown) version
    # may change too: the real engine's preview rule, which the stand-in must follow.
    assert (
        stand_in_drift
        == preview_steps(drift.lines)
        == [
            ("update", "site-production"),
            ("update", "site-staging"),
        ]
    )
    assert set(stand_in_state) == set(real_state)
    for name, real in real_state.items():
        ours = stand_in_state[name]
        assert ours.id.split("/")[1] == real["id"].split("/")[1]
        assert set(ours.outputs) == set(real["outputs"]), name
        assert set(ours.inputs) == set(real["inputs"]), name
        assert secret_keys(ours.outputs) == secret_keys(real["outputs"]), name
        assert secret_keys(ours.inputs) == secret_keys(real["inputs"]), name
        assert comparable(ours.outputs) == comparable(real["outputs"]), name
        assert comparable(ours.inputs) == comparable(real["inputs"]), name
