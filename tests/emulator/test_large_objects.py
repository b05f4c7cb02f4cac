"""Large objects through presigned storage: streamed both ways in flat memory, with the ETag
recorded at upload and kept across a restart with --data-dir."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx

from mixpeek_emulator.storage import ObjectStore
from tests.aio import run_apart
from tests.emulator.test_cli_persistence import KEY, cli
from tests.emulator_fixture import EmulatorHandle, wait_until

AUTH = {"Authorization": f"Bearer {KEY}"}
MiB = 1024 * 1024
MEDIA = 192 * MiB
# Reading a whole object into memory, as the emulator once did, would alone pass this.
GROWTH_BOUND = 64 * MiB


def peak_rss(proc: subprocess.Popen[str]) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def write_big_bundle(path: Path) -> None:
    """A valid app bundle whose one large entry is stored, so the zip is as large as it is."""
    block = os.urandom(MiB)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("index.html", "<h1>big</h1>")
        info = zipfile.ZipInfo("media.bin", date_time=(2026, 1, 1, 0, 0, 0))
        with zf.open(info, "w") as member:
            for i in range(MEDIA // MiB):
                member.write(i.to_bytes(8, "big") + block[8:])  # no two blocks alike


def file_chunks(path: Path, md5: hashlib._Hash) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(MiB):
            md5.update(block)
            yield block


def test_a_large_version_streams_both_ways_in_flat_memory(tmp_path: Path) -> None:
    bundle = tmp_path / "big.zip"
    write_big_bundle(bundle)
    size = bundle.stat().st_size
    with (
        cli(
            "--data-dir",
            str(tmp_path / "data"),
            "--app",
            "big-site",
            "--queue-seconds",
            "0",
            "--build-seconds",
            "0",
        ) as (proc, url),
        httpx.Client(base_url=url, headers=AUTH, timeout=60) as api,
    ):
        slot = api.post("/v1/apps/app_big_site/deploy/upload-url", json={"filename": "big.zip"})
        slot.raise_for_status()
        key = slot.json()["bundle_s3_key"]
        before = peak_rss(proc)

        sent = hashlib.md5()
        put = httpx.put(
            slot.json()["upload_url"],
            content=file_chunks(bundle, sent),
            headers={"Content-Type": "application/zip", "Content-Length": str(size)},
            timeout=60,
        )
        put.raise_for_status()
        assert put.headers["ETag"] == f'"{sent.hexdigest()}"'

        deploy = api.post("/v1/apps/app_big_site/deploy", json={"bundle_s3_key": key})
        deploy.raise_for_status()
        status = api.get(f"/v1/apps/app_big_site/deploys/{deploy.json()['deploy_id']}").json()
        assert status["status"] == "complete", status
        link = api.get("/v1/apps/app_big_site/versions/1/download")
        link.raise_for_status()

        received = 0
        with (
            httpx.stream("GET", link.json()["download_url"], timeout=60) as response,
            bundle.open("rb") as original,
        ):
            response.raise_for_status()
            assert response.headers["ETag"] == f'"{sent.hexdigest()}"'
            assert int(response.headers["Content-Length"]) == size
            for block in response.iter_bytes(MiB):
                assert block == original.read(len(block)), f"bytes differ after {received}"
                received += len(block)
        assert received == size

        grew = peak_rss(proc) - before
        assert grew < GROWTH_BOUND, f"peak memory grew by {grew / MiB:.0f} MiB for {size / MiB:.0f}"


def test_the_etag_recorded_at_upload_survives_a_restart(tmp_path: Path) -> None:
    data = b"PK-not-really-a-zip " * 1000
    with cli("--data-dir", str(tmp_path), "--app", "kept-site") as (proc, url):
        with httpx.Client(base_url=url, headers=AUTH) as api:
            slot = api.post("/v1/apps/app_kept_site/deploy/upload-url", json={"filename": "a.zip"})
        key = slot.json()["bundle_s3_key"]
        put = httpx.put(
            slot.json()["upload_url"], content=data, headers={"Content-Type": "application/zip"}
        )
        assert put.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with cli("--data-dir", str(tmp_path)) as (_, url), httpx.Client(base_url=url) as api:
        verified = api.post(
            "/v1/apps/app_kept_site/deploy/verify-upload",
            json={"bundle_s3_key": key},
            headers=AUTH,
        ).json()
    assert verified["exists"] is True
    assert verified["etag"] == put.headers["ETag"]
    assert verified["size_bytes"] == len(data)


def open_here(path: Path) -> bool:
    """Whether this process (the in-process emulator's) has ``path`` open."""
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if fd.readlink() == path:
                return True
        except FileNotFoundError:  # closed while listed
            continue
    return False


def test_a_download_cut_short_closes_the_object(emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("cut-site")
    with emulator.api() as api:
        slot = api.post(f"/v1/apps/{app_id}/deploy/upload-url", json={"filename": "a.zip"}).json()
    data = os.urandom(16 * MiB)
    httpx.put(
        slot["upload_url"], content=data, headers={"Content-Type": "application/zip"}, timeout=60
    ).raise_for_status()
    objects = emulator.running.emulator.objects
    path = objects.path(slot["bundle_s3_key"]).resolve()
    url = objects.presign("GET", slot["bundle_s3_key"], expires_in=60)
    # A small, fixed receive buffer (loopback's grows to 32 MiB): with the server's send
    # buffer (4 MiB at most) it holds far less than the object, so the server is still
    # reading the file when the client has its first MiB.
    small = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)])
    with (
        httpx.Client(transport=small, timeout=60) as client,
        client.stream("GET", url) as response,
    ):
        # The iterator is kept: one dropped mid-body makes httpx close the connection.
        body = response.iter_bytes(MiB)
        assert next(body) == data[:MiB]
        assert open_here(path)
    # The client hung up mid-body: the server stops reading and closes the file.
    assert wait_until(lambda: not open_here(path))


async def _chunks(*blocks: bytes) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def _put(store: ObjectStore, key: str, data: bytes) -> str:
    return run_apart(store.write(key, _chunks(data), content_md5=None)).etag


def test_the_etag_comes_from_the_upload_record_not_a_second_read(tmp_path: Path) -> None:
    key = "app-builds/app_x/up_1/a.zip"
    etag = _put(ObjectStore(tmp_path, "http://127.0.0.1"), key, b"uploaded bytes")
    restarted = ObjectStore(tmp_path, "http://127.0.0.1")
    path = restarted.path(key)
    # Rewrite the bytes where they are, keeping the inode, size and time the record names:
    # only an ETag taken from the record can still be the upload's.
    when = path.stat().st_mtime_ns
    with path.open("r+b") as handle:
        handle.write(b"UPLOADED")
    os.utime(path, ns=(when, when))
    found = restarted.stored(key)
    assert found is not None
    assert found.etag == etag == f'"{hashlib.md5(b"uploaded bytes").hexdigest()}"'


def test_a_record_of_another_file_is_not_used(tmp_path: Path) -> None:
    """A file replaced behind its record (a crash between the two renames, or an object from
    before records were kept) gets its ETag from its bytes."""
    store = ObjectStore(tmp_path, "http://127.0.0.1")
    key = "ns/plugins/p/p.zip"
    _put(store, key, b"first")
    replacement = store.path(key).with_name("replacement")
    replacement.write_bytes(b"other")
    os.replace(replacement, store.path(key))
    expected = f'"{hashlib.md5(b"other").hexdigest()}"'
    found = store.stored(key)
    assert found is not None and found.etag == expected
    store.path(key).with_name(store.path(key).name + ".meta").unlink()
    found = store.stored(key)
    assert found is not None and found.etag == expected
    assert store.stored("ns/plugins/none.zip") is None
