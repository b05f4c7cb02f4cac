"""Every place the provider reads a plugin's status, against an emulator that spells statuses
as the wire examples do (``deployed``) and one that spells them as the status model's
description does (``DEPLOYED``): the provider reads either, so these run once per spelling,
in process, and the host and CLI tiers run with one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_pulumi.errors import DeployFailedError, DeployTimeoutError
from mixpeek_pulumi.kinds.spec import Inputs
from mixpeek_pulumi.run.context import READ_SECONDS
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.sites import plugin, write_tree

NS = "ns_spelled"
PLUGIN_ID = "text_embed_1_0_0"
STATUS = f"/v1/namespaces/{NS}/plugins/{PLUGIN_ID}/status"
pytestmark = pytest.mark.both_status_spellings


def inputs(source: Path, **extra: object) -> dict[str, object]:
    return {
        "namespace_id": NS,
        "name": "text_embed",
        "version": "1.0.0",
        "source": str(source),
        "poll_interval_seconds": 0.05,
        **extra,
    }


def raw_status(emulator: EmulatorHandle) -> str:
    with emulator.api() as api:
        return str(api.get(STATUS).json()["status"])


def test_create_refresh_redeploy_import_and_destroy_read_either_spelling(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, plugin_status_case: str
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    embed = resource("PluginDeployment", "embed")

    state = embed.up(**inputs(source))

    # The emulator really answered in this run's spelling, so neither run is the other again.
    assert raw_status(emulator) == ("DEPLOYED" if plugin_status_case == "upper" else "deployed")
    assert (state["status"], state["deployed"], state["realtime_enabled"]) == (
        "DEPLOYED",
        True,
        True,
    )
    assert state["route_prefix"] == f"/inference/custom_plugin_{PLUGIN_ID}"

    with emulator.api() as api:
        api.post(f"/v1/namespaces/{NS}/plugins/{PLUGIN_ID}/undeploy").raise_for_status()
    refreshed = embed.refresh()
    assert refreshed is not None
    assert (refreshed["status"], refreshed["deployed"]) == ("NOT_DEPLOYED", False)

    again = embed.up(**inputs(source))
    assert embed.step == "update"
    assert (again["status"], again["deployed"]) == ("DEPLOYED", True)
    assert raw_status(emulator).upper() == "DEPLOYED"

    with embed.context(Inputs(), READ_SECONDS) as ctx:
        imported = embed.kind_.import_(ctx, f"{NS}/{PLUGIN_ID}")
    assert imported is not None
    assert (imported.status, imported.deployed) == ("DEPLOYED", True)

    embed.destroy()
    assert raw_status(emulator).upper() == "NOT_DEPLOYED"  # on_delete "undeploy"


@pytest.mark.slow
def test_a_rollout_left_in_progress_is_waited_for_by_the_next_run(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    emulator.timing(plugin_seconds=3.0)
    embed = resource("PluginDeployment", "embed", keeps_partial=False)

    with pytest.raises(DeployTimeoutError) as info:
        embed.up(**inputs(source, timeout_seconds=1.0))
    assert (
        f"the rollout of plugin {PLUGIN_ID} in namespace {NS} did not finish within "
        "timeout_seconds=1 " in str(info.value)
    )
    assert embed.state is None

    state = embed.up(**inputs(source))

    assert state["status"] == "DEPLOYED"
    assert state["route_prefix"] == f"/inference/custom_plugin_{PLUGIN_ID}"
    assert emulator.count("POST", f"/v1/namespaces/{NS}/plugins/{PLUGIN_ID}/deploy") == 1
    assert f"re-attaching to the rollout of {PLUGIN_ID} under way" in embed.said()


def test_a_failed_rollout_names_the_servers_reason(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    emulator.next(plugin_fail_reason="Ray Serve replica crashed: CUDA OOM")

    with pytest.raises(DeployFailedError) as info:
        resource("PluginDeployment", "embed").up(**inputs(source))

    assert str(info.value).splitlines()[0] == (
        f"PluginDeployment 'embed': plugin {PLUGIN_ID} in namespace {NS} ended with status "
        "FAILED: Ray Serve replica crashed: CUDA OOM."
    )
