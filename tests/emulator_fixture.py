"""The emulator on a free loopback port, with helpers for its control plane."""

from __future__ import annotations

import fnmatch
import io
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mixpeek_emulator.app import create_app
from mixpeek_emulator.server import RunningEmulator, start_in_thread
from mixpeek_emulator.state import State, StatusCase, Timing

TEST_KEY = "sk_test_EMULATOR_KEY_5c1f0a9e77"


@dataclass
class EmulatorHandle:
    running: RunningEmulator
    api_key: str

    @property
    def url(self) -> str:
        return self.running.url

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_emulator{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def fault(self, **rule: Any) -> None:
        self._control("POST", "/faults", rule)

    def next(self, **outcomes: Any) -> None:
        self._control("POST", "/next", outcomes)

    def timing(self, **values: float) -> None:
        self._control("POST", "/timing", values)

    def hold_dns(self, domain: str = "*", misses: int | None = None) -> None:
        """The TXT record of ``domain`` (a glob) missing from its first ``misses`` DNS checks,
        or from every one (None)."""
        self._control("POST", "/dns", {"domain": domain, "misses": misses})

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "/requests")
        return result

    def count(self, method: str, pattern: str) -> int:
        return sum(
            1
            for r in self.requests()
            if r["method"] == method and fnmatch.fnmatchcase(r["path"], pattern)
        )

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def records(self) -> State:
        """The emulator's own state (not its API's answers): what the service really holds."""
        store = self.running.emulator.store
        store.settle()
        return store.state

    def forget_records(self) -> None:
        """Start over with no apps, deploys or plugins, as a new service would (objects stay)."""
        store = self.running.emulator.store
        with store.lock:
            store.state = State()

    def served_version(self, app_id: str, environment: str) -> int | None:
        """The version an environment serves, from the emulator's own records (the API's
        environment entries carry only ``deploy_id`` and ``asset_prefix``)."""
        store = self.running.emulator.store
        store.settle()
        with store.lock:
            entry = store.state.apps[app_id].environments.get(environment)
            return None if entry is None else int(entry["version"])

    def upload_bundle(self, app_id: str, files: Mapping[str, bytes | str]) -> str:
        """Upload a bundle through the API's presigned URL; returns its ``bundle_s3_key``."""
        with self.api() as c:
            slot = c.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"})
            slot.raise_for_status()
            put = httpx.put(
                slot.json()["upload_url"],
                content=make_zip(files),
                headers={"Content-Type": "application/zip"},
            )
            put.raise_for_status()
            return str(slot.json()["bundle_s3_key"])

    def seed_plugin(
        self, namespace: str, name: str, version: str, files: Mapping[str, bytes | str]
    ) -> httpx.Response:
        """Upload and confirm a plugin as another client would; returns the confirm answer."""
        with self.api() as c:
            slot = c.post(
                f"/v1/namespaces/{namespace}/plugins/uploads",
                json={"name": name, "version": version},
            )
            if slot.status_code != 200:
                return slot
            body = slot.json()
            httpx.put(
                body["presigned_url"],
                content=make_zip(files),
                headers={"Content-Type": "application/zip"},
            ).raise_for_status()
            return c.post(f"/v1/namespaces/{namespace}/plugins/uploads/{body['upload_id']}/confirm")

    def create_app(self, slug: str) -> str:
        with self.api() as c:
            response = c.post("/v1/apps", json={"slug": slug, "meta": {"title": slug}})
            response.raise_for_status()
            app_id: str = response.json()["app_id"]
            return app_id


def start_emulator(
    *,
    timing: Timing | None = None,
    data_dir: Path | None = None,
    api_key: str = TEST_KEY,
    plugin_status_case: StatusCase = "lower",
) -> EmulatorHandle:
    emulator = create_app(
        api_key=api_key,
        data_dir=data_dir,
        timing=timing or Timing(0.05, 0.4, 0.4),
        plugin_status_case=plugin_status_case,
    )
    return EmulatorHandle(start_in_thread(emulator), api_key)


def make_zip(files: Mapping[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes: a wait on a condition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
