"""The emulator on a free loopback port, with helpers for its control plane."""

from __future__ import annotations

import fnmatch
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mixpeek_emulator.app import create_app
from mixpeek_emulator.server import RunningEmulator, start_in_thread
from mixpeek_emulator.state import Timing

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

    def create_app(self, slug: str) -> str:
        with self.api() as c:
            response = c.post("/v1/apps", json={"slug": slug, "meta": {"title": slug}})
            response.raise_for_status()
            app_id: str = response.json()["app_id"]
            return app_id


def start_emulator(
    *, timing: Timing | None = None, data_dir: Path | None = None, api_key: str = TEST_KEY
) -> EmulatorHandle:
    emulator = create_app(
        api_key=api_key, data_dir=data_dir, timing=timing or Timing(0.05, 0.4, 0.4)
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
