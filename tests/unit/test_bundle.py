"""Bundles: digest by content only, secrets left out, unsafe inputs refused by name, one rule
for names, what ships is what was hashed, and every damaged or hostile zip one sentence."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.errors import BundleError
from mixpeek_pulumi.files import archive as archive_module
from mixpeek_pulumi.files import bundle
from mixpeek_pulumi.files.archive import Archive, write_archive
from mixpeek_pulumi.files.contents import Digest, digest, source_texts
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.files.layout import entry_prefix
from mixpeek_pulumi.files.sources import APP_LIMITS, Limits, SourceFile
from mixpeek_pulumi.files.zips import collect_archive
from mixpeek_pulumi.kinds.uploads import remote_digest
from mixpeek_pulumi.resources.app_deploy import AppDeployProvider
from mixpeek_pulumi.resources.plugin_deployment import PluginDeploymentProvider
from tests.scripted_server import Reply, scripted_server
from tests.sites import plugin, site, write_tree


def content(archive: Archive) -> bytes:
    archive.file.seek(0)
    return archive.file.read()


def files_of(root: Path, *patterns: str) -> list[str]:
    return [f.rel for f in bundle.collect(root, Excludes(patterns))]


def test_digest_ignores_mtimes_modes_and_zip_order(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "a", site(), mtime=1)
    b = write_tree(tmp_path / "b", site(), mtime=999_999)
    (b / "app.js").chmod(0o600)
    digest_a = digest(bundle.collect(a, Excludes()))
    assert digest_a == digest(bundle.collect(b, Excludes()))
    packed = tmp_path / "site.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for name, content in reversed(list(site().items())):
            zf.writestr(name, content)
    assert digest(bundle.collect(packed, Excludes())) == digest_a
    write_tree(b, {"app.js": "console.log('changed');"})
    assert digest(bundle.collect(b, Excludes())) != digest_a


def test_archive_is_deterministic_and_matches_the_digest(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "s", site(), mtime=5)
    files = bundle.collect(root, Excludes())
    with write_archive(files) as first:
        os.utime(root / "index.html", (77, 77))
        with write_archive(bundle.collect(root, Excludes())) as second:
            assert content(first) == content(second)
        assert first.digest == digest(files)
        with zipfile.ZipFile(first.file) as zf:
            assert zf.namelist() == sorted(site())
            assert zf.testzip() is None


def test_secrets_are_left_out_unless_reincluded(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "s",
        {
            **site(),
            ".env": "K=1",
            ".env.production": "K=2",
            "certs/server.pem": "x",
            ".git/config": "x",
            "id_rsa": "k",
        },
    )
    assert files_of(root) == ["app.js", "assets/style.css", "index.html"]
    assert ".env.production" in files_of(root, "!.env.production")
    assert "assets/style.css" not in files_of(root, "assets/")


@pytest.mark.parametrize("secret", [".env", "id_rsa", "Server.PEM", ".aws/credentials"])
def test_a_link_to_a_secret_inside_the_bundle_is_refused_by_name(
    tmp_path: Path, secret: str
) -> None:
    """The link's own name looks harmless; what it points to is left out as a secret, so the
    link would ship the secret's bytes under another name: refused, naming the link."""
    root = write_tree(tmp_path / "s", site())
    (root / secret).parent.mkdir(parents=True, exist_ok=True)
    (root / secret).write_text("TOKEN=hunter2")
    (root / "config.txt").symlink_to(root / secret)
    with pytest.raises(BundleError) as info:
        bundle.collect(root, Excludes())
    assert "the symlink config.txt points to" in str(info.value)
    assert "left out of the bundle" in str(info.value)


def test_symlink_outside_and_special_files_are_refused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "s", site())
    (tmp_path / "outside.txt").write_text("secret")
    (root / "leak.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(
        BundleError, match=r"the symlink leak\.txt points outside the bundle folder"
    ):
        bundle.collect(root, Excludes())
    (root / "leak.txt").unlink()
    os.mkfifo(root / "pipe")
    with pytest.raises(BundleError, match="pipe is a special file"):
        bundle.collect(root, Excludes())


@pytest.mark.parametrize(
    ("name", "reason"),
    [("../evil.html", "escapes the archive root"), ("/etc/passwd", "escapes the archive root")],
)
def test_unsafe_zip_entries_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    packed = tmp_path / "bad.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("index.html", "x")
        zf.writestr(name, "x")
    with pytest.raises(BundleError, match=reason):
        bundle.collect(packed, Excludes())


def test_entry_rule_matches_the_service(tmp_path: Path) -> None:
    nested = write_tree(tmp_path / "n", {"dist/index.html": "x", "dist/a.js": "y"})
    assert entry_prefix(bundle.collect(nested, Excludes())) == "dist/"
    split = write_tree(tmp_path / "t", {"a/index.html": "x", "b/a.js": "y"})
    assert entry_prefix(bundle.collect(split, Excludes())) is None


def test_source_texts_skip_binary_and_large_files(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "s", {**site(), "logo.png": b"\x89PNG\0\0", "big.txt": "x" * 300_000}
    )
    texts = source_texts(bundle.collect(root, Excludes()))
    assert set(texts) == set(site())


def test_compressed_formats_are_stored_and_text_deflated(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "s",
        {
            "index.html": "<p>hello</p>" * 2000,
            "logo.png": os.urandom(10_000),
            "blob.bin": os.urandom(300_000),
        },
    )
    with (
        write_archive(bundle.collect(root, Excludes())) as archive,
        zipfile.ZipFile(archive.file) as zf,
    ):
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert kinds == {
        "blob.bin": zipfile.ZIP_STORED,
        "index.html": zipfile.ZIP_DEFLATED,
        "logo.png": zipfile.ZIP_STORED,
    }


def test_large_files_stream_and_the_archive_reads_back(tmp_path: Path) -> None:
    text = ("const answer = 42;\n" * 400_000).encode()  # ~7.6 MB: streamed, deflated
    noise = os.urandom(6 * 1024 * 1024)  # streamed, stored after sampling
    root = write_tree(tmp_path / "s", {"index.html": "x", "bundle.js": text, "blob.bin": noise})
    with write_archive(bundle.collect(root, Excludes())) as archive:
        with zipfile.ZipFile(archive.file) as zf:
            assert zf.testzip() is None
            assert zf.read("bundle.js") == text
            assert zf.read("blob.bin") == noise
            assert zf.getinfo("bundle.js").compress_type == zipfile.ZIP_DEFLATED
            assert zf.getinfo("blob.bin").compress_type == zipfile.ZIP_STORED
        packed = content(archive)
    if shutil.which("unzip"):
        (tmp_path / "out.zip").write_bytes(packed)
        checked = subprocess.run(["unzip", "-tq", str(tmp_path / "out.zip")], capture_output=True)
        assert checked.returncode == 0


@pytest.mark.slow
def test_more_entries_than_a_plain_zip_holds_use_zip64(tmp_path: Path) -> None:
    files = [SourceFile(f"f{i:05d}.txt", 1, lambda: io.BytesIO(b"x")) for i in range(70_000)]
    with write_archive(files) as archive, zipfile.ZipFile(archive.file) as zf:
        names = zf.namelist()
        assert len(names) == 70_000
        assert zf.read("f69999.txt") == b"x"


def test_a_large_zip_hashes_on_the_pool_to_its_folders_digest(tmp_path: Path) -> None:
    """Enough entries for the hashing pool, which shares one open archive among its threads:
    a .zip and the folder it was made from are the same bundle, whichever order it lists."""
    tree = {f"d{i % 3}/f{i}.js": f"console.log({i})" * (i % 5) for i in range(700)}
    tree |= {".env": "SECRET=1", ".git/config": "x", "index.html": "<h1>x</h1>"}
    root = write_tree(tmp_path / "dist", tree)
    packed = tmp_path / "dist.zip"
    with zipfile.ZipFile(packed, "w") as z:
        for rel, text in sorted(tree.items(), reverse=True):
            z.writestr(rel, text)
    from_folder = digest(bundle.collect(root, Excludes()))
    assert digest(bundle.collect(packed, Excludes())) == from_folder
    assert from_folder.file_count == 701  # the .env and .git/ are left out


# ------------------------------------------------------- what ships is what was hashed


def read_back(archive: Archive, limits: Limits = APP_LIMITS) -> Digest:
    """The digest of what was shipped, read back with the provider's own reader."""
    archive.file.seek(0)
    return digest(collect_archive(archive.file, "the archive", Excludes(), limits))


def rewrite_after_first_piece(monkeypatch: pytest.MonkeyPatch, path: Path, new: bytes) -> list[int]:
    """Rewrite ``path`` in place, same size, right after its first piece was read: a build step
    writing the file while it is packed, at a known moment instead of a race."""
    reads: list[int] = []
    real = archive_module.read_at

    def read_at(where: str, start: int, length: int) -> bytes:
        data = real(where, start, length)
        if where == str(path):
            reads.append(start)
            if len(reads) == 1:
                with path.open("r+b") as handle:
                    handle.write(new)
        return data

    monkeypatch.setattr(archive_module, "read_at", read_at)
    return reads


TEXT = ("const answer = 42;\n" * 200_000).encode()[: 3 * 1024 * 1024]  # deflated in pieces
NOISE = os.urandom(3 * 1024 * 1024)  # stored in pieces


@pytest.mark.parametrize(("name", "old"), [("bundle.js", TEXT), ("media.bin", NOISE)])
def test_a_file_rewritten_while_it_is_packed_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, old: bytes
) -> None:
    root = write_tree(tmp_path / "dist", {"index.html": "x", name: old}, mtime=1)
    files = bundle.collect(root, Excludes())
    reads = rewrite_after_first_piece(monkeypatch, root / name, old.swapcase()[::-1])
    with pytest.raises(BundleError) as caught:
        write_archive(files, source=str(root))
    assert str(caught.value) == (
        f"The bundle at {root} cannot be used: {name} changed while it was being packed; "
        "run the build again."
    )
    assert reads  # the rewrite happened between the file's reads, not before them


def test_a_rewrite_the_clock_cannot_show_is_still_caught_or_shipped_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timestamps can be too coarse to show a write: then a deflated piece primed with bytes the
    archive does not hold is refused, and stored pieces ship exactly what was hashed."""
    monkeypatch.setattr(archive_module, "_stamp", lambda f: (f.size, 0, 0, 0, 0))
    monkeypatch.setattr(archive_module, "WORKERS", 1)  # pieces read in order, one at a time
    root = write_tree(tmp_path / "dist", {"index.html": "x", "bundle.js": TEXT})
    files = bundle.collect(root, Excludes())
    rewrite_after_first_piece(monkeypatch, root / "bundle.js", TEXT.upper())
    with pytest.raises(BundleError, match=r"bundle\.js changed while it was being packed"):
        write_archive(files, source=str(root))

    root = write_tree(tmp_path / "media", {"index.html": "x", "media.bin": NOISE})
    files = bundle.collect(root, Excludes())
    new = bytes(b ^ 0xFF for b in NOISE[:4096]) * (len(NOISE) // 4096)
    rewrite_after_first_piece(monkeypatch, root / "media.bin", new)
    with write_archive(files, source=str(root)) as packed:
        with zipfile.ZipFile(packed.file) as zf:
            assert zf.testzip() is None
            shipped = zf.read("media.bin")
        assert shipped == NOISE[: archive_module.PIECE] + new[archive_module.PIECE :]
        assert read_back(packed) == packed.digest


def test_a_file_that_changed_size_since_it_was_listed_is_refused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "dist", {"index.html": "x", "app.js": "a", "big.bin": NOISE})
    files = bundle.collect(root, Excludes())
    with (root / "app.js").open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(BundleError, match=r"app\.js changed while it was being packed"):
        write_archive(files, source=str(root))
    (root / "app.js").write_text("a")
    with (root / "big.bin").open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(BundleError, match=r"big\.bin changed while it was being packed"):
        write_archive(files, source=str(root))


def test_large_files_ship_what_was_hashed(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "dist", {"index.html": "x", "bundle.js": TEXT, "m.bin": NOISE})
    with write_archive(bundle.collect(root, Excludes()), source=str(root)) as packed:
        with zipfile.ZipFile(packed.file) as zf:
            assert zf.testzip() is None
        assert read_back(packed) == packed.digest == digest(bundle.collect(root, Excludes()))


# ------------------------------------------------------------- one rule for names


def test_names_that_differ_only_in_case_are_refused_by_every_reader(tmp_path: Path) -> None:
    said = (
        "'Logo.png' and 'logo.png' differ only in letter case or Unicode form, and a host that "
        "ignores case would serve one of them for both; rename or remove one of them."
    )
    root = write_tree(tmp_path / "dist", {**site(), "Logo.png": b"a", "logo.png": b"b"})
    with pytest.raises(BundleError) as caught:
        bundle.collect(root, Excludes())
    assert str(caught.value) == f"The bundle at {root} cannot be used: {said}"
    failures = AppDeployProvider().check({}, {"app_id": "a", "bundle": str(root)}).failures
    assert [f.reason for f in failures] == [f"The bundle at {root} cannot be used: {said}"]

    packed = tmp_path / "site.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for name, data in {**site(), "logo.png": "b", "Logo.png": "a"}.items():
            zf.writestr(name, data)
    failures = AppDeployProvider().check({}, {"app_id": "a", "bundle": str(packed)}).failures
    assert [f.reason for f in failures] == [f"The bundle at {packed} cannot be used: {said}"]
    with packed.open("rb") as handle, pytest.raises(BundleError) as caught:
        collect_archive(handle, "the service's copy", Excludes(), APP_LIMITS)
    assert str(caught.value) == f"The bundle at the service's copy cannot be used: {said}"


def test_every_archive_the_provider_writes_it_reads_back(tmp_path: Path) -> None:
    """Names that look alike but fold apart (folders differing in case, accents) ship and read
    back to the same digest; what the writer takes, the reader takes."""
    tree = {
        **site(),
        "A/x.css": "x",
        "a/y.css": "y",
        "café.txt": "nfc",
        "ﬁle.txt": "ligature",  # folds to file.txt
        "Ünïcode/ß.txt": "s",
        ".ENV": "SECRET=1",
    }
    root = write_tree(tmp_path / "dist", tree)
    files = bundle.collect(root, Excludes())
    assert ".ENV" not in [f.rel for f in files]
    with write_archive(files, source=str(root)) as packed:
        assert read_back(packed) == packed.digest == digest(files)
    write_tree(root, {"file.TXT": "clash"})
    with pytest.raises(BundleError, match=r"'file\.TXT' and 'ﬁle\.txt' differ only in letter case"):
        bundle.collect(root, Excludes())


@pytest.mark.parametrize("name", ["a\\b.css", "C:notes.txt"])
def test_a_name_windows_tools_misread_is_refused_in_a_folder_as_in_a_zip(
    tmp_path: Path, name: str
) -> None:
    said = (
        f"the name '{name}' has a backslash or begins with a drive letter, which unzip tools on "
        "Windows take for a folder or a drive; rename it."
    )
    root = write_tree(tmp_path / "dist", {**site(), name: "x"})
    packed = tmp_path / "site.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for rel, text in {**site(), name: "x"}.items():
            zf.writestr(rel, text)
    for source in (root, packed):
        failures = AppDeployProvider().check({}, {"app_id": "a", "bundle": str(source)}).failures
        assert [f.reason for f in failures] == [f"The bundle at {source} cannot be used: {said}"]


# ------------------------------------------------------ zips that are damaged or hostile

UNREADABLE_SAYS = "create the zip again, or use the folder it was made from."


def zipped(tmp_path: Path, files: dict[str, str], name: str = "bundle.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return path


def header_disagrees(path: Path) -> Path:
    """The first entry's local header renamed (upper case), its directory entry left alone."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"PK\x03\x04"
    length = struct.unpack_from("<H", data, 26)[0]
    data[30 : 30 + length] = bytes(data[30 : 30 + length]).upper()
    path.write_bytes(bytes(data))
    return path


def end_records(entries: int, directory: int, *, zip64: bool) -> bytes:
    """The end of a zip claiming ``entries`` entries in a central directory of ``directory``
    bytes just before it: the ZIP64 record and its locator, or the classic record alone."""
    if not zip64:
        return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, directory, 0, 0)
    return (
        struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, directory, 0)
        + struct.pack("<4sLQL", b"PK\x06\x07", 0, directory, 1)
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    )


def claiming(path: Path, entries: int, directory: int, *, zip64: bool) -> Path:
    """A zip whose central directory is a hole of ``directory`` bytes (sparse, so cheap) and
    whose end records claim ``entries`` entries in it: zipfile would read the hole whole."""
    with path.open("wb") as handle:
        handle.truncate(directory)
        handle.seek(directory)
        handle.write(end_records(entries, directory, zip64=zip64))
    return path


def peak_while(action: Callable[[], object]) -> tuple[int, BaseException | None]:
    """The most memory Python held while ``action`` ran, and what it raised."""
    tracemalloc.start()
    try:
        action()
        raised = None
    except BundleError as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def plugin_check(source: Path) -> list[str]:
    props = {"namespace_id": "ns", "name": "text_embed", "version": "1.0.0", "source": str(source)}
    return [f.reason for f in PluginDeploymentProvider().check({}, props).failures]


def app_check(source: Path) -> list[str]:
    return [
        f.reason
        for f in AppDeployProvider().check({}, {"app_id": "a", "bundle": str(source)}).failures
    ]


def test_a_zip_whose_header_disagrees_with_its_directory_is_one_sentence(tmp_path: Path) -> None:
    site_zip = header_disagrees(zipped(tmp_path, {**site(), "index.html": "<h1>x</h1>"}))
    first = zipfile.ZipFile(site_zip).infolist()[0].filename
    said = f"the entry {first!r} cannot be read (File name in directory {first!r} and header"
    [reason] = app_check(site_zip)
    assert reason.startswith(f"The bundle at {site_zip} cannot be used: {said}"), reason
    assert reason.endswith(UNREADABLE_SAYS) and "\n" not in reason

    plugin_zip = header_disagrees(zipped(tmp_path, plugin(), "plugin.zip"))
    [reason] = plugin_check(plugin_zip)
    assert reason.startswith(
        f"The plugin source at {plugin_zip} cannot be used: the entry 'manifest.py' cannot be "
        "read (File name in directory"
    ), reason
    assert reason.endswith(UNREADABLE_SAYS)

    with site_zip.open("rb") as handle, pytest.raises(BundleError) as caught:
        digest(collect_archive(handle, "the service's copy", Excludes(), APP_LIMITS))
    assert str(caught.value).startswith(f"The bundle at the service's copy cannot be used: {said}")


def test_a_zip_claiming_two_million_entries_is_refused_before_it_is_read(tmp_path: Path) -> None:
    hostile = claiming(tmp_path / "many.zip", 2_000_000, 2_000_000 * 46, zip64=True)
    peak, raised = peak_while(lambda: bundle.collect(hostile, Excludes()))
    assert str(raised) == (
        f"The bundle at {hostile} cannot be used: its central directory lists more than 200,000 "
        "entries (files and folders), the most a bundle's zip may hold."
    )
    assert peak < 2 * 1024 * 1024  # zipfile would have read the 92 MB directory first
    assert app_check(hostile) == [str(raised)]
    assert plugin_check(hostile) == [
        f"The plugin source at {hostile} cannot be used: its central directory lists more than "
        "2,000 entries (files and folders), the most a plugin source's zip may hold."
    ]


def test_a_zip_with_an_oversized_central_directory_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    hostile = claiming(tmp_path / "wide.zip", 10, 100 * 1024 * 1024, zip64=False)
    peak, raised = peak_while(lambda: bundle.collect(hostile, Excludes()))
    assert str(raised) == (
        f"The bundle at {hostile} cannot be used: its central directory takes 104,857,600 bytes, "
        "more than the 64 MiB a bundle's zip may have."
    )
    assert peak < 2 * 1024 * 1024


def test_a_zip_that_understates_its_entries_is_counted(tmp_path: Path) -> None:
    """The end record's count is the writer's word; the directory itself is what zipfile parses."""
    entry = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    directory = (entry + b"a") * 3_000
    hostile = tmp_path / "liar.zip"
    hostile.write_bytes(directory + end_records(1, len(directory), zip64=False))
    assert plugin_check(hostile) == [
        f"The plugin source at {hostile} cannot be used: its central directory lists more than "
        "2,000 entries (files and folders), the most a plugin source's zip may hold."
    ]


@pytest.mark.parametrize(
    ("harm", "says"),
    [
        ("not a zip", "it is neither a folder nor a .zip archive."),
        ("multi-disk", "it is not a readable zip archive (zipfiles that span multiple disks"),
        ("bad name", "it is not a readable zip archive ('utf-8' codec can't decode byte 0xff"),
        ("bad offset", "it is not a readable zip archive (Bad offset for central directory)"),
    ],
)
def test_every_way_a_zip_breaks_is_one_sentence(tmp_path: Path, harm: str, says: str) -> None:
    good = zipped(tmp_path, site()).read_bytes()
    data = {
        "not a zip": b"PK\x03\x04 not really",
        "multi-disk": b"x" * 80
        + end_records(1, 0, zip64=True).replace(
            struct.pack("<LQL", 0, 0, 1), struct.pack("<LQL", 1, 0, 1)
        ),
        "bad name": good.replace(b"app.js", b"app\xff\xfes"),
        "bad offset": b"PK" + end_records(1, 999, zip64=False),
    }[harm]
    if harm == "bad name":  # names said to be UTF-8, one of which is not
        patched = bytearray(data)
        at = patched.find(b"PK\x01\x02")
        while at >= 0:
            struct.pack_into(
                "<H", patched, at + 8, struct.unpack_from("<H", patched, at + 8)[0] | 0x800
            )
            at = patched.find(b"PK\x01\x02", at + 4)
        data = bytes(patched)
    hostile = tmp_path / "hostile.zip"
    hostile.write_bytes(data)
    [reason] = app_check(hostile)
    assert reason.startswith(f"The bundle at {hostile} cannot be used: {says}"), reason
    assert reason.endswith(".") and "\n" not in reason


def test_the_services_copy_damaged_or_hostile_gives_no_digest_and_no_traceback(
    tmp_path: Path,
) -> None:
    """What an import and a plugin adoption read: the service's copy, downloaded over HTTP."""
    folder = write_tree(tmp_path / "dist", site())
    good = zipped(tmp_path, site(), "good.zip").read_bytes()
    mismatched = header_disagrees(zipped(tmp_path, site(), "bad.zip")).read_bytes()
    many = end_records(2_000_000, 0, zip64=True)
    with (
        scripted_server() as server,
        MixpeekClient(api_key="sk_test_key", base_url=server.url) as api,
    ):
        for path, body in (("/good", good), ("/mismatched", mismatched), ("/many", many)):
            server.add("GET", path, Reply(raw=body, headers={"Content-Type": "application/zip"}))

        def remote(path: str) -> str | None:
            return remote_digest(api, server.url + path, Excludes(), APP_LIMITS)

        assert remote("/good") == digest(bundle.collect(folder, Excludes())).sha256
        assert remote("/mismatched") is None
        assert remote("/many") is None


def test_a_preview_shows_hostile_file_names_escaped_on_one_line() -> None:
    from mixpeek_pulumi.files import manifest

    forged = "x\nAppDeploy site: bundle: 0 changed (FORGED)\n\x1b[2J\x1b]0;pwned\x07.js"
    line = manifest.summary("bundle", {}, {forged: "00", "b" * 300: "11"})
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line
    assert "(FORGED)" in line  # shown, but on this line, escaped
    assert "…" in line and len(line) < 400
