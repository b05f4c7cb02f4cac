"""The emulator as a CI dependency keeps its promise across restarts and faults: an upload cut
by a kill leaves nothing behind, a presigned URL outlives a restart with --data-dir, a full
disk answers in the API's envelope saying so, and a step of the wall clock changes nothing
but the timestamps it reports (builds run on a monotonic clock, resumed across restarts)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mixpeek_emulator.app import create_app
from mixpeek_emulator.server import RunningEmulator, start_in_thread
from mixpeek_emulator.state import Timing
from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.errors import StorageError
from scripts.make_upgrade_fixture import FIXTURE
from tests.clock import SteppedClock
from tests.emulator.test_cli_persistence import KEY, cli, run_cli
from tests.emulator_fixture import make_zip, wait_until
from tests.sites import plugin, site

AUTH = {"Authorization": f"Bearer {KEY}"}
MIB = 1024 * 1024


def objects_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "objects").rglob("*") if p.is_file())


def upload_slot(url: str, app_id: str) -> dict[str, Any]:
    slot = httpx.post(
        f"{url}/v1/apps/{app_id}/deploy/upload-url", json={"filename": "site.zip"}, headers=AUTH
    )
    slot.raise_for_status()
    body: dict[str, Any] = slot.json()
    return body


# ------------------------------------------------------------------ a kill mid-upload


def test_an_upload_cut_by_a_kill_leaves_nothing_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with cli("--data-dir", str(data), "--app", "big-site") as (proc, url):
        slot = upload_slot(url, "app_big_site")
        target = urlsplit(slot["upload_url"])
        with socket.create_connection((target.hostname, target.port)) as upload:
            head = (
                f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
                f"Content-Type: application/zip\r\nContent-Length: {32 * MIB}\r\n\r\n"
            )
            upload.sendall(head.encode() + bytes(4 * MIB))
            # Killed while the body is still arriving, once its first MiBs are on disk.
            assert wait_until(lambda: objects_bytes(data) >= MIB, timeout=30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    assert objects_bytes(data) >= MIB  # what the kill left

    with cli("--data-dir", str(data)) as (_, url):
        found = httpx.post(
            f"{url}/v1/apps/app_big_site/deploy/verify-upload",
            json={"bundle_s3_key": slot["bundle_s3_key"]},
            headers=AUTH,
        )
        left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert found.json()["exists"] is False
    assert left == ["signing-key", "state.json"], left


# ------------------------------------------------------------------- URLs and restarts


def test_a_presigned_url_minted_before_a_restart_works_after_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with cli("--data-dir", str(data), "--app", "kept-site") as (proc, url):
        slot = upload_slot(url, "app_kept_site")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    kept = (data / "signing-key").read_bytes()

    port = str(urlsplit(url).port)
    with cli("--data-dir", str(data), "--port", port) as (proc, again):
        assert again == url
        put = httpx.put(
            slot["upload_url"],
            content=make_zip(site()),
            headers={"Content-Type": "application/zip"},
        )
        deploy = httpx.post(
            f"{url}/v1/apps/app_kept_site/deploy",
            json={"bundle_s3_key": slot["bundle_s3_key"], "environment": "staging"},
            headers=AUTH,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert put.status_code == 200, put.text
    assert deploy.status_code == 200, deploy.text
    # One key for the data dir, not one per start, and only its owner may read it.
    assert (data / "signing-key").read_bytes() == kept
    assert (data / "signing-key").stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk the test can fill without filling the machine's."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs here, and only root may mount one")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"no tmpfs could be mounted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk refuses more; the file that holds them."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(bytes(64 * 1024))
                handle.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def on_small_disk(small_disk: Path) -> Iterator[tuple[RunningEmulator, Path]]:
    data = small_disk / "data"
    running = start_in_thread(create_app(api_key=KEY, data_dir=data, apps=("full-site",)))
    try:
        yield running, data
    finally:
        running.stop()


def test_a_full_disk_answers_in_the_envelope_saying_so(
    on_small_disk: tuple[RunningEmulator, Path],
) -> None:
    running, data = on_small_disk
    url = running.url
    slot = upload_slot(url, "app_full_site")
    filler = fill(data.parent)
    says = f"mixpeek-emulator's disk is full: no space is left on the device that holds its data folder {data};"

    put = httpx.put(
        slot["upload_url"], content=bytes(512 * 1024), headers={"Content-Type": "application/zip"}
    )
    created = httpx.post(
        f"{url}/v1/apps", json={"slug": "new-site", "meta": {"title": "n"}}, headers=AUTH
    )
    with MixpeekClient(api_key=KEY, base_url=url) as api, pytest.raises(StorageError) as shown:
        api.put_object(
            slot["upload_url"],
            io.BytesIO(bytes(512 * 1024)),
            size=512 * 1024,
            content_type="application/zip",
        )
    listed = httpx.get(f"{url}/v1/apps", params={"slug": "new-site"}, headers=AUTH)

    assert put.status_code == 507
    assert "<Code>InsufficientStorage</Code>" in put.text and says in put.text, put.text
    assert created.status_code == 507
    error = created.json()
    assert error["success"] is False and error["status"] == 507, error
    assert error["error"]["type"] == "InsufficientStorageError"
    assert error["error"]["message"].startswith(says), error
    assert listed.json()["total_count"] == 0  # what failed was not kept
    assert says in str(shown.value).splitlines()[0], shown.value  # what the provider prints

    filler.unlink()  # space again: the same requests go through
    again = httpx.put(
        slot["upload_url"], content=make_zip(site()), headers={"Content-Type": "application/zip"}
    )
    assert again.status_code == 200, again.text
    assert (
        httpx.post(
            f"{url}/v1/apps", json={"slug": "new-site", "meta": {"title": "n"}}, headers=AUTH
        ).status_code
        == 200
    )
    assert not list((data / "objects" / ".partial").iterdir())


def test_a_full_disk_at_start_is_one_sentence_and_exit_code_2(small_disk: Path) -> None:
    fill(small_disk)
    data = small_disk / "data"
    done = run_cli("--port", "0", "--data-dir", str(data), "--app", "my-site")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mixpeek-emulator cannot start: its disk is full: no space is left on the device that "
        f"holds its data folder {data}; free some space there, or start the emulator with "
        "--data-dir on a larger disk."
    ]


# ------------------------------------------------------------------------ wall clocks


WALL = 1_800_000_000.0
TIMING = Timing(queue_seconds=10, build_seconds=20, plugin_seconds=20)


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[tuple[RunningEmulator, SteppedClock]]:
    clock = SteppedClock(WALL, 500.0)
    emulator = create_app(
        api_key=KEY, data_dir=tmp_path / "data", timing=TIMING, apps=("clock-site",), clock=clock
    )
    running = start_in_thread(emulator)
    try:
        yield running, clock
    finally:
        running.stop()


def deploy(url: str, app_id: str = "app_clock_site") -> str:
    slot = upload_slot(url, app_id)
    httpx.put(
        slot["upload_url"], content=make_zip(site()), headers={"Content-Type": "application/zip"}
    ).raise_for_status()
    queued = httpx.post(
        f"{url}/v1/apps/{app_id}/deploy",
        json={"bundle_s3_key": slot["bundle_s3_key"], "environment": "staging"},
        headers=AUTH,
    )
    queued.raise_for_status()
    return str(queued.json()["deploy_id"])


def status(url: str, deploy_id: str, app_id: str = "app_clock_site") -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/apps/{app_id}/deploys/{deploy_id}", headers=AUTH)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def test_a_wall_clock_step_changes_only_the_reported_times(
    stepped: tuple[RunningEmulator, SteppedClock],
) -> None:
    running, clock = stepped
    url = running.url
    first = deploy(url)
    queued_at = status(url, first)["queued_at"]

    clock.wall -= 3600  # an hour back while it is queued
    clock.advance(31)
    done = status(url, first)
    assert done["status"] == "complete" and done["queued_at"] == queued_at

    clock.wall -= 86_400  # a day back once it is complete
    assert status(url, first)["status"] == "complete"
    app = httpx.get(f"{url}/v1/apps/app_clock_site", headers=AUTH).json()
    assert app["environments"]["staging"]["deploy_id"] == first

    second = deploy(url)
    clock.wall += 7200  # two hours ahead: no build is done by a clock step
    assert status(url, second)["status"] == "queued"
    clock.advance(31)
    assert status(url, second)["status"] == "complete"


def test_a_wall_clock_step_neither_holds_nor_hurries_a_plugin_rollout(
    stepped: tuple[RunningEmulator, SteppedClock],
) -> None:
    running, clock = stepped
    base = f"{running.url}/v1/namespaces/ns_clock/plugins"
    slot = httpx.post(
        f"{base}/uploads", json={"name": "text_embed", "version": "1.0.0"}, headers=AUTH
    ).json()
    httpx.put(
        slot["presigned_url"],
        content=make_zip(plugin()),
        headers={"Content-Type": "application/zip"},
    ).raise_for_status()
    confirmed = httpx.post(f"{base}/uploads/{slot['upload_id']}/confirm", headers=AUTH)
    assert confirmed.status_code == 200, confirmed.text
    assert httpx.post(f"{base}/text_embed_1_0_0/deploy", headers=AUTH).status_code == 200

    def rollout() -> str:
        return str(httpx.get(f"{base}/text_embed_1_0_0/status", headers=AUTH).json()["status"])

    clock.wall += 3600
    assert rollout() == "queued"
    clock.wall -= 7200
    clock.advance(21)
    assert rollout() == "deployed"


def test_builds_resume_across_restarts_whatever_the_clocks_did(tmp_path: Path) -> None:
    """A monotonic clock starts anew in every process: the emulator resumes from the progress
    it saved, plus the wall time since, never less than none."""
    data = tmp_path / "data"

    def start(clock: SteppedClock) -> RunningEmulator:
        app = create_app(
            api_key=KEY, data_dir=data, timing=TIMING, apps=("clock-site",), clock=clock
        )
        return start_in_thread(app)

    clock = SteppedClock(WALL, 10_000.0)
    running = start(clock)
    first = deploy(running.url)
    clock.advance(40)
    assert status(running.url, first)["status"] == "complete"
    second = deploy(running.url)
    running.stop()

    # The next process: its monotonic clock starts near zero, and the wall went back a day.
    clock = SteppedClock(WALL + 40 - 86_400, 3.0)
    running = start(clock)
    assert status(running.url, first)["status"] == "complete"
    assert status(running.url, second)["status"] == "queued"
    clock.advance(31)
    assert status(running.url, second)["status"] == "complete"
    third = deploy(running.url)
    running.stop()

    # An hour later by the wall clock: the service would have built meanwhile, and so it has.
    clock = SteppedClock(clock.wall + 3600, 1.0)
    running = start(clock)
    try:
        assert status(running.url, third)["status"] == "complete"
    finally:
        running.stop()


def test_a_data_dir_of_an_earlier_release_keeps_its_builds_and_rollouts(tmp_path: Path) -> None:
    """Release 0.1.0 timed everything on the wall clock and saved no progress clock: its
    finished work stays finished, and work under way goes on from where the wall clock puts it."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "emulator", data)
    saved = json.loads((data / "state.json").read_text())
    assert "progress" not in saved
    finished = next(iter(saved["deploys"].values()))
    now = finished["queued_at"] + 3600
    under_way = {**finished, "deploy_id": "dep_underway", "queued_at": now - 15}
    under_way |= {"queue_seconds": 10, "build_seconds": 20, "settled": False, "version": None}
    saved["deploys"]["dep_underway"] = under_way
    rolling = saved["plugins"]["ns_upgrade_native"]["text_embed_1_0_0"]
    rolling |= {"deploy_requested_at": now - 7, "deploy_seconds": 20}
    (data / "state.json").write_text(json.dumps(saved))

    clock = SteppedClock(now, 42.0)
    running = start_in_thread(create_app(api_key=KEY, data_dir=data, clock=clock))
    app_id = finished["app_id"]
    plugin_status = f"{running.url}/v1/namespaces/ns_upgrade_native/plugins/text_embed_1_0_0/status"
    try:
        assert status(running.url, finished["deploy_id"], app_id)["status"] == "complete"
        assert status(running.url, "dep_underway", app_id)["status"] == "building"
        assert httpx.get(plugin_status, headers=AUTH).json()["status"] == "pending"
        clock.wall -= 86_400
        clock.advance(16)
        assert status(running.url, "dep_underway", app_id)["status"] == "complete"
        assert httpx.get(plugin_status, headers=AUTH).json()["status"] == "deployed"
    finally:
        running.stop()
