"""The redeploy's zip: laid out from the memo and the entry cache, hashed while sent, and never
different from what the bundle's bytes make, whatever state the cache is in: corrupt, stale,
truncated, evicted, or written by another deploy at the same time."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.files import bundle, contents, scratch
from mixpeek_pulumi.files import shipment as shipments
from mixpeek_pulumi.files.entry_cache import HEADER, EntryCache
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.files.shipment import CODEC, Shipment
from mixpeek_pulumi.kinds.app_deploy import upload
from tests.scripted_server import Reply, scripted_server

ROOT = Path(__file__).resolve().parents[2]


def tree(root: Path) -> Path:
    """Small text files, a text file of three pieces, an incompressible file of two (stored),
    a small stored image, and an empty file."""
    rng = random.Random(3)
    words = [bytes(rng.choice(b"abcdefghij ") for _ in range(7)) for _ in range(300)]
    root.mkdir(parents=True)
    (root / "index.html").write_text("<h1>hi</h1>")
    for i in range(40):
        folder = root / f"d{i % 4}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.js").write_bytes(b" ".join(rng.choice(words) for _ in range(200 + i)))
    (root / "big.txt").write_bytes(b"\n".join(rng.choice(words) for _ in range(330_000)))
    (root / "blob.bin").write_bytes(rng.randbytes(1_600_000))
    (root / "logo.png").write_bytes(rng.randbytes(5_000))
    (root / "empty.txt").write_bytes(b"")
    return root


def ship(root: Path, cache: EntryCache) -> tuple[bytes, Shipment]:
    """The zip exactly as an upload would send it (the real thread and body), and the
    shipment, once what it learnt is in the cache."""

    def receive(body: shipments.Body) -> bytes:
        body.seek(0)
        return b"".join(iter(lambda: body.read(1 << 20), b""))

    files = bundle.collect(root, Excludes())
    with Shipment(files, folder=str(root), cache=cache) as shipment:
        shipment.start(receive)
        shipment.digest  # noqa: B018 - as a deploy does before it waits for the upload
        data: bytes = shipment.sent()
    if shipment.keeper is not None:
        shipment.keeper.join()
    assert len(data) == shipment.size
    return data, shipment


def unpacked(data: bytes) -> dict[str, bytes]:
    """Every entry, each checked against its CRC."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {info.filename: zf.read(info) for info in zf.infolist()}


def on_disk(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def holds_the_bundle(data: bytes, shipment: Shipment, root: Path) -> None:
    assert unpacked(data) == on_disk(root)
    assert shipment.digest == contents.digest(bundle.collect(root, Excludes()))


@pytest.fixture
def cache(tmp_path: Path) -> EntryCache:
    return EntryCache(tmp_path / "cache", CODEC)


def entries(cache: EntryCache) -> list[Path]:
    assert cache.folder is not None
    return sorted(p for p in cache.folder.glob("??/*") if ".tmp-" not in p.name)


def last_archive(cache: EntryCache) -> Path:
    assert cache.folder is not None
    (found,) = list((cache.folder / "archives").glob("*.pack"))
    return found


def test_a_redeploy_reuses_what_did_not_change_and_ships_what_did(
    tmp_path: Path, cache: EntryCache
) -> None:
    root = tree(tmp_path / "site")
    first, shipment = ship(root, cache)
    holds_the_bundle(first, shipment, root)
    assert not any(e.predicted for e in shipment.entries)

    again, shipment = ship(root, cache)
    assert again == first  # the same bytes, from the memo, the last archive and the cache
    assert all(e.predicted for e in shipment.entries)
    # Deflated payloads come from the last archive; stored files are read from the folder.
    assert all((e.previous is not None) == (e.method == 8) for e in shipment.entries)

    (root / "d1" / "f5.js").write_bytes(b"console.log('changed');")
    with open(root / "big.txt", "r+b") as handle:  # one piece of three changes
        handle.seek(1_200_000)
        handle.write(b"CHANGED")
    changed, shipment = ship(root, cache)
    holds_the_bundle(changed, shipment, root)
    assert unpacked(changed)["d1/f5.js"] == b"console.log('changed');"
    repacked = {e.file.rel for e in shipment.entries if not e.predicted}
    assert repacked == {"d1/f5.js", "big.txt"}


def corrupt_entries(cache: EntryCache, root: Path) -> None:
    for path in entries(cache):
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))


def truncate_entries(cache: EntryCache, root: Path) -> None:
    for path in entries(cache):
        path.write_bytes(path.read_bytes()[: HEADER.size + 3])


def swap_entries(cache: EntryCache, root: Path) -> None:
    """Each entry replaced by another's: whole, valid files, under the wrong key."""
    found = entries(cache)
    contents = [p.read_bytes() for p in found]
    for path, data in zip(found, contents[1:] + contents[:1], strict=True):
        path.write_bytes(data)


def corrupt_archive(cache: EntryCache, root: Path) -> None:
    path = last_archive(cache)
    data = bytearray(path.read_bytes())
    for at in range(100, len(data), 997):
        data[at] ^= 0x55
    path.write_bytes(bytes(data))


def truncate_archive(cache: EntryCache, root: Path) -> None:
    path = last_archive(cache)
    path.write_bytes(path.read_bytes()[:5000])


def everything_corrupt(cache: EntryCache, root: Path) -> None:
    corrupt_archive(cache, root)
    swap_entries(cache, root)


def memo_of(cache: EntryCache, root: Path) -> Path:
    return cache.memo_path(str(root))


def stale_memo(cache: EntryCache, root: Path) -> None:
    """The memo's records name other files' digests, pieces and payloads, while every file's
    size and times still match it."""
    memo = json.loads(memo_of(cache, root).read_text())
    records = memo["files"]
    names = sorted(records)
    lying = {
        name: records[name][:5] + records[other][5:]
        for name, other in zip(names, names[1:] + names[:1], strict=True)
    }
    memo["files"] = lying
    memo_of(cache, root).write_text(json.dumps(memo))


def garbage_memo(cache: EntryCache, root: Path) -> None:
    memo_of(cache, root).write_bytes(b"\x00{not json")


def touched(cache: EntryCache, root: Path) -> None:
    """Every file rewritten with the same bytes (a rebuild): nothing is predicted, every
    entry is looked up by content, and every one is corrupt."""
    corrupt_entries(cache, root)
    for path in root.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes())


def swapped_and_touched(cache: EntryCache, root: Path) -> None:
    swap_entries(cache, root)
    touched(cache, root)


def rebuilt_over_a_corrupt_archive(cache: EntryCache, root: Path) -> None:
    """Nothing predicted, and what the last archive holds by content is damaged."""
    corrupt_archive(cache, root)
    touched(cache, root)


def truncated_and_all_corrupt(cache: EntryCache, root: Path) -> None:
    truncate_entries(cache, root)
    everything_corrupt(cache, root)


@pytest.mark.parametrize(
    "spoil",
    [
        corrupt_archive,
        truncate_archive,
        everything_corrupt,
        stale_memo,
        garbage_memo,
        touched,
        swapped_and_touched,
        truncated_and_all_corrupt,
        rebuilt_over_a_corrupt_archive,
    ],
    ids=[
        "corrupt-archive",
        "truncated-archive",
        "archive-and-entries",
        "stale-memo",
        "garbage-memo",
        "corrupt-entries",
        "swapped-entries",
        "truncated-entries",
        "rebuilt-over-corrupt-archive",
    ],
)
def test_a_stale_or_corrupt_cache_never_ships(
    tmp_path: Path, cache: EntryCache, spoil: Callable[[EntryCache, Path], object]
) -> None:
    root = tree(tmp_path / "site")
    reference, _ = ship(root, cache)
    spoil(cache, root)

    data, shipment = ship(root, cache)

    assert data == reference
    holds_the_bundle(data, shipment, root)
    again, _ = ship(root, cache)  # and the cache is whole again
    assert again == reference


def test_a_file_rewritten_after_the_layout_is_shipped_as_it_is_then(
    tmp_path: Path, cache: EntryCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewritten once the layout took the memo's word for it, before its bytes are hashed: the
    prediction is refuted, and the file is packed again and shipped as it is now."""
    root = tree(tmp_path / "site")
    ship(root, cache)
    files = bundle.collect(root, Excludes())
    target = root / "d2" / "f6.js"
    received: list[bytes] = []

    # The checks start hashing as the layout ends (on other threads): the rewrite goes in
    # between, not after some of them may already have read the file.
    start_checks = Shipment._start_checks

    def rewrite_then_check(self: Shipment) -> object:
        assert all(e.predicted for e in self.entries)
        target.write_bytes(b"x" * target.stat().st_size)  # same size, new bytes
        return start_checks(self)

    monkeypatch.setattr(Shipment, "_start_checks", rewrite_then_check)

    def receive(body: shipments.Body) -> str:
        body.seek(0)
        received.append(b"".join(iter(lambda: body.read(1 << 20), b"")))
        return "key"

    with Shipment(files, folder=str(root), cache=cache) as shipment:
        shipment.start(receive)
        digest = shipment.digest
        assert shipment.sent() == "key"
    assert {e.file.rel for e in shipment.entries if not e.predicted} == {"d2/f6.js"}
    assert digest == contents.digest(bundle.collect(root, Excludes()))
    holds_the_bundle(received[-1], shipment, root)


def test_a_file_rewritten_after_it_was_hashed_is_shipped_as_it_was_read(
    tmp_path: Path, cache: EntryCache
) -> None:
    """Rewritten once every byte is hashed: the zip and the digest both hold the bytes that
    were read (never the new bytes under the old hash), and the next deploy ships the new."""
    root = tree(tmp_path / "site")
    ship(root, cache)
    files = bundle.collect(root, Excludes())
    before = on_disk(root)
    read = contents.digest(files)
    target = root / "d2" / "f6.js"
    received: list[bytes] = []

    def receive(body: shipments.Body) -> str:
        body.seek(0)
        received.append(b"".join(iter(lambda: body.read(1 << 20), b"")))
        return "key"

    with Shipment(files, folder=str(root), cache=cache) as shipment:
        assert shipment.digest == read  # every byte hashed: the checks are over
        target.write_bytes(b"x" * target.stat().st_size)
        shipment.start(receive)
        assert shipment.sent() == "key"
    if shipment.keeper is not None:
        shipment.keeper.join()
    assert shipment.digest == read
    assert unpacked(received[-1]) == before

    data, shipment = ship(root, cache)
    holds_the_bundle(data, shipment, root)
    assert unpacked(data)["d2/f6.js"] == target.read_bytes()


SHARER = """
import sys
from pathlib import Path
from mixpeek_pulumi.files.entry_cache import EntryCache
from mixpeek_pulumi.files.shipment import CODEC
from tests.unit.test_shipment import ship
cache = EntryCache(Path(sys.argv[1]), CODEC)
for round_ in range(int(sys.argv[3])):
    for root in sys.argv[4:]:
        data, _ = ship(Path(root), cache)
        Path(sys.argv[2], f"{Path(root).name}-{round_}.zip").write_bytes(data)
"""


@pytest.mark.slow
def test_a_cache_shared_by_concurrent_deploys_stays_consistent(tmp_path: Path) -> None:
    """Two processes pack two folders, several times each, at once, into one cache (bound
    small enough that eviction runs as well): every archive is whole and right, and the cache
    left behind holds only entries that verify."""
    roots = [tree(tmp_path / "a"), tree(tmp_path / "b")]
    (roots[1] / "extra.js").write_text("console.log('b');")
    folder = tmp_path / "shared"
    outputs = [tmp_path / "out1", tmp_path / "out2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIXPEEK_ENTRY_CACHE_BYTES": str(3 << 20)}
    procs = []
    for out, order in zip(outputs, (roots, roots[::-1]), strict=True):
        out.mkdir()
        args = [sys.executable, "-c", SHARER, str(folder), str(out), "3", *map(str, order)]
        procs.append(subprocess.Popen(args, env=env, cwd=ROOT))
    assert [p.wait(timeout=300) for p in procs] == [0, 0]

    for root in roots:
        expected = on_disk(root)
        for out in outputs:
            for made in sorted(out.glob(f"{root.name}-*.zip")):
                assert unpacked(made.read_bytes()) == expected, made
    cache = EntryCache(folder, CODEC)
    for path in entries(cache):
        header = HEADER.unpack_from(path.read_bytes())
        assert cache.get(path.name, header[4]) is not None, path
    assert cache.folder is not None
    assert not list(cache.folder.rglob("*.tmp-*"))
    for root in roots:
        data, shipment = ship(root, cache)
        holds_the_bundle(data, shipment, root)


def test_eviction_keeps_the_cache_near_its_bound(tmp_path: Path) -> None:
    root = tree(tmp_path / "site")
    cache = EntryCache(tmp_path / "cache", CODEC, bound=200_000)
    data, shipment = ship(root, cache)
    holds_the_bundle(data, shipment, root)
    assert cache.folder is not None
    kept = sum(p.stat().st_size for p in cache.folder.rglob("*") if p.is_file())
    assert kept <= 200_000
    again, shipment = ship(root, cache)  # what eviction took is compressed again
    assert again == data


def test_without_a_cache_or_a_usable_tmpdir_the_zip_is_the_same(
    tmp_path: Path, cache: EntryCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree(tmp_path / "site")
    reference, _ = ship(root, cache)
    not_a_folder = tmp_path / "tmpdir"
    not_a_folder.write_text("TMPDIR names a file, so no temporary file can be made there")
    monkeypatch.setattr("tempfile.tempdir", str(not_a_folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(shipments, "SPOOL_MEMORY", 1000)  # the spool goes to a file at once
    data, shipment = ship(root, EntryCache(None, CODEC))
    assert data == reference
    assert shipment.spool.file is None or shipment.spool.file.closed
    assert (tmp_path / "xdg" / "mixpeek-pulumi" / "scratch").is_dir()
    assert list((tmp_path / "xdg" / "mixpeek-pulumi" / "scratch").iterdir()) == []
    with scratch.temporary_file("x-") as handle:
        assert handle.write(b"y") == 1


def test_the_upload_sends_the_exact_length_and_the_zip(tmp_path: Path, cache: EntryCache) -> None:
    """Through a real loopback server: one PUT with the exact Content-Length and the zip as its
    body (no Content-MD5, which would need the whole zip before its first byte)."""
    root = tree(tmp_path / "site")
    reference, _ = ship(root, cache)
    files = bundle.collect(root, Excludes())
    with (
        scripted_server() as server,
        MixpeekClient(api_key="sk_test_key", base_url=server.url) as api,
    ):
        slot = {"upload_url": f"{server.url}/store/b.zip", "bundle_s3_key": "k/b.zip"}
        server.add("POST", "/v1/apps/app_1/deploy/upload-url", Reply(body=slot))
        server.add("PUT", "/store/b.zip", Reply(raw=b"", headers={"ETag": '"x"'}))
        with Shipment(files, folder=str(root), cache=cache) as shipment:
            shipment.start(lambda body: upload(api, lambda _line: None, "app_1", body))
            assert shipment.sent() == "k/b.zip"
        (put,) = [s for s in server.seen if s.method == "PUT"]
    assert put.body == reference
    headers = {k.lower(): v for k, v in put.headers.items()}
    assert headers["content-length"] == str(len(reference))
    assert "content-md5" not in headers
    assert "transfer-encoding" not in headers
