"""The whole App workflow, driven by Mixpeek's official SDK (``mixpeek`` 1.3.783) against a
server, every answer parsed by the SDK's own response models: the app, its deploys and
versions, a configuration published in one update, and a custom domain from added to active.

Run by tests/conformance with only that SDK on the path: ``python drive_apps.py URL KEY``.
Prints one JSON object per call and exits 1 if any call failed.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from typing import Any

import urllib3
from mixpeek import ApiClient, AppsApi, Configuration
from mixpeek.models import (
    AddDomainRequest,
    BuildConfig,
    CreateAppRequest,
    DeployRequest,
    PageMeta,
    RestoreVersionRequest,
    UpdateAppRequest,
    UploadUrlRequest,
    VerifyUploadRequest,
    VersionRecord,
)
from sdk_report import FAILED, call, expect


def bundle(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in (("dist/index.html", f"<h1>{version}</h1>"), ("dist/app.js", "1")):
            archive.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def deploy(api: AppsApi, http: urllib3.PoolManager, app_id: str, version: str) -> str:
    slot = call(
        "upload-url",
        lambda: api.get_upload_url_apps_id_deploy(app_id, UploadUrlRequest(filename="site.zip")),
    )
    put = http.request(
        "PUT", slot.upload_url, body=bundle(version), headers={"Content-Type": "application/zip"}
    )
    call("PUT", lambda: expect(put.status == 200, f"the PUT answered {put.status}"))
    call(
        "verify-upload",
        lambda: api.verify_upload_apps_id_deploy(
            app_id, VerifyUploadRequest(bundle_s3_key=slot.bundle_s3_key)
        ),
    )
    request = DeployRequest(
        message=f"deploy {version}", environment="staging", bundle_s3_key=slot.bundle_s3_key
    )
    queued = call("deploy", lambda: api.deploy_app(app_id, request))
    deploy_id: str = queued.deploy_id

    def logs() -> str:
        raw = api.stream_deploy_logs_apps_without_preload_content(app_id, deploy_id)
        text: str = raw.data.decode()
        if "event: done" not in text:
            raise RuntimeError("the log stream did not end with event: done")
        return text

    call("log stream", logs)

    def status() -> Any:
        for _ in range(600):
            current = api.get_deploy_status_apps(app_id, deploy_id)
            if current.status in ("complete", "failed"):
                return current
            time.sleep(0.02)
        raise RuntimeError("the deploy never finished")

    done = call("status", status)
    if done is not None and done.status != "complete":
        raise SystemExit(f"deploy {deploy_id} ended {done.status}: {done.error}")
    return deploy_id


def main(url: str, key: str) -> int:
    api = AppsApi(ApiClient(Configuration(host=url, access_token=key)))
    http = urllib3.PoolManager()
    app = call(
        "create",
        lambda: api.create_app(CreateAppRequest(slug="sdk-site", meta=PageMeta(title="SDK site"))),
    )
    app_id = app.app_id
    call("get", lambda: api.get_app(app_id))
    call("list", lambda: api.list_apps(slug="sdk-site"))
    first = deploy(api, http, app_id, "v1")
    deploy(api, http, app_id, "v2")
    listed = call("versions", lambda: api.list_versions_apps(app_id))
    call("versions items", lambda: [VersionRecord.from_dict(v) for v in listed.versions])
    call("version", lambda: api.get_version_apps(app_id, 1))
    download = call("download", lambda: api.download_version_apps(app_id, 1))
    fetched = http.request("GET", download.download_url)
    call("download GET", lambda: expect(fetched.data == bundle("v1"), "other bytes came back"))
    call("diff", lambda: api.diff_versions_apps_id_from_to(app_id, 1, 2))
    restored = call(
        "restore",
        lambda: api.restore_version_apps(app_id, 1, RestoreVersionRequest(environment="staging")),
    )
    call("promote", lambda: api.promote_app(app_id))

    def environments() -> dict[str, Any]:
        envs: dict[str, Any] = api.get_app(app_id).environments
        expected = {"deploy_id": first, "asset_prefix": restored.asset_prefix}
        if envs.get("staging") != expected or envs.get("production") != expected:
            raise RuntimeError(f"environments are {envs}, not both {expected}")
        return envs

    call("environments", environments)
    configure(api, app_id, restored.asset_prefix)
    domain_lifecycle(api, app_id)
    call("delete", lambda: api.delete_app(app_id))
    return 1 if FAILED else 0


def configure(api: AppsApi, app_id: str, asset_prefix: str) -> None:
    """A draft, then an update published in the same call; the slug checked without a write."""
    draft = call(
        "update draft", lambda: api.update_app(app_id, UpdateAppRequest(meta=PageMeta(title="D")))
    )
    call("draft kept", lambda: expect(draft.has_unpublished_changes is True, "no draft"))
    build = BuildConfig(env_vars={"VITE_MODE": "sdk"}, secrets={"SERP_KEY": "sk-sdk-secret"})
    update = UpdateAppRequest(meta=PageMeta(title="SDK site 2"), build_config=build, publish=True)
    live = call("update publish", lambda: api.update_app(app_id, update))

    call(
        "published",
        lambda: expect(
            live.has_unpublished_changes is False
            and live.meta.title == "SDK site 2"
            and live.build_config.secrets == {"SERP_KEY": "***"}
            and live.build_config.asset_prefix == asset_prefix,
            "not published as sent, a secret shown, or promote's asset_prefix dropped: "
            f"{live.has_unpublished_changes}, {live.meta.title}, {live.build_config}",
        ),
    )
    checked = call(
        "slug check",
        lambda: api.update_app(app_id, UpdateAppRequest(slug="sdk-site-renamed"), dry_run=True),
    )
    call("slug kept", lambda: expect(checked.slug == "sdk-site", f"dry_run wrote {checked.slug}"))


def domain_lifecycle(api: AppsApi, app_id: str) -> None:
    """Add a domain, list it, ask for verification, wait until the service's worker has made it
    active, see it on the app, remove it."""
    name = "www.sdk-site.example"
    added = call(
        "add domain",
        lambda: api.add_domain_apps(app_id, AddDomainRequest(domain=name, is_primary=True)),
    )
    call(
        "domain record",
        lambda: expect(
            bool(added.verification_token) and added.cname_target == "sdk-site.mxp.co",
            f"no token or another CNAME target: {added}",
        ),
    )
    call("list domains", lambda: api.list_domains_apps(app_id))
    asked = call("verify domain", lambda: api.verify_domain_apps(app_id, name))
    call("verifying", lambda: expect(asked.status == "verifying", f"status {asked.status}"))

    def active() -> Any:
        for _ in range(1500):
            shown = api.get_app(app_id).custom_domains
            if shown and shown[0].status == "active":
                return shown[0]
            time.sleep(0.02)
        raise RuntimeError("the domain never became active")

    live = call("domain active", active)
    call("verified at", lambda: expect(live.verified_at is not None, "no verified_at"))
    call("delete domain", lambda: api.delete_domain_apps(app_id, name))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
