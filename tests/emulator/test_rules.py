"""The emulator's rules: auth, validation, plugin checks, storage signatures, faults, the log."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from tests.emulator_fixture import EmulatorHandle, make_zip, wait_until
from tests.schema import assert_matches

NS = "/v1/namespaces/ns_rules/plugins"


def test_every_v1_route_requires_the_bearer_key(emulator: EmulatorHandle) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": emulator.api_key}):
        response = httpx.get(f"{emulator.url}/v1/apps", headers=headers)
        assert response.status_code == 401
        assert_matches(response.json(), "ErrorResponse")
        assert response.json()["error"]["type"] == "UnauthorizedError"
    assert httpx.get(f"{emulator.url}/_emulator/health").status_code == 200


def test_unknown_body_keys_are_refused_with_422(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("strict-site")
    with emulator.api() as c:
        response = c.post(f"/v1/apps/{app_id}/deploy", json={"message": "m", "colour": "red"})
    assert response.status_code == 422
    body = response.json()
    assert_matches(body, "ErrorResponse")
    [problem] = body["error"]["details"]["validation_errors"]
    assert problem == {
        "type": "extra_forbidden",
        "location": "body.colour",
        "message": "Extra inputs are not permitted",
    }


def test_404_names_the_missing_id(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        response = c.get("/v1/apps/app_nope/deploys/dep_nope")
    assert response.status_code == 404
    assert "app_nope" in response.json()["error"]["message"]


def test_slug_rules(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        for bad in ("ab", "-abc", "Abc", "abc-"):
            assert c.post("/v1/apps", json={"slug": bad, "meta": {"title": "t"}}).status_code == 422
        assert (
            c.post("/v1/apps", json={"slug": "good-1", "meta": {"title": "t"}}).status_code == 200
        )
        taken = c.post("/v1/apps", json={"slug": "good-1", "meta": {"title": "t"}})
        # The SDK documents no 409 for create_app: a taken slug is one of its 400s.
        assert taken.status_code == 400
        assert_matches(taken.json(), "ErrorResponse")
        assert taken.json()["error"]["code"] == "slug_taken"


def test_plugin_name_and_version_rules(emulator: EmulatorHandle) -> None:
    with emulator.api() as c:
        for name, version in (
            ("1abc", "1.0.0"),
            ("ab", "1.0.0"),
            ("has-hyphen", "1.0.0"),
            ("okname", "1.0"),
        ):
            response = c.post(f"{NS}/uploads", json={"name": name, "version": version})
            assert response.status_code == 422, (name, version)


def test_plugin_validation_reports_file_and_line(emulator: EmulatorHandle) -> None:
    files = {
        "manifest.py": "name = 'x'\n",
        "pipeline.py": "import os\nimport subprocess\n\ndef run():\n    os.system('ls')\n    return eval('1')\n",
    }
    response = emulator.seed_plugin("ns_rules", "scanned", "1.0.0", files)
    missing = emulator.seed_plugin("ns_rules", "partial", "1.0.0", {"manifest.py": "x = 1\n"})
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["validation_errors"]
    assert errors == [
        "pipeline.py:2:0: blocked import 'subprocess'",
        "pipeline.py:5:4: blocked call 'os.system()'",
        "pipeline.py:6:11: blocked call 'eval()'",
    ]
    assert missing.status_code == 400
    assert "pipeline.py is required" in missing.json()["error"]["message"]


def test_batch_only_and_failed_plugin_deployments(emulator: EmulatorHandle) -> None:
    files = {"manifest.py": "x = 1\n", "pipeline.py": "y = 2\n", "realtime.py": "z = 3\n"}
    with emulator.api() as c:
        assert emulator.seed_plugin("ns_rules", "batchy", "1.0.0", files).status_code == 200
        batch = c.post(f"{NS}/batchy_1_0_0/deploy", params={"deployment_type": "batch_only"}).json()
        assert batch == {
            "status": "deployed",
            "deployment_type": "batch_only",
            "message": batch["message"],
        }
        status = c.get(f"{NS}/batchy_1_0_0/status").json()
        assert (status["status"], status["deployed"], status["route_prefix"]) == (
            "not_deployed",
            True,
            None,
        )

        assert emulator.seed_plugin("ns_rules", "doomed", "2.0.0", files).status_code == 200
        emulator.next(plugin_fail_reason="GPU quota exhausted")
        c.post(f"{NS}/doomed_2_0_0/deploy")
        assert wait_until(lambda: c.get(f"{NS}/doomed_2_0_0/status").json()["status"] == "failed")
        status = c.get(f"{NS}/doomed_2_0_0/status").json()
        assert status["error"] == "GPU quota exhausted"


@pytest.fixture
def upload(emulator: EmulatorHandle) -> Iterator[dict[str, str]]:
    app_id = emulator.create_app("store-site")
    with emulator.api() as c:
        yield c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"}).json()


def test_storage_checks_type_digest_and_signature(
    emulator: EmulatorHandle, upload: dict[str, str]
) -> None:
    url = upload["upload_url"]
    data = make_zip({"index.html": "x"})
    wrong_type = httpx.put(url, content=data, headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in wrong_type.content
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    digest = httpx.put(
        url, content=data, headers={"Content-Type": "application/zip", "Content-MD5": bad_md5}
    )
    assert digest.status_code == 400
    assert b"<Code>BadDigest</Code>" in digest.content
    good_md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    ok = httpx.put(
        url, content=data, headers={"Content-Type": "application/zip", "Content-MD5": good_md5}
    )
    assert ok.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert (
        httpx.put(tampered, content=data, headers={"Content-Type": "application/zip"}).status_code
        == 403
    )


def test_expired_url_gets_the_s3_error(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("late-site")
    emulator.next(expire_upload_urls=1)
    with emulator.api() as c:
        url = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"}).json()[
            "upload_url"
        ]
    response = httpx.put(url, content=b"x", headers={"Content-Type": "application/zip"})
    assert response.status_code == 403
    assert b"<Message>Request has expired</Message>" in response.content


def test_uploads_stream_to_disk(emulator: EmulatorHandle, upload: dict[str, str]) -> None:
    size = 128 * 1024 * 1024
    chunk = b"\0" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        response = httpx.put(
            upload["upload_url"],
            content=body(),
            headers={"Content-Type": "application/zip", "Content-Length": str(size)},
            timeout=60,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    assert peak < 32 * 1024 * 1024  # the emulator and client together never held the object
    with emulator.api() as c:
        app_id = upload["bundle_s3_key"].split("/")[1]
        verified = c.post(
            f"/v1/apps/{app_id}/deploy/verify-upload",
            json={"bundle_s3_key": upload["bundle_s3_key"]},
        ).json()
    assert verified["size_bytes"] == size


def test_faults_answer_delay_drop_and_are_logged_without_keys(emulator: EmulatorHandle) -> None:
    emulator.fault(method="GET", path="/v1/apps", status=503, retry_after="2", times=1)
    emulator.fault(method="GET", path="/v1/apps", action="drop", times=1)
    emulator.fault(
        method="GET",
        path="/v1/apps",
        raw="<html><title>Bad Gateway</title></html>",
        status=502,
        times=1,
    )
    with emulator.api() as c:
        first = c.get("/v1/apps")
        assert first.status_code == 503
        assert first.headers["Retry-After"] == "2"
        assert first.json()["error"]["details"]["retry_after_seconds"] == 2.0
        with pytest.raises(httpx.TransportError):
            c.get("/v1/apps")
        assert c.get("/v1/apps").headers["content-type"].startswith("text/html")
        assert c.get("/v1/apps").status_code == 200
    log = emulator.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", "/v1/apps", 503),
        ("GET", "/v1/apps", 0),
        ("GET", "/v1/apps", 502),
        ("GET", "/v1/apps", 200),
    ]
    assert emulator.api_key not in repr(log)


def test_drop_after_handler_stores_the_deploy(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("lost-site")
    with emulator.api() as c:
        key = emulator.upload_bundle(app_id, {"index.html": "x"})
        emulator.fault(
            method="POST", path=f"/v1/apps/{app_id}/deploy", action="drop", after_handler=True
        )
        with pytest.raises(httpx.TransportError):
            c.post(
                f"/v1/apps/{app_id}/deploy",
                json={
                    "message": "lost",
                    "bundle_s3_key": key,
                    "environment": "staging",
                },
            )
        assert wait_until(lambda: c.get(f"/v1/apps/{app_id}/versions").json()["total"] == 1)
        versions = c.get(f"/v1/apps/{app_id}/versions").json()
    assert [v["message"] for v in versions["versions"]] == ["lost"]


def test_sse_cut_and_reset(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("cut-site")
    with emulator.api() as c:
        key = emulator.upload_bundle(app_id, {"index.html": "x"})
        deploy_id = c.post(
            f"/v1/apps/{app_id}/deploy", json={"message": "m", "bundle_s3_key": key}
        ).json()["deploy_id"]
        emulator.next(sse_cut_after=2)
        with c.stream("GET", f"/v1/apps/{app_id}/deploys/{deploy_id}/logs/stream") as response:
            text = "".join(response.iter_text())
    assert text.count("data:") == 2
    assert "event: done" not in text
    emulator.fault(path="*", status=500, times=5)
    httpx.post(f"{emulator.url}/_emulator/reset").raise_for_status()
    assert emulator.requests() == []
    with emulator.api() as c:
        assert c.get("/v1/apps").status_code == 200
