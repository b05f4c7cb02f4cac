"""What the real CLI shows and keeps when a deploy fails, when a stack is destroyed with
``on_delete="rollback"``, and that the API key never lands in anything it prints or stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.pulumi_cli import Cli
from tests.cli.conftest import open_stack, site_project
from tests.emulator_fixture import EmulatorHandle
from tests.sites import site, write_tree

pytestmark = pytest.mark.cli


def test_a_failed_deploy_leaves_nothing_in_state_and_says_why(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("failing-site")
    stack = open_stack(cli, emulator, site_project(tmp_path / "project"), tmp_path)
    stack.set_config("appId", app_id)
    stack.set_config("bundle", str(write_tree(tmp_path / "dist", site())))
    emulator.next(deploy_fail_reason="index.html references app.css, which is missing")

    up = stack.up()

    assert not up.ok
    headline = next(line for line in up.lines if "AppDeploy 'site': deploy dep_" in line)
    assert "to staging of app " + app_id in headline
    assert headline.rstrip().endswith(
        "ended with status failed: index.html references app.css, which is missing."
    ), headline
    # The build log's tail follows the headline.
    assert any("| Deploy failed: index.html references app.css" in line for line in up.lines)
    assert "site" not in stack.resources()
    assert emulator.count("POST", "/v1/apps/*/deploy") == 1


def test_destroy_with_rollback_restores_what_was_served_before(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("rolled-site")
    first = open_stack(cli, emulator, site_project(tmp_path / "first"), tmp_path, stack="first")
    first.set_config("appId", app_id)
    first.set_config("bundle", str(write_tree(tmp_path / "v1", site("v1"))))
    assert first.up().ok
    assert first.destroy().ok  # retain: staging keeps serving version 1

    second = open_stack(cli, emulator, site_project(tmp_path / "second"), tmp_path, stack="second")
    second.set_config("appId", app_id)
    second.set_config("bundle", str(write_tree(tmp_path / "v2", site("v2"))))
    second.set_config("onDelete", "rollback")
    assert second.up().ok
    assert second.outputs()["previous_version"] == 1
    destroyed = second.destroy()
    assert destroyed.ok, destroyed.output
    with emulator.api() as api:
        staging = api.get(f"/v1/apps/{app_id}").json()["environments"]["staging"]
    versions = {
        v.version: v.deploy_id for v in emulator.running.emulator.store.state.apps[app_id].versions
    }
    assert staging["deploy_id"] == versions[1]


def test_the_api_key_is_nowhere_in_state_output_or_backend(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("secret-site")
    stack = open_stack(cli, emulator, site_project(tmp_path / "project"), tmp_path)
    stack.set_config("appId", app_id)
    stack.set_config("bundle", str(write_tree(tmp_path / "dist", site())))
    assert stack.up().ok
    emulator.next(deploy_fail_reason="a failure whose message is printed")
    write_tree(tmp_path / "dist", {"index.html": "<h1>v2</h1>"})
    assert not stack.up().ok
    assert stack.refresh().ok
    exported = stack.run("stack", "export").output
    assert stack.destroy().ok

    key = emulator.api_key
    assert key not in exported
    assert "mixpeek:apiKey" in (tmp_path / "project" / "Pulumi.dev.yaml").read_text()
    for path in (tmp_path / "backend").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in "\n".join(stack.printed)
    assert all(key not in str(r) for r in emulator.requests())
