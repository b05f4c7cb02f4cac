"""PluginDeployment through the real provider host and the engine stand-in, against the
emulator: one program (create, no change, a version bump that replaces), for what only the
host shows (the provider pickled into state, the engine's replace then delete), and a preview
with an input the engine does not know yet, as only the host hands it over (the SDK's
``Unknown``). Every branch of the deploy layer runs in-process in
tests/kinds/test_plugin_deployment.py, and both spellings of plugin statuses in
tests/kinds/test_plugin_statuses.py; here the emulator spells them as the wire examples do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from mixpeek_pulumi import AppDeploy, PluginDeployment
from tests.engine import Stack, run_program
from tests.sites import plugin, site, write_tree

NS = "ns_test"


def program(source: Path, version: str = "1.0.0", **extra: Any) -> Any:
    def run() -> None:
        p = PluginDeployment(
            "embed",
            namespace_id=NS,
            name="text_embed",
            version=version,
            source=str(source),
            poll_interval_seconds=0.1,
            **extra,
        )
        pulumi.export("route_prefix", p.route_prefix)
        pulumi.export("feature_uri", p.feature_uri)
        pulumi.export("plugin_id", p.plugin_id)

    return run


def status(stack: Stack, plugin_id: str) -> dict[str, Any]:
    """What the service says, its status upper-cased whichever spelling it sent."""
    with stack.emulator.api() as c:
        response = c.get(f"/v1/namespaces/{NS}/plugins/{plugin_id}/status")
        body = response.json()
        if response.status_code == 200:
            body["status"] = body["status"].upper()
        return {"http": response.status_code, **body}


def test_create_then_version_bump_replaces_without_a_gap(stack: Stack, tmp_path: Path) -> None:
    v1 = write_tree(tmp_path / "v1", plugin("1.0.0"))
    first = run_program(stack.engine, program(v1))
    assert first.steps == [("create", "embed")]
    assert first.outputs["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
    assert first.outputs["feature_uri"] == "mixpeek://text_embed@1.0.0"
    outs = stack.engine.outputs("embed")
    assert (outs["status"], outs["deployed"], outs["realtime_enabled"]) == ("DEPLOYED", True, True)
    assert run_program(stack.engine, program(v1)).steps == [("same", "embed")]

    v2 = write_tree(tmp_path / "v2", plugin("1.0.1", body="return {'embedding': [1.0]}"))
    second = run_program(stack.engine, program(v2, version="1.0.1"))
    assert second.steps == [("replace", "embed"), ("delete", "embed")]
    assert second.outputs["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_1"
    log = [(r["method"], r["path"]) for r in stack.emulator.requests()]
    undeploy_old = log.index(("POST", f"/v1/namespaces/{NS}/plugins/text_embed_1_0_0/undeploy"))
    new_status = f"/v1/namespaces/{NS}/plugins/text_embed_1_0_1/status"
    last_new_poll = max(i for i, entry in enumerate(log) if entry == ("GET", new_status))
    assert undeploy_old > last_new_poll  # the old route served until the new one was DEPLOYED
    assert status(stack, "text_embed_1_0_0")["status"] == "NOT_DEPLOYED"
    assert status(stack, "text_embed_1_0_1")["status"] == "DEPLOYED"


def test_a_preview_with_the_deployment_type_unknown_checks_nothing_of_it(
    stack: Stack, tmp_path: Path
) -> None:
    """Until the engine knows it, the deployment type is not taken for its default, realtime:
    the host hands the provider the SDK's ``Unknown`` for it, which the front door reads as
    not known yet."""
    app_id = stack.emulator.create_app("unknown-type")
    bundle = write_tree(tmp_path / "dist", site())
    source = write_tree(tmp_path / "src", {k: v for k, v in plugin().items() if k != "realtime.py"})

    def run() -> None:
        made = AppDeploy("site", app_id=app_id, bundle=str(bundle))
        PluginDeployment(
            "embed",
            namespace_id=NS,
            name="text_embed",
            version="1.0.0",
            source=str(source),
            deployment_type=made.deploy_id.apply(lambda _: "batch_only"),
        )

    preview = run_program(stack.engine, run, preview=True)
    assert preview.steps == [("create", "site"), ("create", "embed")]
