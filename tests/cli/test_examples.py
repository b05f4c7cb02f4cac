"""Every example program through the real Pulumi CLI and engine, against the emulator's records."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.pulumi_cli import Cli
from tests.cli.conftest import example, open_stack, root_project
from tests.emulator_fixture import EmulatorHandle

pytestmark = pytest.mark.cli


def test_app_example_up_preview_update_refresh_destroy(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("demo-site")
    project = example("app", tmp_path)
    stack = open_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", app_id)

    up = stack.up()
    assert up.ok, up.output
    assert up.summary == {"create": 3}
    out = stack.outputs()
    state = emulator.records()
    app = state.apps[app_id]
    deploy = state.deploys[out["deploy_id"]]
    assert (deploy.environment, deploy.version, deploy.settled) == ("staging", out["version"], True)
    assert app.environments["staging"]["deploy_id"] == out["deploy_id"]
    assert app.environments["production"]["deploy_id"] == out["production_deploy_id"]
    assert out["production_deploy_id"] == out["deploy_id"]
    assert (out["url"], out["production_url"]) == (app.url("staging"), app.url("production"))
    # The build log streamed into the CLI's output while the deploy ran, before it was created.
    logs = [i for i, line in enumerate(up.lines) if "AppDeploy site-staging: Extracting" in line]
    created = [i for i, line in enumerate(up.lines) if "site-staging created" in line]
    assert logs and created and logs[0] < created[0], up.output

    assert stack.preview(expect_no_changes=True).ok

    (project / "site" / "index.html").write_text("<!doctype html><h1>Hello, v2</h1>")
    changed = stack.up()
    assert changed.ok, changed.output
    assert changed.summary == {"same": 1, "update": 2}
    assert len(emulator.records().deploys) == 2
    second = stack.outputs()
    assert second["version"] == 2 and second["production_deploy_id"] == second["deploy_id"]

    # Someone puts version 1 back on staging behind the provider's back.
    with emulator.api() as api:
        api.post(f"/v1/apps/{app_id}/versions/1/restore", json={"environment": "staging"})
    refreshed = stack.refresh()
    assert refreshed.ok, refreshed.output
    assert refreshed.summary.get("update") == 1, refreshed.output
    live = stack.resources()["site-staging"]["outputs"]["live"]
    assert live is False
    # The drifted deploy shows as an update; in a preview its version is unknown until it runs,
    # so the promotion that reads it shows as a possible update too (the real engine's rule).
    preview = stack.preview()
    assert any("AppDeploy site-staging update" in line for line in preview.lines), preview.output
    assert stack.up().ok
    assert (
        emulator.records().apps[app_id].environments["staging"]["deploy_id"] == second["deploy_id"]
    )
    assert len(emulator.records().deploys) == 2  # restored instantly, not rebuilt

    destroyed = stack.destroy()
    assert destroyed.ok, destroyed.output
    assert destroyed.summary == {"delete": 3}
    # on_delete defaults to "retain": both environments keep serving.
    envs = emulator.records().apps[app_id].environments
    assert envs["staging"]["deploy_id"] == envs["production"]["deploy_id"] == second["deploy_id"]
    assert stack.resources() == {}


def test_plugin_example(cli: Cli, emulator: EmulatorHandle, tmp_path: Path) -> None:
    stack = open_stack(cli, emulator, example("plugin", tmp_path), tmp_path)
    stack.set_config("pollSeconds", "0.1")
    up = stack.up()
    assert up.ok, up.output
    out = stack.outputs()
    plugin = emulator.records().plugins["ns_demo"]["text_embed_1_0_0"]
    assert out == {"route_prefix": plugin.route_prefix, "feature_uri": plugin.feature_uri}
    assert not plugin.undeployed
    assert stack.preview(expect_no_changes=True).ok
    assert stack.destroy().ok
    assert (
        emulator.records().plugins["ns_demo"]["text_embed_1_0_0"].undeployed
    )  # on_delete=undeploy


def test_promotion_example_two_stacks(cli: Cli, emulator: EmulatorHandle, tmp_path: Path) -> None:
    app_id = emulator.create_app("demo-site")
    project = example("promotion", tmp_path)
    staging = open_stack(cli, emulator, project, tmp_path, stack="staging")
    staging.set_config("appId", app_id)
    assert staging.up().ok
    production = open_stack(cli, emulator, project, tmp_path, stack="production")
    production.set_config("appId", app_id)
    production.set_config("verifyUrl", f"{emulator.url}/_sites/{app_id}/production")
    promoted = production.up()
    assert promoted.ok, promoted.output

    staged, live = staging.outputs(), production.outputs()
    app = emulator.records().apps[app_id]
    assert live["version"] == staged["version"] == 1
    assert live["verified"] is True
    assert app.environments["production"]["deploy_id"] == staged["deploy_id"] == live["deploy_id"]
    assert len(emulator.records().deploys) == 1  # promoted, never rebuilt
    assert production.preview(expect_no_changes=True).ok
    assert staging.preview(expect_no_changes=True).ok


def test_demo_project_at_the_root(cli: Cli, emulator: EmulatorHandle, tmp_path: Path) -> None:
    app_id = emulator.create_app("demo-site")
    project = root_project(tmp_path / "clone")
    stack = open_stack(cli, emulator, project, tmp_path, stack="demo")
    stack.set_config("appId", app_id)
    up = stack.up()
    assert up.ok, up.output
    out = stack.outputs()
    state = emulator.records()
    assert state.apps[app_id].environments["production"]["deploy_id"] == out["deploy_id"]
    assert out["route_prefix"] == state.plugins["ns_demo"]["text_embed_1_0_0"].route_prefix
    assert stack.preview(expect_no_changes=True).ok
