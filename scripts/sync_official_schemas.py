"""Copy the request and response schemas of Mixpeek's official SDKs into the project.

The emulator accepts exactly the request fields the official models define (``mixpeek`` 1.3.783
for apps, 0.81.1 for plugins) and refuses any other key with 422, as the API does; the tests
hold its answers to the official response models, with no field they do not define. The two
SDKs share the package name ``mixpeek``, so each is read by an interpreter of its own, with only
its folder (``make setup`` installs them under ``.venv/sdks/``) on the path.

    python -m scripts.sync_official_schemas          # rewrite both copies
    python -m scripts.sync_official_schemas --check  # fail if a copy differs from the SDKs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "emulator" / "mixpeek_emulator" / "official_requests.json"
RESPONSES = ROOT / "tests" / "data" / "official-responses.json"
APPS_SDK = "1.3.783"
PLUGINS_SDK = "0.81.1"
# Our name for each schema -> the SDK's model class.
MODELS: dict[str, dict[str, str]] = {
    APPS_SDK: {
        "CreateAppRequest": "CreateAppRequest",
        "UploadUrlRequest": "UploadUrlRequest",
        "VerifyUploadRequest": "VerifyUploadRequest",
        "DeployRequest": "DeployRequest",
        "RestoreVersionRequest": "RestoreVersionRequest",
    },
    PLUGINS_SDK: {
        "CreatePluginUploadRequest": "ApiNamespacesPluginsModelsCreatePluginUploadRequest",
        "ConfirmPluginUploadRequest": "ConfirmPluginUploadRequest",
    },
}
RESPONSE_MODELS: dict[str, dict[str, str]] = {
    APPS_SDK: {
        name: name
        for name in (
            "AppResponse",
            "ListAppsResponse",
            "UploadUrlResponse",
            "VerifyUploadResponse",
            "DeployResponse",
            "DeployStatusResponse",
            "VersionListResponse",
            "VersionRecord",
            "VersionDetailResponse",
            "DownloadUrlResponse",
            "VersionDiffResponse",
            "RestoreVersionResponse",
            "PromoteResponse",
            "ErrorResponse",
        )
    },
    PLUGINS_SDK: {
        "PluginPresignedURLResponse": "ApiNamespacesPluginsModelsPluginPresignedURLResponse",
        "ConfirmPluginUploadResponse": "ConfirmPluginUploadResponse",
        "PluginStatusResponse": "PluginStatusResponse",
        "PluginDetailResponse": "ApiNamespacesPluginsModelsPluginDetailResponse",
        "PluginListResponse": "ApiNamespacesPluginsModelsPluginListResponse",
        "PluginDeleteResponse": "ApiNamespacesPluginsModelsPluginDeleteResponse",
    },
}
_DUMP = """
import json, sys
import mixpeek.models as m
names = json.loads(sys.argv[1])
print(json.dumps({ours: getattr(m, theirs).model_json_schema() for ours, theirs in names.items()}))
"""


def sdk_dir(version: str) -> Path:
    """Where ``make setup`` installs an official SDK: beside the virtualenv's packages."""
    return Path(sys.prefix) / "sdks" / f"mixpeek-{version}"


def read_sdk(version: str, models: dict[str, str]) -> dict[str, Any]:
    folder = sdk_dir(version)
    if not folder.is_dir():
        raise SystemExit(
            f"The official SDK mixpeek {version} is not in {folder}: run `make setup`."
        )
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, json.dumps(models)],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=True,
    )
    schemas: dict[str, Any] = json.loads(done.stdout)
    return schemas


def closed(schema: Any) -> Any:
    """Every object with declared properties refuses other keys (the API's ``extra_forbidden``);
    maps (``additionalProperties`` with a schema) stay open."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def build() -> dict[Path, str]:
    """Both copies' JSON text: each SDK is read once, every model's objects closed."""
    read = {
        version: read_sdk(version, {**MODELS[version], **RESPONSE_MODELS[version]})
        for version in (APPS_SDK, PLUGINS_SDK)
    }
    texts = {}
    for target, models in ((REQUESTS, MODELS), (RESPONSES, RESPONSE_MODELS)):
        out: dict[str, Any] = {
            "_source": {
                "apps": f"mixpeek=={APPS_SDK} (PyPI), mixpeek.models",
                "plugins": f"mixpeek=={PLUGINS_SDK} (PyPI), mixpeek.models",
                "how": "python -m scripts.sync_official_schemas",
            }
        }
        for version, names in models.items():
            out.update({name: closed(read[version][name]) for name in names})
        texts[target] = json.dumps(out, indent=1, sort_keys=True) + "\n"
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for target, text in build().items():
        if not args.check:
            target.write_text(text)
        elif not target.exists() or target.read_text() != text:
            stale.append(str(target.relative_to(ROOT)))
    if stale:
        print(f"{', '.join(stale)} differ from the official SDKs: run this without --check.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
