"""The emulator answers as the published contracts spell the wire: plugin statuses as the
examples spell them (and the documented switch), each route family's error shapes, batch-only
plugins, promotion's asset prefix, the routes users' own programs call, and S3's URL fields."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from mixpeek_emulator.state import Timing
from tests.emulator_fixture import EmulatorHandle, make_zip, start_emulator, wait_until
from tests.schema import assert_matches

NS = "/v1/namespaces/ns_wire/plugins"
REALTIME = {
    "manifest.py": "feature_extractor_name = 'wired'\n",
    "pipeline.py": "def build_steps():\n    return []\n",
    "realtime.py": "def run_inference(inputs):\n    return {}\n",
}
BATCH_ONLY = {k: v for k, v in REALTIME.items() if k != "realtime.py"}


def rollout(emulator: EmulatorHandle, name: str, files: dict[str, str]) -> list[str]:
    """Upload, confirm and deploy a plugin; every status read until a terminal one."""
    assert emulator.seed_plugin("ns_wire", name, "1.0.0", files).status_code == 200
    return deploy_and_watch(emulator, f"{name}_1_0_0")


def deploy_and_watch(emulator: EmulatorHandle, plugin_id: str) -> list[str]:
    """Deploy a registered plugin; every status read until a terminal one."""
    seen: list[str] = []
    with emulator.api() as c:
        c.post(f"{NS}/{plugin_id}/deploy").raise_for_status()

        def terminal() -> bool:
            body = c.get(f"{NS}/{plugin_id}/status").json()
            assert_matches(body, "PluginStatusResponse")
            seen.append(body["status"])
            return body["status"].upper() in ("DEPLOYED", "FAILED", "NOT_DEPLOYED")

        assert wait_until(terminal)
    return seen


def test_plugin_statuses_are_spelled_as_the_wire_examples_spell_them(
    emulator: EmulatorHandle,
) -> None:
    seen = rollout(emulator, "lowered", REALTIME)
    assert seen[-1] == "deployed"
    assert set(seen) <= {"queued", "pending", "in_progress", "deployed"}


def test_the_documented_switch_spells_them_as_the_status_model_does() -> None:
    handle = start_emulator(plugin_status_case="upper")
    try:
        seen = rollout(handle, "raised", REALTIME)
    finally:
        handle.running.stop()
    assert seen[-1] == "DEPLOYED"
    assert set(seen) <= {"QUEUED", "PENDING", "IN_PROGRESS", "DEPLOYED"}


def test_the_switch_refuses_a_spelling_it_does_not_know() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mixpeek_emulator", "--api-key", "k"],
        env={"MIXPEEK_EMULATOR_PLUGIN_STATUS_CASE": "Title", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "MIXPEEK_EMULATOR_PLUGIN_STATUS_CASE is 'title'; use lower or upper" in done.stderr


def test_a_plugin_without_realtime_py_is_deployed_batch_only(emulator: EmulatorHandle) -> None:
    assert emulator.seed_plugin("ns_wire", "batchy", "1.0.0", BATCH_ONLY).status_code == 200
    with emulator.api() as c:
        answer = c.post(f"{NS}/batchy_1_0_0/deploy", params={"deployment_type": "realtime"})
        # Spec 0.81's batch_only_no_realtime example, word for word.
        assert answer.json() == {
            "status": "deployed",
            "deployment_type": "batch_only",
            "message": "Plugin deployed for batch processing (no realtime endpoint)",
        }
        status = c.get(f"{NS}/batchy_1_0_0/status").json()
    assert (status["status"], status["deployed"]) == ("not_deployed", True)
    assert (status["route_prefix"], status["realtime_enabled"]) == (None, False)


def test_plugin_422s_are_http_validation_errors_and_app_422s_error_responses(
    emulator: EmulatorHandle,
) -> None:
    app_id = emulator.create_app("wire-site")
    with emulator.api() as c:
        plugin = c.post(f"{NS}/uploads", json={"name": "ok_name", "version": "1.0"})
        query = c.post(f"{NS}/x_1_0_0/deploy", params={"deployment_type": "sometimes"})
        app = c.post(f"/v1/apps/{app_id}/deploy", json={"environment": "qa"})
    assert plugin.status_code == query.status_code == app.status_code == 422
    assert_matches(plugin.json(), "HTTPValidationError", "plugins")
    assert plugin.json()["detail"][0]["loc"] == ["body", "version"]
    assert_matches(query.json(), "HTTPValidationError", "plugins")
    assert query.json()["detail"][0]["loc"] == ["query", "deployment_type"]
    assert_matches(app.json(), "ErrorResponse", "apps")
    [problem] = app.json()["error"]["details"]["validation_errors"]
    assert (problem["type"], problem["location"]) == ("enum", "body.environment")


def test_plugin_errors_carry_no_code_as_spec_0_81_defines_them(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        missing = c.get(f"{NS}/nope_1_0_0/status")
        app = c.get("/v1/apps/app_nope")
    assert "code" not in missing.json()["error"]
    assert_matches(missing.json(), "ErrorResponse", "plugins")
    assert app.json()["error"]["code"] is None  # the apps SDK's ErrorDetail has one
    assert_matches(app.json(), "ErrorResponse", "apps")


def test_upload_fields_follow_the_spec(emulator: EmulatorHandle) -> None:
    body = {"name": "sized", "version": "1.0.0"}
    with emulator.api() as c:
        null_expiry = c.post(f"{NS}/uploads", json={**body, "presigned_url_expiration": None})
        empty = c.post(f"{NS}/uploads", json={**body, "file_size_bytes": 0})
        too_big = c.post(f"{NS}/uploads", json={**body, "file_size_bytes": 524_288_001})
        largest = c.post(f"{NS}/uploads", json={**body, "file_size_bytes": 524_288_000})
    assert [r.status_code for r in (null_expiry, empty, too_big)] == [422, 422, 422]
    assert null_expiry.json()["detail"][0]["loc"] == ["body", "presigned_url_expiration"]
    assert empty.json()["detail"][0]["loc"] == ["body", "file_size_bytes"]
    assert largest.status_code == 200  # SDK 0.81.1's 500 MB, over spec 0.81's 100 MB


def test_a_confirm_checks_the_size_it_is_given(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        slot = c.post(f"{NS}/uploads", json={"name": "measured", "version": "1.0.0"}).json()
        archive = make_zip(REALTIME)
        httpx.put(
            slot["presigned_url"], content=archive, headers={"Content-Type": "application/zip"}
        ).raise_for_status()
        confirm = f"{NS}/uploads/{slot['upload_id']}/confirm"
        wrong = c.post(confirm, json={"file_size_bytes": len(archive) + 1})
        right = c.post(confirm, json={"file_size_bytes": len(archive)})
    assert wrong.status_code == 400
    assert f"does not match the {len(archive)} bytes uploaded" in wrong.json()["error"]["message"]
    assert right.status_code == 200


def test_presigned_urls_carry_s3s_date_and_expiry_in_seconds(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("signed-site")
    before = time.time()
    with emulator.api() as c:
        url = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"}).json()
    query = parse_qs(urlsplit(url["upload_url"]).query)
    assert query["X-Amz-Expires"] == ["3600"]
    signed = time.mktime(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")) - time.timezone
    assert before - 2 <= signed <= time.time() + 1


def test_promote_updates_the_build_configs_asset_prefix(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("promoted-site")
    key = emulator.upload_bundle(app_id, {"index.html": "<h1>p</h1>"})
    with emulator.api() as c:
        deploy = c.post(
            f"/v1/apps/{app_id}/deploy",
            json={"environment": "staging", "bundle_s3_key": key, "message": "m"},
        ).json()
        assert wait_until(
            lambda: (
                c.get(f"/v1/apps/{app_id}/deploys/{deploy['deploy_id']}").json()["status"]
                == "complete"
            )
        )
        promoted = c.post(f"/v1/apps/{app_id}/promote").json()
        app = c.get(f"/v1/apps/{app_id}").json()
    assert_matches(app, "AppResponse")
    assert app["build_config"]["asset_prefix"] == promoted["asset_prefix"]
    assert app["environments"]["production"]["asset_prefix"] == promoted["asset_prefix"]


def test_restore_takes_a_null_environment_as_production(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("restored-site")
    key = emulator.upload_bundle(app_id, {"index.html": "<h1>r</h1>"})
    with emulator.api() as c:
        c.post(f"/v1/apps/{app_id}/deploy", json={"environment": "staging", "bundle_s3_key": key})
        assert wait_until(lambda: emulator.served_version(app_id, "staging") == 1)
        restored = c.post(f"/v1/apps/{app_id}/versions/1/restore", json={"environment": None})
    assert restored.status_code == 200
    assert restored.json()["environment"] == "production"
    assert emulator.served_version(app_id, "production") == 1


def test_list_apps_filters_by_template(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        for slug, template in (("gallery-one", "gallery"), ("plain-one", None)):
            body = {"slug": slug, "meta": {"title": slug}}
            c.post("/v1/apps", json={**body, "template": template} if template else body)
        gallery = c.get("/v1/apps", params={"template": "gallery"}).json()
        generic = c.get("/v1/apps", params={"template": "generic"}).json()
    assert [a["slug"] for a in gallery["results"]] == ["gallery-one"]
    assert [a["slug"] for a in generic["results"]] == ["plain-one"]


# ------------------------------------------------------------- routes users' programs call


def test_delete_app_frees_the_slug_and_removes_its_bundles(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("doomed-site")
    key = emulator.upload_bundle(app_id, {"index.html": "<h1>d</h1>"})
    with emulator.api() as c:
        c.post(f"/v1/apps/{app_id}/deploy", json={"bundle_s3_key": key})
        assert wait_until(lambda: emulator.served_version(app_id, "production") == 1)
        anonymous = httpx.delete(f"{emulator.url}/v1/apps/{app_id}")
        deleted = c.delete(f"/v1/apps/{app_id}")
        again = c.delete(f"/v1/apps/{app_id}")
        gone = c.get(f"/v1/apps/{app_id}")
        reused = c.post("/v1/apps", json={"slug": "doomed-site", "meta": {"title": "t"}})
    assert anonymous.status_code == 401  # not 405: the route exists, the key is missing
    assert deleted.json() == {"message": "Successfully deleted", "success": True}
    assert_matches(deleted.json(), "GenericDeleteResponse")
    assert (again.status_code, gone.status_code, reused.status_code) == (404, 404, 200)
    assert not emulator.running.emulator.objects.exists(key)
    assert httpx.get(f"{emulator.url}/_sites/{app_id}/production/").status_code == 404


def test_update_app_saves_unpublished_changes_unless_asked_to_publish(
    emulator: EmulatorHandle,
) -> None:
    app_id = emulator.create_app("edited-site")
    emulator.create_app("taken-site")
    with emulator.api() as c:
        dry = c.patch(f"/v1/apps/{app_id}", params={"dry_run": "true"}, json={"slug": "new-site"})
        taken = c.patch(f"/v1/apps/{app_id}", json={"slug": "taken-site"})
        draft = c.patch(f"/v1/apps/{app_id}", json={"meta": {"title": "Edited"}})
        published = c.patch(f"/v1/apps/{app_id}", json={"slug": "new-site", "publish": True})
        extra = c.patch(f"/v1/apps/{app_id}", json={"colour": "red"})
    assert dry.json()["slug"] == "edited-site"  # checked, nothing written
    assert (taken.status_code, taken.json()["error"]["code"]) == (400, "slug_taken")
    assert_matches(draft.json(), "AppResponse")
    assert (draft.json()["meta"]["title"], draft.json()["has_unpublished_changes"]) == (
        "Edited",
        True,
    )
    assert published.json()["slug"] == "new-site"
    assert published.json()["url"] == "https://new-site.mxp.co"
    assert published.json()["has_unpublished_changes"] is False
    assert extra.status_code == 422


def test_the_one_request_plugin_upload_validates_and_registers(
    emulator: EmulatorHandle,
) -> None:
    def upload(name: str, files: dict[str, str]) -> httpx.Response:
        with emulator.api() as c:
            return c.post(
                NS,
                files={"file": ("plugin.zip", make_zip(files), "application/zip")},
                data={"name": name, "version": "1.0.0", "description": "one request"},
            )

    good = upload("formed", REALTIME)
    again = upload("formed", REALTIME)
    unsafe = upload("unsafe", {**REALTIME, "pipeline.py": "import subprocess\n"})
    unnamed = upload("", REALTIME)
    assert good.status_code == 200, good.text
    assert_matches(good.json(), "PluginUploadResponse", "plugins")
    assert (good.json()["plugin_id"], good.json()["deployment_status"]) == (
        "formed_1_0_0",
        "pending",
    )
    assert again.status_code == 409
    assert unsafe.status_code == 400
    assert "blocked import 'subprocess'" in unsafe.json()["error"]["message"]
    assert unnamed.status_code == 422
    assert_matches(unnamed.json(), "HTTPValidationError", "plugins")
    assert deploy_and_watch(emulator, "formed_1_0_0")[-1] == "deployed"


def test_available_lists_the_organizations_plugins_not_the_namespaces(
    emulator: EmulatorHandle,
) -> None:
    assert emulator.seed_plugin("ns_wire", "local_one", "1.0.0", REALTIME).status_code == 200
    with emulator.api() as c:
        available = c.get(f"{NS}/available")
        as_plugin = c.get(f"{NS}/available/status")
    assert available.status_code == 200
    assert_matches(available.json(), "AvailableOrgPluginsResponse", "plugins")
    assert available.json()["plugins"] == []
    assert available.json()["namespace_id"] == "ns_wire"
    assert as_plugin.status_code == 404  # "available" is no plugin id


@pytest.mark.parametrize("path", ["/v1/apps/app_x", "/v1/namespaces/ns/plugins/p_1_0_0"])
def test_a_wrong_method_lists_every_documented_one(emulator: EmulatorHandle, path: str) -> None:
    with emulator.api() as c:
        answer = c.put(path, json={})
    assert answer.status_code == 405
    expected = "GET, DELETE, PATCH" if path.startswith("/v1/apps") else "GET, DELETE"
    assert answer.headers["Allow"] == expected


def test_a_namespace_no_service_could_make_is_not_found(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        answer = c.get("/v1/namespaces/has%20space/plugins")
    assert answer.status_code == 404
    assert "Namespace 'has space' not found" in answer.json()["error"]["message"]


def test_an_object_key_with_a_newline_is_reachable() -> None:
    handle = start_emulator(timing=Timing(0.0, 0.0, 0.0))
    try:
        app_id = handle.create_app("newline-site")
        with handle.api() as c:
            slot = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a\nb.zip"})
        put = httpx.put(
            slot.json()["upload_url"],
            content=make_zip({"index.html": "x"}),
            headers={"Content-Type": "application/zip"},
        )
    finally:
        handle.running.stop()
    assert put.status_code == 200


# ---------------------------------------------------------- what a hostile review found


def test_a_path_ending_in_a_newline_is_served_as_its_route_not_a_500(
    emulator: EmulatorHandle,
) -> None:
    with emulator.api() as c:
        created = c.post("/v1/apps%0A", json={"slug": "newline-path", "meta": {"title": "t"}})
        upload = c.post(f"{NS}/uploads%0A", json={"name": "nl_plugin", "version": "1.0.0"})
    assert created.status_code == 200  # as Starlette, and so the service, routes it
    assert upload.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v1/apps", {"slug": "my-site\n", "meta": {"title": "t"}}, "body.slug"),
        (f"{NS}/uploads", {"name": "abc\n", "version": "1.0.0"}, ["body", "name"]),
        (f"{NS}/uploads", {"name": "abc", "version": "1.0.0\n"}, ["body", "version"]),
        (f"{NS}/uploads", {"name": "abc", "version": "\u0661.0.0"}, ["body", "version"]),
    ],
)
def test_patterns_mean_what_their_ecma_writers_meant(
    emulator: EmulatorHandle, path: str, body: dict[str, Any], where: Any
) -> None:
    """``$`` is the end of the text (not before a final newline), ``\\d`` an ASCII digit."""
    with emulator.api() as c:
        answer = c.post(path, json=body)
    assert answer.status_code == 422
    got = answer.json()
    found = (
        got["detail"][0]["loc"]
        if "detail" in got
        else got["error"]["details"]["validation_errors"][0]["location"]
    )
    assert found == where
    with emulator.api() as c:
        assert c.get("/v1/namespaces/ns%0A/plugins").status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"slug": "big-number", "meta": {"title": "t"}, "is_active": ' + b"9" * 5000 + b"}",
        b'{"slug": "lone-title", "meta": {"title": "\\ud800"}}',
    ],
    ids=["deep", "long-number", "lone-surrogate"],
)
def test_hostile_json_is_a_422_and_stores_nothing(emulator: EmulatorHandle, raw: bytes) -> None:
    with emulator.api() as c:
        answer = c.post("/v1/apps", content=raw, headers={"Content-Type": "application/json"})
        listed = c.get("/v1/apps")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["validation_errors"][0]["type"] == "json_invalid"
    assert listed.status_code == 200
    assert listed.json()["results"] == []


def test_a_body_sent_as_another_media_type_is_not_read_as_json(
    emulator: EmulatorHandle,
) -> None:
    body = '{"name": "typed", "version": "1.0.0"}'
    with emulator.api() as c:
        plain = c.post(f"{NS}/uploads", content=body, headers={"Content-Type": "text/plain"})
        untyped = c.post(f"{NS}/uploads", content=body)  # no type at all: read as JSON
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["loc"] == ["body"]
    assert untyped.status_code == 200


def test_a_422_names_a_key_with_a_dot_as_one_key(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        answer = c.post(f"{NS}/uploads", json={"name": "dotty", "version": "1.0.0", "a.b": 1})
    assert answer.json()["detail"][0]["loc"] == ["body", "a.b"]


def test_deleting_an_app_leaves_what_other_apps_and_plugins_keep(
    emulator: EmulatorHandle,
) -> None:
    """A deploy may name any key, another app's bundle included; deleting its app removes
    only the app's own."""
    mine = emulator.create_app("keeper-site")
    key = emulator.upload_bundle(mine, {"index.html": "<h1>kept</h1>"})
    with emulator.api() as c:
        c.post(f"/v1/apps/{mine}/deploy", json={"bundle_s3_key": key}).raise_for_status()
        assert wait_until(lambda: emulator.served_version(mine, "production") == 1)
        other = emulator.create_app("borrower-site")
        c.post(f"/v1/apps/{other}/deploy", json={"bundle_s3_key": key}).raise_for_status()
        assert wait_until(lambda: emulator.served_version(other, "production") == 1)
        c.delete(f"/v1/apps/{other}").raise_for_status()
        verified = c.post(f"/v1/apps/{mine}/deploy/verify-upload", json={"bundle_s3_key": key})
    assert verified.json()["exists"] is True
    site = httpx.get(f"{emulator.url}/_sites/{mine}/production/")
    assert site.text == "<h1>kept</h1>"


def put(url: str, files: dict[str, str]) -> None:
    answer = httpx.put(url, content=make_zip(files), headers={"Content-Type": "application/zip"})
    answer.raise_for_status()


def test_a_put_after_deploy_or_confirm_changes_nothing_served(emulator: EmulatorHandle) -> None:
    """A presigned URL stays valid for its hour; the build and the validated plugin keep their
    own copies, so a second PUT changes neither the live site nor the deployed code."""
    app_id = emulator.create_app("frozen-site")
    with emulator.api() as c:
        slot = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"}).json()
        put(slot["upload_url"], {"index.html": "<h1>built</h1>"})
        c.post(f"/v1/apps/{app_id}/deploy", json={"bundle_s3_key": slot["bundle_s3_key"]})
        assert wait_until(lambda: emulator.served_version(app_id, "production") == 1)
        put(slot["upload_url"], {"index.html": "<h1>never deployed</h1>"})

        plugin = c.post(f"{NS}/uploads", json={"name": "frozen", "version": "1.0.0"}).json()
        put(plugin["presigned_url"], REALTIME)
        c.post(f"{NS}/uploads/{plugin['upload_id']}/confirm").raise_for_status()
        put(plugin["presigned_url"], {**REALTIME, "pipeline.py": "import subprocess\n"})
        detail = c.get(f"{NS}/frozen_1_0_0", params={"return_presigned_urls": "true"}).json()
    assert httpx.get(f"{emulator.url}/_sites/{app_id}/production/").text == "<h1>built</h1>"
    served = httpx.get(detail["presigned_download_url"]).content
    assert hashlib.sha256(served).hexdigest() == detail["plugin"]["code_hash"]
    assert served == make_zip(REALTIME)


def test_a_confirm_after_the_same_plugin_was_registered_is_a_documented_400(
    emulator: EmulatorHandle,
) -> None:
    with emulator.api() as c:
        slot = c.post(f"{NS}/uploads", json={"name": "racer", "version": "1.0.0"}).json()
        httpx.put(
            slot["presigned_url"],
            content=make_zip(REALTIME),
            headers={"Content-Type": "application/zip"},
        ).raise_for_status()
        first = c.post(
            NS,
            files={"file": ("p.zip", make_zip(REALTIME), "application/zip")},
            data={"name": "racer", "version": "1.0.0"},
        )
        late = c.post(f"{NS}/uploads/{slot['upload_id']}/confirm")
    assert first.status_code == 200
    assert late.status_code == 400  # spec 0.81 lists no 409 for confirm
    assert "already exists" in late.json()["error"]["message"]


def test_the_form_upload_checks_the_key_first_and_its_fields_like_a_body(
    emulator: EmulatorHandle,
) -> None:
    malformed = httpx.post(
        f"{emulator.url}{NS}",
        content=b"--x\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    with emulator.api() as c:
        extra = c.post(
            NS,
            files={"file": ("p.zip", make_zip(REALTIME), "application/zip")},
            data={"name": "extra", "version": "1.0.0", "deploy": "true"},
        )
    assert malformed.status_code == 401
    assert extra.status_code == 422
    assert extra.json()["detail"] == [
        {
            "loc": ["body", "deploy"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("..", "application/zip"), ("site.zip", "application/zip; charset=binary")],
)
def test_every_presigned_url_can_be_used_as_given(
    emulator: EmulatorHandle, filename: str, content_type: str
) -> None:
    app_id = emulator.create_app("usable-site")
    with emulator.api() as c:
        slot = c.post(
            f"/v1/apps/{app_id}/deploy/upload-url",
            json={"filename": filename, "content_type": content_type},
        ).json()
    put = httpx.put(
        slot["upload_url"],
        content=make_zip({"index.html": "x"}),
        headers={"Content-Type": content_type},
    )
    assert put.status_code == 200, put.text
    with emulator.api() as c:
        verified = c.post(
            f"/v1/apps/{app_id}/deploy/verify-upload", json={"bundle_s3_key": slot["bundle_s3_key"]}
        )
    assert verified.json()["exists"] is True


def test_a_storage_refusal_is_well_formed_xml(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("xml-site")
    with emulator.api() as c:
        slot = c.post(
            f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "R&D <v2>.zip"}
        ).json()
    refused = httpx.put(slot["upload_url"], content=b"x", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 403
    root = ElementTree.fromstring(refused.content)
    assert root.findtext("Key") == slot["bundle_s3_key"]
    assert root.findtext("Code") == "SignatureDoesNotMatch"


def test_a_log_stream_ends_when_its_app_is_deleted() -> None:
    handle = start_emulator(timing=Timing(0.05, 2.0, 0.1))
    try:
        app_id = handle.create_app("streamed-away")
        key = handle.upload_bundle(app_id, {"index.html": "x"})
        with handle.api() as c:
            deploy_id = c.post(f"/v1/apps/{app_id}/deploy", json={"bundle_s3_key": key}).json()[
                "deploy_id"
            ]
            with c.stream("GET", f"/v1/apps/{app_id}/deploys/{deploy_id}/logs/stream") as stream:
                lines = stream.iter_lines()
                assert next(line for line in lines if line).startswith("data: ")
                c.delete(f"/v1/apps/{app_id}").raise_for_status()
                rest = [line for line in lines if line]
    finally:
        handle.running.stop()
    assert "event: done" not in rest
    assert not any("Deploy complete!" in line for line in rest)
