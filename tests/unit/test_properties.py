"""Property-based hostile and careless input: every generated case ends in one clear sentence
naming the field or the file, or in an archive with no secret in it; never a bare traceback,
never a network call from ``check``, never a file left in the temporary folder."""

from __future__ import annotations

import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixpeek_pulumi.errors import BundleError
from mixpeek_pulumi.files import bundle, contents
from mixpeek_pulumi.files.archive import PIECE, WINDOW_BYTES, write_archive
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.files.names import folded
from mixpeek_pulumi.files.sources import APP_LIMITS
from mixpeek_pulumi.files.zips import collect_archive
from mixpeek_pulumi.kinds.spec import AppDeployInputs, AppPromotionInputs, PluginDeploymentInputs
from mixpeek_pulumi.resources.app_deploy import AppDeployProvider
from mixpeek_pulumi.resources.app_promotion import AppPromotionProvider
from mixpeek_pulumi.resources.plugin_deployment import PluginDeploymentProvider

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRETS = [".env", "id_rsa", "server.pem", "credentials.json", ".git/config", ".npmrc", "x.key"]
names = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", ".."))
trees = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map("/".join), st.binary(max_size=300), max_size=8
)
case_variants = st.sampled_from(SECRETS).flatmap(
    lambda name: st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )
)
extras = st.sets(
    st.sampled_from(
        [
            "index",
            "nested-index",
            "link-out",
            "link-in",
            "link-to-secret",
            "link-dir-in",
            "link-loop",
            "link-broken",
            "fifo",
            "empty-dir",
            "bad-name",
        ]
    )
)


@contextmanager
def no_network() -> Iterator[None]:
    """Any connection attempt while this holds fails the test: ``check`` must not send."""
    real = socket.socket.connect

    def refuse(*_args: Any) -> None:
        raise AssertionError("check tried to open a network connection")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


@contextmanager
def private_tmp() -> Iterator[Path]:
    """A temporary folder of the test's own as every temp file's home; empty at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        before, tempfile.tempdir = tempfile.tempdir, str(Path(tmp) / "scratch")
        Path(tempfile.tempdir).mkdir()
        try:
            yield Path(tmp)
        finally:
            leftovers = os.listdir(tempfile.tempdir)
            tempfile.tempdir = before
            assert leftovers == [], f"left in the temporary folder: {leftovers}"


def build(root: Path, files: dict[str, bytes], extra: set[str], secret: str) -> None:
    root.mkdir()
    for rel, data in files.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError:
            continue  # a name that is both a file and a folder in the generated tree
    secret_path = root / secret
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    secret_path.write_text("TOKEN=hunter2")
    if "index" in extra:
        (root / "index.html").write_text("<h1>x</h1>")
    if "nested-index" in extra:
        (root / "dist").mkdir(exist_ok=True)
        (root / "dist" / "index.html").write_text("x")
    _links(root, extra, secret_path)
    if "fifo" in extra:
        os.mkfifo(root / "pipe")
    if "empty-dir" in extra:
        (root / "empty").mkdir(exist_ok=True)
    if "bad-name" in extra:
        with open(os.path.join(os.fsencode(root), b"caf\xe9.html"), "wb") as handle:
            handle.write(b"x")


def _links(root: Path, extra: set[str], secret: Path) -> None:
    links = {
        "link-out": (root / "out-link", Path("/etc/hostname")),
        "link-in": (root / "in-link.txt", root / "index.html"),
        "link-to-secret": (root / "config.txt", secret),
        "link-dir-in": (root / "mirror", root / "dist"),
        "link-loop": (root / "loop", root),
        "link-broken": (root / "gone.js", root / "nowhere.js"),
    }
    for kind, (link, target) in links.items():
        if kind in extra and not link.exists() and (target.exists() or kind == "link-broken"):
            link.symlink_to(target)


REFUSED = {"link-out", "link-to-secret", "link-loop", "link-broken", "fifo", "bad-name"}
NAMED = {
    "link-out": "out-link",
    "link-to-secret": "config.txt",
    "link-loop": "loop",
    "link-broken": "gone.js",
    "fifo": "pipe",
    "bad-name": "caf",
}
"""What the failure must name for each refused input: the link, the file, not just fail."""


def refused_without(tmp: Path, files: dict[str, bytes], extra: set[str], secret: str) -> bool:
    root = tmp / "plain"
    build(root, files, extra, secret)
    result = AppDeployProvider().check({}, {"app_id": "app_1", "bundle": str(root)})
    return bool(result.failures)


@SETTINGS
@given(files=trees, extra=extras, secret=case_variants)
def test_any_folder_gives_a_sentence_or_an_archive_without_secrets(
    files: dict[str, bytes], extra: set[str], secret: str
) -> None:
    with private_tmp() as tmp, no_network():
        root = tmp / "site"
        build(root, files, extra, secret)
        result = AppDeployProvider().check(
            {}, {"app_id": "app_1", "bundle": str(root), "resource_name": "s"}
        )
        for failure in result.failures:
            assert failure.property == "bundle"
            assert failure.reason.startswith(f"The bundle at {root} cannot be used: ")
            assert failure.reason.endswith(".") and "\n" not in failure.reason
        refused = extra & REFUSED
        if refused:
            assert result.failures
            reason = result.failures[0].reason
            # It names what was refused, unless the tree has another fault of its own: the
            # same tree without the refused inputs must then be refused too.
            if not any(NAMED[kind] in reason for kind in refused):
                assert refused_without(tmp, files, extra - REFUSED, secret), reason
        if not result.failures:
            collected = bundle.collect(root, Excludes())
            with write_archive(collected) as archive, zipfile.ZipFile(archive.file) as zf:
                shipped = zf.namelist()
                assert archive.digest.sha256 == result.inputs["bundle_sha256"]
                assert all(b"hunter2" not in zf.read(n) for n in shipped)
                # What the provider writes, its own reader (an import) takes, to the same digest.
                archive.file.seek(0)
                limits = APP_LIMITS
                back = collect_archive(archive.file, "it", Excludes(), limits)
                assert contents.digest(back) == archive.digest
            assert shipped == [f.rel for f in collected]


def damaged(data: bytes, how: str) -> bytes:
    """A valid zip made bad in one of the ways archives arrive broken or hostile."""
    if how == "truncated":
        return data[: len(data) // 2]
    header = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    patched = bytearray(data)
    if how == "bad-crc":
        patched[central + 16 : central + 20] = b"\xde\xad\xbe\xef"
        patched[header + 14 : header + 18] = b"\xde\xad\xbe\xef"
    elif how == "encrypted":
        for at in (header + 6, central + 8):
            flags = struct.unpack_from("<H", patched, at)[0] | 0x1
            struct.pack_into("<H", patched, at, flags)
    elif how == "bzip2":
        for at in (header + 8, central + 10):
            struct.pack_into("<H", patched, at, zipfile.ZIP_BZIP2)
    return bytes(patched)


entry_names = st.one_of(
    names,
    st.sampled_from(["../evil", "/abs.html", "a/../../b", "index.html", "./index.html", "C:/x"]),
    case_variants,
)


@pytest.mark.slow
@SETTINGS
@given(
    entries=st.lists(st.tuples(entry_names, st.binary(max_size=50)), min_size=1, max_size=6),
    bomb=st.sampled_from(["none", "entry", "many"]),
    harm=st.sampled_from(["none", "truncated", "bad-crc", "encrypted", "bzip2"]),
)
def test_any_zip_gives_a_sentence_or_safe_entries(
    entries: list[tuple[str, bytes]], bomb: str, harm: str
) -> None:
    with private_tmp() as tmp, no_network():
        packed = tmp / "in.zip"
        with warnings.catch_warnings(), zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
            for name, data in entries:
                zf.writestr(name, data or b"x")
            if bomb == "entry":
                zf.writestr("bomb.bin", b"\0" * (4 * 1024 * 1024))
            for i in range(40 if bomb == "many" else 0):
                zf.writestr(f"part{i}.bin", b"\0" * (1000 * 1024))
        packed.write_bytes(damaged(packed.read_bytes(), harm))
        result = AppDeployProvider().check({}, {"app_id": "a", "bundle": str(packed)})
        reasons = [f.reason for f in result.failures]
        for reason in reasons:
            assert reason.startswith(f"The bundle at {packed} cannot be used: "), reason
            assert reason.endswith(".") and "\n" not in reason
        # A bad CRC is damage to the first entry's data, which is never read when it is left out.
        read = harm != "bad-crc" or not Excludes().excluded(entries[0][0])
        if bomb != "none" or (harm != "none" and read):
            assert reasons or "index.html" not in [n for n, _ in entries]
        if not reasons:
            for f in bundle.collect(packed, Excludes()):
                assert not f.rel.startswith("/") and ".." not in f.rel.split("/")
                assert folded(f.rel) not in {folded(s) for s in SECRETS}


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e-9, 1e308, -1.0, 0.0]),
    st.text(max_size=20),
    st.sampled_from(["１.０.０", "1.0.0", ".", "..", "a/b", "ftp://x", "http://u:p@h/"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
urls = st.one_of(
    st.sampled_from(
        [
            "ftp://api.example",
            "http://user:s3cretpass@api.example",
            "https://api.example?k=v",
            "https://api.example#x",
            "http://",
            "https://api.example:99999",
            "https://ａｐｉ.example",
            "https://api.example/v1",
            "api.example",
        ]
    ),
    st.text(max_size=30),
)
PROVIDERS: list[tuple[Any, Any, dict[str, Any]]] = [
    (AppDeployProvider, AppDeployInputs, {"app_id": "app_1", "bundle": "/nonexistent"}),
    (AppPromotionProvider, AppPromotionInputs, {"app_id": "app_1", "version": 1}),
    (
        PluginDeploymentProvider,
        PluginDeploymentInputs,
        {"namespace_id": "ns", "name": "abc", "version": "1.0.0", "source": "/nonexistent"},
    ),
]


@SETTINGS
@given(which=st.integers(0, 2), field=st.data(), value=garbage, url=urls)
def test_any_field_value_is_checked_not_crashed(
    which: int, field: st.DataObject, value: Any, url: str
) -> None:
    provider_cls, model, base = PROVIDERS[which]
    name = field.draw(st.sampled_from(sorted(model.model_fields)))
    props = {**base, name: value, "resource_name": "r", "base_url": url}
    with no_network():
        result = provider_cls().check({}, props)
    for failure in result.failures:
        assert failure.property
        assert failure.reason.endswith(".") and "\n" not in failure.reason
        assert "s3cretpass" not in failure.reason
    if not result.failures:
        checked = model.model_validate({k: v for k, v in props.items() if v is not None})
        for seconds in ("timeout_seconds", "poll_interval_seconds"):
            if hasattr(checked, seconds):
                assert math.isfinite(getattr(checked, seconds))
        assert checked.base_url is None or checked.base_url.startswith(("http://", "https://"))


@pytest.mark.parametrize("value", [True, False, 1.5, "1", math.inf])
def test_a_version_is_a_whole_number_not_a_boolean(value: Any) -> None:
    result = AppPromotionProvider().check({}, {"app_id": "a", "version": value})
    assert [f.property for f in result.failures] == ["version"]


def test_plugin_versions_are_ascii_digits() -> None:
    props = {"namespace_id": "ns", "name": "abc", "source": "/x"}
    for version in ("１.０.０", "1.0", "v1.0.0", "1.0.0-rc1"):
        result = PluginDeploymentProvider().check({}, {**props, "version": version})
        assert [f.property for f in result.failures] == ["version"], version


PACKING_PROBE = """
import sys, tracemalloc
from pathlib import Path
from mixpeek_pulumi.files import bundle, contents
from mixpeek_pulumi.files.archive import write_archive
from mixpeek_pulumi.files.excludes import Excludes

root = Path(sys.argv[1])
tracemalloc.start()
files = bundle.collect(root, Excludes())
digest = contents.digest(files)
with write_archive(files) as archive:
    _, peak = tracemalloc.get_traced_memory()
    assert archive.digest == digest
print(peak)
"""


def test_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """Measured in a process of its own: tracemalloc counts every thread's allocations, and a
    test worker still runs threads that earlier tests left (servers, cache keepers)."""
    root = tmp_path / "big"
    root.mkdir()
    (root / "index.html").write_text("x")
    with (root / "video.bin").open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: no disk, all the bytes
    path = os.pathsep.join(str(ROOT / p) for p in ("provider", "emulator", "."))
    probe = subprocess.run(
        [sys.executable, "-c", PACKING_PROBE, str(root)],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "PYTHONPATH": path},
        check=True,
    )
    peak = int(probe.stdout.strip())
    # The packer's own bound, far below the file's 256 MiB: at most WINDOW_BYTES of pieces in
    # flight, plus the one that crosses it, each with its 32 KiB primer.
    assert peak < WINDOW_BYTES + 4 * PIECE, f"peak {peak / 2**20:.1f} MiB"


def test_collect_names_the_file_for_every_refusal(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "index.html").write_text("x")
    (root / "a").mkdir()
    (root / "a" / "up").symlink_to(root / "a")
    with pytest.raises(BundleError, match=r"the symlink a/up loops back to a folder"):
        bundle.collect(root, Excludes())
