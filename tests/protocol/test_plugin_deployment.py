"""PluginDeployment through the real provider host, against the emulator. Both spellings of a
plugin's status are read in process (tests/kinds/test_plugin_statuses.py); here the emulator
spells them as the wire examples do."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pulumi
import pytest

from mixpeek_pulumi import AppDeploy, PluginDeployment
from tests.emulator_fixture import wait_until
from tests.engine import EngineError, Stack, run_program
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


def test_blocked_import_fails_in_check_before_any_upload(stack: Stack, tmp_path: Path) -> None:
    files = {**plugin(), "pipeline.py": "import os\nimport subprocess\n"}
    source = write_tree(tmp_path / "bad", files)
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source))
    assert info.value.op == "check"
    assert "pipeline.py:2:0: blocked import 'subprocess'" in info.value.details
    assert stack.emulator.count("POST", "/v1/namespaces/*") == 0


def test_realtime_without_realtime_py_fails_in_check_before_any_upload(
    stack: Stack, tmp_path: Path
) -> None:
    files = {k: v for k, v in plugin().items() if k != "realtime.py"}
    source = write_tree(tmp_path / "batchy", files)
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source))
    assert info.value.op == "check"
    assert (
        f"Plugin text_embed 1.0.0 asks for a realtime deployment, but its source at {source} "
        "has no realtime.py beside manifest.py" in info.value.details
    )
    assert "set deployment_type to batch_only" in info.value.details
    assert stack.emulator.count("POST", "/v1/namespaces/*") == 0
    # The same source deploys as asked for batch processing.
    batch = run_program(stack.engine, program(source, deployment_type="batch_only"))
    assert batch.steps == [("create", "embed")]
    assert stack.engine.outputs("embed")["status"] == "NOT_DEPLOYED"


def test_a_realtime_plugin_in_one_top_level_folder_deploys_realtime(
    stack: Stack, tmp_path: Path
) -> None:
    """``realtime.py`` beside ``manifest.py`` counts in a top-level folder too, as the
    quickstart zips it, for the provider's check and for the service."""
    source = write_tree(tmp_path / "src", {f"text_embed/{k}": v for k, v in plugin().items()})
    result = run_program(stack.engine, program(source))
    assert result.outputs["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
    assert stack.engine.outputs("embed")["status"] == "DEPLOYED"


def test_a_preview_with_the_deployment_type_unknown_checks_nothing_of_it(
    stack: Stack, tmp_path: Path
) -> None:
    """Until the engine knows it, the deployment type is not taken for its default, realtime."""
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


@pytest.mark.parametrize("spelled", ["batch_only", "BATCH_ONLY"])
def test_a_realtime_deploy_answered_batch_only_fails_at_once(
    stack: Stack, tmp_path: Path, spelled: str
) -> None:
    """Spec 0.81's batch_only_requires_enterprise answer: no waiting for a realtime rollout the
    service will never start, and the service's own reason in the sentence."""
    reason = "Plugin has realtime capabilities but namespace requires dedicated infrastructure"
    stack.emulator.fault(
        method="POST",
        path="/v1/namespaces/*/plugins/*/deploy",
        status=200,
        after_handler=True,
        body={
            "status": "batch_only",
            "deployment_type": spelled,
            "message": reason,
            "realtime_available": False,
        },
    )
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(write_tree(tmp_path / "src", plugin())))
    assert info.value.headline == (
        "PluginDeployment 'embed': plugin text_embed_1_0_0 in namespace ns_test was deployed for "
        f"batch processing only, not realtime (status batch_only): {reason}; realtime needs a "
        "namespace on dedicated (Enterprise) infrastructure, so use one or set deployment_type "
        "to batch_only (the plugin stays uploaded and the next up adopts it)."
    )
    assert stack.emulator.count("GET", "/v1/namespaces/*/plugins/*/status") == 1  # before only


def test_server_validation_failure_lists_file_and_line(stack: Stack, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    refusal = {
        "success": False,
        "status": 400,
        "error": {
            "type": "ValidationError",
            "message": "Plugin validation failed",
            "details": {"validation_errors": ["realtime.py:2:4: blocked call 'open()'"]},
        },
    }
    stack.emulator.fault(
        method="POST", path="/v1/namespaces/*/uploads/*/confirm", status=400, body=refusal
    )
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source))
    assert info.value.headline == (
        "PluginDeployment 'embed': plugin text_embed 1.0.0 was refused by the service's "
        "validation: realtime.py:2:4: blocked call 'open()'."
    )


def test_failed_deployment_carries_the_servers_message(stack: Stack, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    stack.emulator.next(plugin_fail_reason="Ray Serve replica crashed: CUDA OOM")
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source))
    assert info.value.headline == (
        f"PluginDeployment 'embed': plugin text_embed_1_0_0 in namespace {NS} ended with status "
        "FAILED: Ray Serve replica crashed: CUDA OOM."
    )


def upload_out_of_band(stack: Stack, files: dict[str, str]) -> None:
    stack.emulator.seed_plugin(NS, "text_embed", "1.0.0", files).raise_for_status()


def test_existing_version_with_same_code_is_adopted(stack: Stack, tmp_path: Path) -> None:
    upload_out_of_band(stack, plugin())
    confirms_before = stack.emulator.count("POST", "/v1/namespaces/*/confirm")
    result = run_program(stack.engine, program(write_tree(tmp_path / "src", plugin())))
    assert result.outputs["plugin_id"] == "text_embed_1_0_0"
    assert stack.emulator.count("POST", "/v1/namespaces/*/uploads/*/confirm") == confirms_before
    assert "adopting existing text_embed_1_0_0" in stack.host.output()


def test_existing_version_with_other_code_is_refused(stack: Stack, tmp_path: Path) -> None:
    upload_out_of_band(stack, plugin(body="return {'embedding': [9.9]}"))
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(write_tree(tmp_path / "src", plugin())))
    assert (
        "with different code; plugin versions are immutable, so bump version" in info.value.headline
    )


def test_new_code_under_the_same_version_is_refused_in_check(stack: Stack, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    run_program(stack.engine, program(source))
    write_tree(source, {"realtime.py": "def run_inference(inputs):\n    return {}\n"})
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source))
    assert info.value.op == "check"
    assert "plugin versions are immutable, so bump version" in info.value.details


def test_refresh_sees_an_undeploy_and_up_redeploys(stack: Stack, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    run_program(stack.engine, program(source))
    with stack.emulator.api() as c:
        c.post(f"/v1/namespaces/{NS}/plugins/text_embed_1_0_0/undeploy").raise_for_status()
    stack.engine.refresh()
    assert stack.engine.outputs("embed")["deployed"] is False
    assert run_program(stack.engine, program(source)).steps == [("update", "embed")]
    assert status(stack, "text_embed_1_0_0")["status"] == "DEPLOYED"


def test_timeout_then_next_up_waits_for_the_same_rollout(stack: Stack, tmp_path: Path) -> None:
    """A rollout cut short by the deadline is still under way at the service; the next run
    adopts the uploaded plugin and waits for that rollout instead of requesting another."""
    source = write_tree(tmp_path / "src", plugin())
    # Time enough for the upload on a loaded machine, so the rollout is always requested
    # before the deadline passes; the rollout outlasts it.
    stack.emulator.timing(plugin_seconds=4.0)
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(source, timeout_seconds=1.5))
    assert (
        "the rollout of plugin text_embed_1_0_0 in namespace ns_test did not finish within "
        "timeout_seconds=1.5" in info.value.headline
    )
    assert stack.engine.state == {}

    again = run_program(stack.engine, program(source))

    assert again.outputs["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
    deploys = f"/v1/namespaces/{NS}/plugins/text_embed_1_0_0/deploy"
    assert stack.emulator.count("POST", deploys) == 1
    assert "re-attaching to the rollout of text_embed_1_0_0 under way" in stack.host.output()


def test_batch_only(stack: Stack, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    result = run_program(stack.engine, program(source, deployment_type="batch_only"))
    assert result.outputs["route_prefix"] is None
    assert stack.engine.outputs("embed")["deployed"] is True


def test_no_plugin_support_is_one_sentence(stack: Stack, tmp_path: Path) -> None:
    stack.emulator.fault(
        method="*", path="/v1/namespaces/*", status=404, body={"detail": "Not Found"}, times=10
    )
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(write_tree(tmp_path / "src", plugin())))
    assert info.value.headline.startswith(
        f"PluginDeployment 'embed': The Mixpeek host {stack.emulator.url} has no plugin API"
    )
    assert "set `mixpeek:baseUrl`" in info.value.headline


@pytest.mark.parametrize(
    ("on_delete", "expected"),
    [("undeploy", "NOT_DEPLOYED"), ("delete", 404), ("retain", "DEPLOYED")],
)
def test_destroy_follows_on_delete(
    stack: Stack, tmp_path: Path, on_delete: str, expected: Any
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    run_program(stack.engine, program(source, on_delete=on_delete))
    stack.engine.destroy()
    seen = status(stack, "text_embed_1_0_0")
    assert (seen["http"] if expected == 404 else seen["status"]) == expected
    assert stack.engine.state == {}


def test_an_unreadable_copy_at_the_service_is_refused_in_a_sentence(
    stack: Stack, tmp_path: Path
) -> None:
    """Adoption reads the service's archive to compare code: one whose local header disagrees
    with its central directory cannot be compared, which is a refusal, not an internal error."""
    upload_out_of_band(stack, plugin())
    stored = stack.emulator.records().plugins[NS]["text_embed_1_0_0"]
    path = stack.emulator.running.emulator.objects.path(stored.s3_key)
    data = bytearray(path.read_bytes())
    length = struct.unpack_from("<H", data, 26)[0]  # the first local header's name, upper-cased
    data[30 : 30 + length] = bytes(data[30 : 30 + length]).upper()
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(write_tree(tmp_path / "src", plugin())))
    assert "already exists in namespace ns_test as text_embed_1_0_0 with different code" in (
        info.value.headline
    )
    assert "BadZipFile" not in info.value.details and "internal error" not in info.value.details


def test_a_new_version_previews_the_files_that_differ_from_the_deployed_one(
    stack: Stack, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", plugin("1.0.0"))
    run_program(stack.engine, program(source))
    assert stack.engine.outputs("embed")["code_files"].keys() == {
        "manifest.py",
        "pipeline.py",
        "realtime.py",
    }
    write_tree(tmp_path / "src", plugin("1.0.1", body="return {'embedding': [1.0]}"))
    (source / "tokenizer.json").write_text("{}")
    mark = len(stack.host.output())

    preview = run_program(stack.engine, program(source, version="1.0.1"), preview=True)

    assert preview.steps == [("replace", "embed")]
    expected = "source: 2 changed, 1 added, 0 removed: manifest.py, realtime.py, +tokenizer.json"
    # The host's lines reach this process through a pipe read by another thread.
    assert wait_until(lambda: expected in stack.host.output()[mark:], timeout=10)
    assert "pipeline.py" not in stack.host.output()[mark:]  # unchanged files are never listed
