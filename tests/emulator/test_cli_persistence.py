"""`mixpeek-emulator` as users run it: URL first, clean exit on signals, state kept in --data-dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mixpeek_emulator.state import App, Store, Timing

KEY = "sk_test_cli_key_1234"


@contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixpeek_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            KEY,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        for _ in range(100):
            try:
                httpx.get(f"{url}/_emulator/health", timeout=1)
                break
            except httpx.TransportError:
                import time

                time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_prints_url_first_and_exits_cleanly(sig: signal.Signals) -> None:
    with cli("--app", "seeded-site") as (proc, url):
        response = httpx.get(
            f"{url}/v1/apps/app_seeded_site", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert response.json()["slug"] == "seeded-site"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0


def test_state_survives_a_kill_with_a_data_dir(tmp_path: Path) -> None:
    with cli("--data-dir", str(tmp_path)) as (proc, url):
        created = httpx.post(
            f"{url}/v1/apps",
            json={"slug": "kept-site", "meta": {"title": "t"}},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with cli("--data-dir", str(tmp_path)) as (_, url):
        again = httpx.get(
            f"{url}/v1/apps/{created['app_id']}", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert again.json()["slug"] == "kept-site"


def test_a_kill_mid_write_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, Timing())
    store.state.apps["app_a"] = App("app_a", "a-site", "A", 1.0)
    store.save()
    store.state.apps["app_b"] = App("app_b", "b-site", "B", 2.0)

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save()
    monkeypatch.undo()
    assert set(json.loads((tmp_path / "state.json").read_text())["apps"]) == {"app_a"}
    reloaded = Store(tmp_path, Timing())
    assert set(reloaded.state.apps) == {"app_a"}
    assert not list(tmp_path.glob("state.json.*.tmp"))
