"""Mixpeek's official SDKs run the complete App (custom domains included) and Plugin workflows
against the emulator, and every answer parses with the SDK's own response models. The two SDK
versions share the package name ``mixpeek``, so each runs in an interpreter of its own with
only its folder on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scripts.contracts import APPS_SDK, PLUGINS_SDK, sdk_dir
from tests.emulator_fixture import EmulatorHandle

HERE = Path(__file__).resolve().parent
APP_CALLS = [
    "create", "get", "list",
    *["upload-url", "PUT", "verify-upload", "deploy", "log stream", "status"] * 2,
    "versions", "versions items", "version", "download", "download GET", "diff", "restore",
    "promote", "environments",
    "update draft", "draft kept", "update publish", "published", "slug check", "slug kept",
    "add domain", "domain record", "list domains", "verify domain", "verifying", "domain active",
    "verified at", "delete domain", "delete",
]  # fmt: skip
PLUGIN_CALLS = [
    "upload", "confirm", "deploy", "status", "get", "list", "available", "upload form",
    "undeploy", "delete",
]  # fmt: skip


def drive(script: str, version: str, emulator: EmulatorHandle) -> list[dict[str, Any]]:
    folder = sdk_dir(version)
    assert folder.is_dir(), f"mixpeek {version} is not installed in {folder}: run `make setup`"
    done = subprocess.run(
        [sys.executable, str(HERE / script), emulator.url, emulator.api_key],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(HERE)])},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    calls = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return calls


def failures(calls: list[dict[str, Any]]) -> list[str]:
    return [f"{c['call']}: {c.get('error')}" for c in calls if not c["ok"]]


def test_the_official_apps_sdk_runs_the_whole_app_workflow(emulator: EmulatorHandle) -> None:
    calls = drive("drive_apps.py", APPS_SDK, emulator)
    assert failures(calls) == []
    assert [c["call"] for c in calls] == APP_CALLS
    parsed = {c["call"]: c["model"] for c in calls}
    assert parsed["create"] == parsed["get"] == "AppResponse"
    assert parsed["list"] == "ListAppsResponse"
    assert parsed["status"] == "DeployStatusResponse"
    assert parsed["version"] == "VersionDetailResponse"
    assert parsed["update publish"] == parsed["slug check"] == "AppResponse"
    assert parsed["add domain"] == parsed["verify domain"] == "DomainResponse"
    assert parsed["list domains"] == "ListDomainsResponse"
    assert parsed["domain active"] == "CustomDomainConfig"
    assert parsed["delete domain"] == parsed["delete"] == "GenericDeleteResponse"


def test_the_official_plugins_sdk_runs_the_whole_plugin_workflow(
    emulator: EmulatorHandle,
) -> None:
    calls = drive("drive_plugins.py", PLUGINS_SDK, emulator)
    assert failures(calls) == []
    assert [c["call"] for c in calls] == PLUGIN_CALLS
    parsed = {c["call"]: c["model"] for c in calls}
    assert parsed["status"] == "PluginStatusResponse"
    assert parsed["get"] == "ApiNamespacesPluginsModelsPluginDetailResponse"
    assert parsed["available"] == "AvailableOrgPluginsResponse"
    assert parsed["upload form"] == "PluginUploadResponse"


def test_the_apps_contract_is_what_the_official_sdk_defines() -> None:
    """The apps contract the emulator and the contract tests follow is rebuilt from the SDK now
    and compared, byte for byte, with the copy in the project."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.contracts", "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
