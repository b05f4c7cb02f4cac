"""The whole namespace Plugin workflow, driven by Mixpeek's official SDK (``mixpeek`` 0.81.1,
the last release with the namespaced custom-plugins API), every answer parsed by its models.

Run by tests/conformance with only that SDK on the path: ``python drive_plugins.py URL KEY``.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from typing import Any

import urllib3
from mixpeek import ApiClient, Configuration
from mixpeek.api.custom_plugins_namespace_api import CustomPluginsNamespaceApi
from mixpeek.models import (
    ApiNamespacesPluginsModelsCreatePluginUploadRequest,
    ConfirmPluginUploadRequest,
)
from sdk_report import FAILED, call

NS = "ns_sdk"
FILES = {
    "manifest.py": "feature_extractor_name = 'sdk_embed'\nversion = '1.0.0'\n",
    "pipeline.py": "def build_steps():\n    return []\n",
    "realtime.py": "def run_inference(inputs):\n    return {'embedding': [0.0]}\n",
}


def archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in FILES.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def main(url: str, key: str) -> int:
    api = CustomPluginsNamespaceApi(ApiClient(Configuration(host=url)))
    auth = f"Bearer {key}"
    http = urllib3.PoolManager()
    request = ApiNamespacesPluginsModelsCreatePluginUploadRequest(name="sdk_embed", version="1.0.0")
    slot = call(
        "upload",
        lambda: api.generate_upload_url_namespaces_id_plugins(NS, request, authorization=auth),
    )
    put = http.request(
        "PUT", slot.presigned_url, body=archive(), headers={"Content-Type": "application/zip"}
    )
    etag = put.headers.get("ETag", "").strip('"')
    confirm = ConfirmPluginUploadRequest(etag=etag, file_size_bytes=len(archive()))
    confirmed = call(
        "confirm",
        lambda: api.confirm_upload_namespaces_id_plugins(
            NS, slot.upload_id, authorization=auth, confirm_plugin_upload_request=confirm
        ),
    )
    if confirmed is None:
        return 1
    plugin_id = confirmed.plugin_id
    call(
        "deploy",
        lambda: api.deploy_plugin_namespaces(
            NS, plugin_id, deployment_type="realtime", authorization=auth
        ),
    )

    def status() -> Any:
        for _ in range(600):
            current = api.get_deployment_status_namespaces_id_plugins(
                NS, plugin_id, authorization=auth
            )
            if current.status.upper() in ("DEPLOYED", "FAILED"):
                return current
            time.sleep(0.02)
        raise RuntimeError("the plugin never finished deploying")

    call("status", status)
    call(
        "get",
        lambda: api.get_plugin_namespaces(
            NS, plugin_id, return_presigned_urls=True, authorization=auth
        ),
    )
    call("list", lambda: api.list_plugins_namespaces(NS, authorization=auth))
    call("available", lambda: api.list_available_org_plugins_namespaces(NS, authorization=auth))
    call(
        "upload form",
        lambda: api.upload_plugin_namespaces(
            NS,
            ("sdk_form.zip", archive()),
            "sdk_form",
            "1.0.0",
            authorization=auth,
            description="the one-request upload",
        ),
    )
    call("undeploy", lambda: api.undeploy_plugin_namespaces(NS, plugin_id, authorization=auth))
    call("delete", lambda: api.delete_plugin_namespaces(NS, plugin_id, authorization=auth))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
