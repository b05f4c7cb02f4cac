"""A client written only from the public API documents runs both workflows against the emulator.

Plain httpx and the documented paths and bodies: nothing from mixpeek_pulumi. Every JSON body
seen is checked against the OpenAPI fragments copied into tests/data.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.emulator_fixture import EmulatorHandle, make_zip
from tests.schema import assert_matches

SITE_V1 = {"dist/index.html": "<h1>v1</h1>", "dist/app.js": "console.log(1)"}
SITE_V2 = {"dist/index.html": "<h1>v2</h1>", "dist/app.js": "console.log(1)", "dist/new.css": "a{}"}


def checked(response: httpx.Response, schema: str) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert_matches(body, schema)
    return body


def deploy_bundle(
    c: httpx.Client, app_id: str, files: dict[str, str], env: str, message: str
) -> str:
    up = checked(
        c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "site.zip"}),
        "UploadUrlResponse",
    )
    put = httpx.put(
        up["upload_url"], content=make_zip(files), headers={"Content-Type": "application/zip"}
    )
    assert put.status_code == 200
    assert put.headers["ETag"].startswith('"')
    verified = checked(
        c.post(
            f"/v1/apps/{app_id}/deploy/verify-upload", json={"bundle_s3_key": up["bundle_s3_key"]}
        ),
        "VerifyUploadResponse",
    )
    assert verified["exists"] is True
    body = {
        "message": message,
        "environment": env,
        "source": "cli_upload",
        "bundle_s3_key": up["bundle_s3_key"],
        "source_files": files,
    }
    deployed = checked(c.post(f"/v1/apps/{app_id}/deploy", json=body), "DeployResponse")
    assert deployed["status"] == "queued"
    return str(deployed["deploy_id"])


def follow_logs(c: httpx.Client, app_id: str, deploy_id: str) -> list[str]:
    lines: list[str] = []
    event = "message"
    with c.stream("GET", f"/v1/apps/{app_id}/deploys/{deploy_id}/logs/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for raw in response.iter_lines():
            if raw.startswith("event:"):
                event = raw.split(":", 1)[1].strip()
            elif raw.startswith("data:"):
                data = json.loads(raw.split(":", 1)[1])
                if event == "done":
                    return lines
                assert isinstance(data["ts"], float)
                lines.append(data["line"])
    raise AssertionError("the stream ended without event: done")


def poll(c: httpx.Client, app_id: str, deploy_id: str) -> dict[str, Any]:
    for _ in range(200):
        status = checked(c.get(f"/v1/apps/{app_id}/deploys/{deploy_id}"), "DeployStatusResponse")
        if status["status"] in ("complete", "failed"):
            return dict(status)
        time.sleep(0.05)
    raise AssertionError("deploy never finished")


def test_whole_app_workflow(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        app = checked(
            c.post("/v1/apps", json={"slug": "docs-site", "meta": {"title": "Docs"}}), "AppResponse"
        )
        app_id = app["app_id"]
        assert app["url"] == "https://docs-site.mxp.co"

        first = deploy_bundle(c, app_id, SITE_V1, "staging", "first")
        lines = follow_logs(c, app_id, first)
        assert lines[-1] == "Deploy complete!"
        done = poll(c, app_id, first)
        assert done["status"] == "complete"
        assert done["smoke_test"]["passed"] is True
        assert done["smoke_test"]["url"] == "https://staging-docs-site.mxp.co"
        # A reconnect replays the cached lines, then ends.
        assert follow_logs(c, app_id, first) == lines

        second = deploy_bundle(c, app_id, SITE_V2, "staging", "second")
        assert poll(c, app_id, second)["status"] == "complete"

        versions = checked(c.get(f"/v1/apps/{app_id}/versions"), "VersionListResponse")
        assert [v["version"] for v in versions["versions"]] == [2, 1]
        detail = checked(c.get(f"/v1/apps/{app_id}/versions/1"), "VersionDetailResponse")
        assert detail["source_files"] == SITE_V1
        download = checked(c.get(f"/v1/apps/{app_id}/versions/1/download"), "DownloadUrlResponse")
        assert httpx.get(download["download_url"]).content == make_zip(SITE_V1)

        diff = checked(c.get(f"/v1/apps/{app_id}/versions/1/diff/2"), "VersionDiffResponse")
        by_path = {f["path"]: f["status"] for f in diff["files"]}
        assert by_path == {"index.html": "modified", "app.js": "unchanged", "new.css": "added"}
        assert diff["summary"] == {"added": 1, "removed": 0, "modified": 1, "unchanged": 1}
        assert "-<h1>v1</h1>" in diff["source_diff"]["dist/index.html"]

        restored = checked(
            c.post(f"/v1/apps/{app_id}/versions/1/restore", json={"environment": "staging"}),
            "RestoreVersionResponse",
        )
        assert restored["deploy_id"] == first
        app = checked(c.get(f"/v1/apps/{app_id}"), "AppResponse")
        assert app["environments"]["staging"]["deploy_id"] == first

        promoted = checked(c.post(f"/v1/apps/{app_id}/promote"), "PromoteResponse")
        assert promoted["deploy_id"] == first
        app = checked(c.get(f"/v1/apps/{app_id}"), "AppResponse")
        assert app["environments"]["production"]["deploy_id"] == first
        # Entries carry only the documented deploy_id and asset_prefix.
        assert set(app["environments"]["production"]) == {"deploy_id", "asset_prefix"}
        assert app["environments"]["production"]["asset_prefix"] == restored["asset_prefix"]
        # Only the version detail says where a version is active (VersionRecord does not).
        assert "is_active" not in app["versions"][0]
        for number, active in ((2, False), (1, True)):
            detail = checked(c.get(f"/v1/apps/{app_id}/versions/{number}"), "VersionDetailResponse")
            assert detail["is_active"] == {"staging": active, "production": active}
        listed = checked(c.get("/v1/apps", params={"slug": "docs-site"}), "ListAppsResponse")
        assert [a["app_id"] for a in listed["results"]] == [app_id]


def test_bad_bundles_fail_the_build_with_a_reason(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("bad-site")
    cases = {
        "no-index": ({"dist/a.html": "x"}, "no index.html"),
        "two-tops": ({"a/index.html": "x", "b/x.js": "y"}, "no index.html"),
    }
    with emulator.api() as c:
        for files, reason in cases.values():
            deploy_id = deploy_bundle(c, app_id, files, "production", "bad")
            lines = follow_logs(c, app_id, deploy_id)
            status = poll(c, app_id, deploy_id)
            assert status["status"] == "failed"
            assert reason in status["error"]
            assert lines[-1].startswith("Deploy failed: ") and reason in lines[-1]
        up = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "x.zip"}).json()
        httpx.put(
            up["upload_url"], content=b"not a zip", headers={"Content-Type": "application/zip"}
        )
        deployed = c.post(
            f"/v1/apps/{app_id}/deploy", json={"message": "m", "bundle_s3_key": up["bundle_s3_key"]}
        ).json()
        assert "not a valid zip" in poll(c, app_id, deployed["deploy_id"])["error"]
        assert checked(c.get(f"/v1/apps/{app_id}/versions"), "VersionListResponse")["total"] == 0


PLUGIN = {
    "manifest.py": "feature_extractor_name = 'embedder'\nversion = '1.0.0'\n",
    "pipeline.py": "import os\n\ndef build_steps():\n    return []\n",
    "realtime.py": "def run_inference(inputs):\n    return {'embedding': [0.0]}\n",
}


def test_whole_plugin_workflow(emulator: EmulatorHandle) -> None:
    ns = "/v1/namespaces/ns_docs/plugins"
    with emulator.api() as c:
        body = {"name": "my_embedder", "version": "1.0.0", "description": "d"}
        up = checked(c.post(f"{ns}/uploads", json=body), "PluginPresignedURLResponse")
        archive = make_zip(PLUGIN)
        put = httpx.put(
            up["presigned_url"], content=archive, headers={"Content-Type": "application/zip"}
        )
        etag = put.headers["ETag"].strip('"')
        confirmed = checked(
            c.post(
                f"{ns}/uploads/{up['upload_id']}/confirm",
                json={"etag": etag, "file_size_bytes": len(archive)},
            ),
            "ConfirmPluginUploadResponse",
        )
        plugin_id = confirmed["plugin_id"]
        assert plugin_id == "my_embedder_1_0_0"
        assert confirmed["validation_status"] == "passed"
        assert confirmed["feature_uri"] == "mixpeek://my_embedder@1.0.0"
        before = checked(c.get(f"{ns}/{plugin_id}/status"), "PluginStatusResponse")
        assert before["status"] == "not_deployed"  # as spec 0.81's examples spell statuses

        queued = c.post(f"{ns}/{plugin_id}/deploy", params={"deployment_type": "realtime"}).json()
        assert queued["status"] == "queued"
        assert queued["route_prefix"] == f"/inference/custom_plugin_{plugin_id}"
        seen = []
        for _ in range(200):
            status = checked(c.get(f"{ns}/{plugin_id}/status"), "PluginStatusResponse")
            seen.append(status["status"])
            if status["status"] == "deployed":
                break
            time.sleep(0.02)
        assert seen[-1] == "deployed"
        assert {"queued", "pending", "in_progress"} <= set(seen)
        assert status["route_prefix"] == f"/inference/custom_plugin_{plugin_id}"
        assert status["realtime_enabled"] is True

        detail = checked(
            c.get(f"{ns}/{plugin_id}", params={"return_presigned_urls": "true"}),
            "PluginDetailResponse",
        )
        assert detail["plugin"]["deployed"] is True
        assert httpx.get(detail["presigned_download_url"]).content == archive
        checked(c.get(ns), "PluginListResponse")

        assert c.post(f"{ns}/{plugin_id}/undeploy").status_code == 200
        assert (
            checked(c.get(f"{ns}/{plugin_id}/status"), "PluginStatusResponse")["status"]
            == "not_deployed"
        )

        again = c.post(f"{ns}/uploads", json=body)
        assert again.status_code == 409
        assert_matches(again.json(), "ErrorResponse", "plugins")

        deleted = checked(c.delete(f"{ns}/{plugin_id}"), "PluginDeleteResponse")
        assert deleted["deployment_removed"] is False
        gone = c.get(f"{ns}/{plugin_id}/status")
        assert gone.status_code == 404
        assert plugin_id in gone.json()["error"]["message"]
