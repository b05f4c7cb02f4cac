"""PluginDeployment in the deploy layer, against the emulator, kept as the dynamic host keeps
it. Ported from the protocol tier, which keeps one program through the real provider host
(tests/protocol/test_plugin_deployment.py). Statuses are read here as the wire examples spell
them; tests/kinds/test_plugin_statuses.py reads every one in both spellings (and holds the
rollout cut short and the failed rollout)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from mixpeek_pulumi.errors import MixpeekError
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.kinds.harness import CheckFailed, Resource
from tests.sites import plugin, write_tree

NS = "ns_test"
DYNAMIC: dict[str, Any] = {"keeps_partial": False, "drops_nulls": True}
"""Kept as the dynamic host keeps a resource, as the protocol tier ran these."""


def embed(resource: Make) -> Resource:
    return resource("PluginDeployment", "embed", **DYNAMIC)


def declared(source: Path, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    """The inputs of the protocol tier's program: text_embed in NS, polled fast."""
    return {
        "namespace_id": NS,
        "name": "text_embed",
        "version": version,
        "source": str(source),
        "poll_interval_seconds": 0.1,
        **extra,
    }


def status(emulator: EmulatorHandle, plugin_id: str) -> dict[str, Any]:
    """What the service says, its status upper-cased whichever spelling it sent."""
    with emulator.api() as c:
        response = c.get(f"/v1/namespaces/{NS}/plugins/{plugin_id}/status")
        body = response.json()
        if response.status_code == 200:
            body["status"] = body["status"].upper()
        return {"http": response.status_code, **body}


def headline(error: BaseException) -> str:
    return str(error).splitlines()[0]


def test_create_then_version_bump_replaces_without_a_gap(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Create, no change, a version bump that replaces without a gap, and destroy."""
    r = embed(resource)
    v1 = write_tree(tmp_path / "v1", plugin("1.0.0"))
    first = r.up(**declared(v1))
    assert r.step == "create"
    assert first["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
    assert first["feature_uri"] == "mixpeek://text_embed@1.0.0"
    assert (first["status"], first["deployed"], first["realtime_enabled"]) == (
        "DEPLOYED",
        True,
        True,
    )
    sent = len(emulator.requests())
    r.up(**declared(v1))
    assert r.step == "same"
    assert len(emulator.requests()) == sent

    v2 = write_tree(tmp_path / "v2", plugin("1.0.1", body="return {'embedding': [1.0]}"))
    second = r.up(**declared(v2, version="1.0.1"))
    assert r.step == "replace"
    assert second["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_1"
    log = [(q["method"], q["path"]) for q in emulator.requests()]
    undeploy_old = log.index(("POST", f"/v1/namespaces/{NS}/plugins/text_embed_1_0_0/undeploy"))
    new_status = f"/v1/namespaces/{NS}/plugins/text_embed_1_0_1/status"
    last_new_poll = max(i for i, entry in enumerate(log) if entry == ("GET", new_status))
    assert undeploy_old > last_new_poll  # the old route served until the new one was DEPLOYED
    assert status(emulator, "text_embed_1_0_0")["status"] == "NOT_DEPLOYED"
    assert status(emulator, "text_embed_1_0_1")["status"] == "DEPLOYED"

    r.destroy()
    assert status(emulator, "text_embed_1_0_1")["status"] == "NOT_DEPLOYED"


def test_blocked_import_fails_in_check_before_any_upload(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    files = {**plugin(), "pipeline.py": "import os\nimport subprocess\n"}
    source = write_tree(tmp_path / "bad", files)
    with pytest.raises(CheckFailed) as info:
        embed(resource).up(**declared(source))
    assert "pipeline.py:2:0: blocked import 'subprocess'" in str(info.value)
    assert emulator.count("POST", "/v1/namespaces/*") == 0


def test_realtime_without_realtime_py_fails_in_check_before_any_upload(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    files = {k: v for k, v in plugin().items() if k != "realtime.py"}
    source = write_tree(tmp_path / "batchy", files)
    r = embed(resource)
    with pytest.raises(CheckFailed) as info:
        r.up(**declared(source))
    assert (
        f"Plugin text_embed 1.0.0 asks for a realtime deployment, but its source at {source} "
        "has no realtime.py beside manifest.py" in str(info.value)
    )
    assert "set deployment_type to batch_only" in str(info.value)
    assert emulator.count("POST", "/v1/namespaces/*") == 0
    # The same source deploys as asked for batch processing.
    batch = r.up(**declared(source, deployment_type="batch_only"))
    assert r.step == "create"
    assert batch["status"] == "NOT_DEPLOYED"


def test_a_realtime_plugin_in_one_top_level_folder_deploys_realtime(
    resource: Make, tmp_path: Path
) -> None:
    """``realtime.py`` beside ``manifest.py`` counts in a top-level folder too, as the
    quickstart zips it, for the provider's check and for the service."""
    source = write_tree(tmp_path / "src", {f"text_embed/{k}": v for k, v in plugin().items()})
    out = embed(resource).up(**declared(source))
    assert out["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
    assert out["status"] == "DEPLOYED"


def test_a_preview_with_the_deployment_type_unknown_checks_nothing_of_it(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Until the engine knows it (another resource's output), the deployment type is not
    taken for its default, realtime, which this source could not serve."""
    source = write_tree(tmp_path / "src", {k: v for k, v in plugin().items() if k != "realtime.py"})
    r = embed(resource)
    inputs = declared(source)
    with pytest.raises(CheckFailed, match=r"no realtime\.py beside manifest\.py"):
        r.preview(**inputs)  # known, and so realtime by default
    assert r.preview(unknown={"deployment_type"}, **inputs) is None  # a create, no failure
    assert emulator.count("POST", "/v1/namespaces/*") == 0


@pytest.mark.parametrize("spelled", ["batch_only", "BATCH_ONLY"])
def test_a_realtime_deploy_answered_batch_only_fails_at_once(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, spelled: str
) -> None:
    """Spec 0.81's batch_only_requires_enterprise answer: no waiting for a realtime rollout the
    service will never start, and the service's own reason in the sentence."""
    reason = "Plugin has realtime capabilities but namespace requires dedicated infrastructure"
    emulator.fault(
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
    with pytest.raises(MixpeekError) as info:
        embed(resource).up(**declared(write_tree(tmp_path / "src", plugin())))
    assert headline(info.value) == (
        "PluginDeployment 'embed': plugin text_embed_1_0_0 in namespace ns_test was deployed for "
        f"batch processing only, not realtime (status batch_only): {reason}; realtime needs a "
        "namespace on dedicated (Enterprise) infrastructure, so use one or set deployment_type "
        "to batch_only (the plugin stays uploaded and the next up adopts it)."
    )
    assert emulator.count("GET", "/v1/namespaces/*/plugins/*/status") == 1  # before only


def test_server_validation_failure_lists_file_and_line(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
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
    emulator.fault(
        method="POST", path="/v1/namespaces/*/uploads/*/confirm", status=400, body=refusal
    )
    with pytest.raises(MixpeekError) as info:
        embed(resource).up(**declared(source))
    assert headline(info.value) == (
        "PluginDeployment 'embed': plugin text_embed 1.0.0 was refused by the service's "
        "validation: realtime.py:2:4: blocked call 'open()'."
    )


def upload_out_of_band(emulator: EmulatorHandle, files: dict[str, str]) -> None:
    emulator.seed_plugin(NS, "text_embed", "1.0.0", files).raise_for_status()


def test_existing_version_with_same_code_is_adopted(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    upload_out_of_band(emulator, plugin())
    confirms_before = emulator.count("POST", "/v1/namespaces/*/uploads/*/confirm")
    r = embed(resource)
    out = r.up(**declared(write_tree(tmp_path / "src", plugin())))
    assert out["plugin_id"] == "text_embed_1_0_0"
    assert emulator.count("POST", "/v1/namespaces/*/uploads/*/confirm") == confirms_before
    assert "adopting existing text_embed_1_0_0" in r.said()


def test_existing_version_with_other_code_is_refused(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    upload_out_of_band(emulator, plugin(body="return {'embedding': [9.9]}"))
    with pytest.raises(MixpeekError) as info:
        embed(resource).up(**declared(write_tree(tmp_path / "src", plugin())))
    assert "with different code; plugin versions are immutable, so bump version" in headline(
        info.value
    )


def test_new_code_under_the_same_version_is_refused_in_check(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    r = embed(resource)
    r.up(**declared(source))
    write_tree(source, {"realtime.py": "def run_inference(inputs):\n    return {}\n"})
    sent = len(emulator.requests())
    with pytest.raises(CheckFailed) as info:
        r.up(**declared(source))
    assert "plugin versions are immutable, so bump version" in str(info.value)
    assert len(emulator.requests()) == sent


def test_batch_only(resource: Make, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", plugin())
    out = embed(resource).up(**declared(source, deployment_type="batch_only"))
    assert out.get("route_prefix") is None
    assert out["deployed"] is True


def test_no_plugin_support_is_one_sentence(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.fault(
        method="*", path="/v1/namespaces/*", status=404, body={"detail": "Not Found"}, times=10
    )
    with pytest.raises(MixpeekError) as info:
        embed(resource).up(**declared(write_tree(tmp_path / "src", plugin())))
    assert headline(info.value).startswith(
        f"PluginDeployment 'embed': The Mixpeek host {emulator.url} has no plugin API"
    )
    assert "set `mixpeek:baseUrl`" in headline(info.value)


@pytest.mark.parametrize(
    ("on_delete", "expected"),
    [("undeploy", "NOT_DEPLOYED"), ("delete", 404), ("retain", "DEPLOYED")],
)
def test_destroy_follows_on_delete(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, on_delete: str, expected: Any
) -> None:
    source = write_tree(tmp_path / "src", plugin())
    r = embed(resource)
    r.up(**declared(source, on_delete=on_delete))
    r.destroy()
    seen = status(emulator, "text_embed_1_0_0")
    assert (seen["http"] if expected == 404 else seen["status"]) == expected


def test_an_unreadable_copy_at_the_service_is_refused_in_a_sentence(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Adoption reads the service's archive to compare code: one whose local header disagrees
    with its central directory cannot be compared, which is a refusal, not an internal error."""
    upload_out_of_band(emulator, plugin())
    stored = emulator.records().plugins[NS]["text_embed_1_0_0"]
    path = emulator.running.emulator.objects.path(stored.s3_key)
    data = bytearray(path.read_bytes())
    length = struct.unpack_from("<H", data, 26)[0]  # the first local header's name, upper-cased
    data[30 : 30 + length] = bytes(data[30 : 30 + length]).upper()
    path.write_bytes(bytes(data))
    with pytest.raises(MixpeekError) as info:
        embed(resource).up(**declared(write_tree(tmp_path / "src", plugin())))
    assert "already exists in namespace ns_test as text_embed_1_0_0 with different code" in (
        headline(info.value)
    )
    assert "BadZipFile" not in str(info.value) and "internal error" not in str(info.value)


def test_a_new_version_previews_the_files_that_differ_from_the_deployed_one(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", plugin("1.0.0"))
    r = embed(resource)
    out = r.up(**declared(source))
    assert out["code_files"].keys() == {"manifest.py", "pipeline.py", "realtime.py"}
    write_tree(tmp_path / "src", plugin("1.0.1", body="return {'embedding': [1.0]}"))
    (source / "tokenizer.json").write_text("{}")
    sent = len(emulator.requests())

    preview = r.preview(**declared(source, version="1.0.1"))

    assert preview is not None
    assert preview.kinds() == {"version": "replace"}  # new code needs a new version
    expected = "source: 2 changed, 1 added, 0 removed: manifest.py, realtime.py, +tokenizer.json"
    assert preview.notes == (expected,)  # unchanged files are never listed
    assert expected in r.said()  # said under the resource, as a preview shows it
    assert len(emulator.requests()) == sent
