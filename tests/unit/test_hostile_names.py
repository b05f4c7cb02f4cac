"""File names that try to drive the terminal never reach a message raw: every refusal the
provider can print about a bundle or a plugin source, each provoked by a file (or folder, link,
zip entry) whose name carries ANSI escapes, a right-to-left override and a newline, shows that
name escaped as the preview's list of files shows it, on one line."""

from __future__ import annotations

import os
import stat
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from mixpeek_pulumi.errors import BundleError, ResourceError, safe_name
from mixpeek_pulumi.files import bundle, manifest
from mixpeek_pulumi.files.archive import write_archive
from mixpeek_pulumi.files.contents import digest
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.files.sources import Limits
from tests.sites import plugin, site, write_tree
from tests.unit.test_bundle import app_check, claiming, plugin_check

# Clears the screen, retitles the window, flips the rest of the line right to left, and starts
# a line of its own that looks like the provider's.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202eevil\nAppDeploy site: FORGED"
SHOWN = safe_name(HOSTILE)


def test_the_escape_is_visible_and_keeps_printable_text() -> None:
    assert SHOWN == "\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\nAppDeploy site: FORGED"
    assert safe_name("café/logo.png") == "café/logo.png"
    assert safe_name(SHOWN) == SHOWN  # escaping twice changes nothing
    cut = safe_name("a" * 200 + "/index.html", 40)
    assert len(cut) == 40 and cut.endswith("/index.html") and "…" in cut


def folder(tmp: Path, files: dict[str, str | bytes] | None = None, name: str = "dist") -> Path:
    return write_tree(tmp / name, {**site(), **(files or {})})


def zip_of(path: Path, entries: Sequence[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate entry it is asked for
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                zf.writestr(info, data)
    return path


def entry(name: str, **attributes: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def refused(action: Callable[[], object]) -> list[str]:
    with pytest.raises(BundleError) as caught:
        action()
    return [str(caught.value)]


# ------------------------------------------------------------------- folders and links


def special_file(tmp: Path) -> list[str]:
    root = folder(tmp)
    os.mkfifo(root / HOSTILE)
    return app_check(root)


def link_to_a_special_file(tmp: Path) -> list[str]:
    root = folder(tmp)
    os.mkfifo(root / "zz-pipe")
    (root / HOSTILE).symlink_to(root / "zz-pipe")
    return app_check(root)


def link_outside(tmp: Path) -> list[str]:
    root = folder(tmp)
    (tmp / "outside.txt").write_text("x")
    (root / HOSTILE).symlink_to(tmp / "outside.txt")
    return app_check(root)


def broken_link(tmp: Path) -> list[str]:
    root = folder(tmp)
    (root / HOSTILE).symlink_to(root / "nowhere")
    return app_check(root)


def looping_link(tmp: Path) -> list[str]:
    root = folder(tmp)
    (root / "sub").mkdir()
    (root / "sub" / HOSTILE).symlink_to(root)
    return app_check(root)


def link_to_a_secret(tmp: Path) -> list[str]:
    root = folder(tmp, {".env": "TOKEN=x"})
    (root / HOSTILE).symlink_to(root / ".env")
    return app_check(root)


def names_differing_in_case(tmp: Path) -> list[str]:
    return app_check(folder(tmp, {f"A{HOSTILE}.js": "a", f"a{HOSTILE}.js": "b"}))


def backslash_in_a_name(tmp: Path) -> list[str]:
    return app_check(folder(tmp, {f"{HOSTILE}\\x.css": "x"}))


def name_not_utf8(tmp: Path) -> list[str]:
    root = folder(tmp)
    (root / os.fsdecode(HOSTILE.encode() + b"\xff.js")).write_text("x")
    return app_check(root)


def folder_that_cannot_be_read(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    root = folder(tmp, {f"{HOSTILE}/a.js": "x"})
    scandir = os.scandir

    def denied(path: str) -> object:
        # As root no permission bits refuse a read: the OS's answer is given here instead.
        if path.endswith(HOSTILE):
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    return app_check(root)


def over_the_size_cap(tmp: Path) -> list[str]:
    root = folder(tmp, {HOSTILE: "x" * 100})
    limits = Limits(max_files=100, max_bytes=50)
    return refused(lambda: bundle.collect(root, Excludes(), limits))


def hostile_bundle_folder(tmp: Path) -> list[str]:
    return app_check(write_tree(tmp / HOSTILE, {"a.js": "no index.html here"}))


def missing_bundle(tmp: Path) -> list[str]:
    return app_check(tmp / HOSTILE)


def bundle_that_is_a_pipe(tmp: Path) -> list[str]:
    os.mkfifo(tmp / HOSTILE)
    return app_check(tmp / HOSTILE)


def nothing_left_after_exclusions(tmp: Path) -> list[str]:
    return app_check(write_tree(tmp / HOSTILE, {".env": "TOKEN=x"}))


# -------------------------------------------------------------- read and packed later


def file_gone_before_it_is_hashed(tmp: Path) -> list[str]:
    root = folder(tmp, {HOSTILE: "x"})
    files = bundle.collect(root, Excludes())
    (root / HOSTILE).unlink()
    return refused(lambda: digest(files))


def file_grown_before_it_is_hashed(tmp: Path) -> list[str]:
    root = folder(tmp, {HOSTILE: "x"})
    files = bundle.collect(root, Excludes())
    (root / HOSTILE).write_text("xx")
    return refused(lambda: digest(files))


def file_changed_while_packed(tmp: Path) -> list[str]:
    root = folder(tmp, {HOSTILE: "x"})
    files = bundle.collect(root, Excludes())
    (root / HOSTILE).write_text("xx")
    return refused(lambda: write_archive(files, source=str(root)))


def zip_over_its_cap(tmp: Path) -> list[str]:
    files = bundle.collect(folder(tmp), Excludes())
    return refused(lambda: write_archive(files, source=str(tmp / HOSTILE), max_bytes=10))


# --------------------------------------------------------------------------------- zips


def zip_entry_escaping(tmp: Path) -> list[str]:
    return app_check(zip_of(tmp / "a.zip", [("index.html", b"x"), (f"../{HOSTILE}", b"x")]))


def zip_entry_absolute(tmp: Path) -> list[str]:
    return app_check(zip_of(tmp / "a.zip", [("index.html", b"x"), (f"/{HOSTILE}", b"x")]))


def zip_entry_twice(tmp: Path) -> list[str]:
    return app_check(
        zip_of(tmp / "a.zip", [("index.html", b"x"), (HOSTILE, b"a"), (HOSTILE, b"b")])
    )


def zip_entries_differing_in_case(tmp: Path) -> list[str]:
    entries = [("index.html", b"x"), (f"A{HOSTILE}", b"a"), (f"a{HOSTILE}", b"b")]
    return app_check(zip_of(tmp / "a.zip", entries))


def zip_entry_encrypted(tmp: Path) -> list[str]:
    path = zip_of(tmp / "a.zip", [("index.html", b"x"), (HOSTILE, b"x")])
    data = bytearray(path.read_bytes())
    # zipfile writes no encrypted entries: the flag is set in the second directory entry.
    at = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)
    data[at + 8] |= 0x1
    path.write_bytes(bytes(data))
    return app_check(path)


def zip_entry_bzip2(tmp: Path) -> list[str]:
    info = entry(HOSTILE, compress_type=zipfile.ZIP_BZIP2)
    return app_check(zip_of(tmp / "a.zip", [("index.html", b"x"), (info, b"x")]))


def zip_entry_link(tmp: Path) -> list[str]:
    info = entry(HOSTILE, external_attr=(stat.S_IFLNK | 0o777) << 16)
    return app_check(zip_of(tmp / "a.zip", [("index.html", b"x"), (info, b"index.html")]))


def zip_entry_bomb(tmp: Path) -> list[str]:
    info = entry(HOSTILE, compress_type=zipfile.ZIP_DEFLATED)
    return app_check(zip_of(tmp / "a.zip", [("index.html", b"x"), (info, bytes(32 * 1024**2))]))


def zip_bomb_of_many_entries(tmp: Path) -> list[str]:
    entries = [("index.html", b"x")] + [(f"z{i}", bytes(1024**2)) for i in range(20)]
    return app_check(zip_of(tmp / f"{HOSTILE}.zip", entries))


def zip_entry_damaged(tmp: Path) -> list[str]:
    body = b"<h1>hello</h1>" * 40
    path = zip_of(tmp / "a.zip", [("index.html", b"x"), (entry(HOSTILE), body)])
    data = path.read_bytes()
    at = data.index(body)
    path.write_bytes(data[:at] + body.upper() + data[at + len(body) :])  # CRC no longer holds
    return app_check(path)


def zip_that_is_no_zip(tmp: Path) -> list[str]:
    (tmp / f"{HOSTILE}.zip").write_bytes(b"not a zip at all")
    return app_check(tmp / f"{HOSTILE}.zip")


def zip_claiming_too_many_entries(tmp: Path) -> list[str]:
    return app_check(claiming(tmp / f"{HOSTILE}.zip", 2_000_000, 0, zip64=True))


def zip_with_an_oversized_directory(tmp: Path) -> list[str]:
    return app_check(claiming(tmp / f"{HOSTILE}.zip", 10, 65 * 1024**2, zip64=True))


# ------------------------------------------------------------------------------ plugins


def plugin_file_with_a_blocked_import(tmp: Path) -> list[str]:
    return plugin_check(write_tree(tmp / "p", {**plugin(), f"{HOSTILE}.py": "import socket\n"}))


def plugin_without_its_manifest(tmp: Path) -> list[str]:
    return plugin_check(write_tree(tmp / HOSTILE, {"pipeline.py": "x = 1\n"}))


def plugin_without_realtime(tmp: Path) -> list[str]:
    files = {k: v for k, v in plugin().items() if k != "realtime.py"}
    return plugin_check(write_tree(tmp / HOSTILE, files))


# ----------------------------------------------------------------- beyond the refusals


def preview_of_changed_files(tmp: Path) -> list[str]:
    return [manifest.summary("bundle", {"a.js": "00"}, {"a.js": "11", HOSTILE: "22"})]


def file_error_in_an_operation(tmp: Path) -> list[str]:
    cause = FileNotFoundError(2, "No such file or directory", str(tmp / HOSTILE))
    return [str(ResourceError("AppDeploy", "site", cause))]


CASES: dict[str, Callable[..., list[str]]] = {
    f.__name__: f
    for f in (
        special_file,
        link_to_a_special_file,
        link_outside,
        broken_link,
        looping_link,
        link_to_a_secret,
        names_differing_in_case,
        backslash_in_a_name,
        name_not_utf8,
        folder_that_cannot_be_read,
        over_the_size_cap,
        hostile_bundle_folder,
        missing_bundle,
        bundle_that_is_a_pipe,
        nothing_left_after_exclusions,
        file_gone_before_it_is_hashed,
        file_grown_before_it_is_hashed,
        file_changed_while_packed,
        zip_over_its_cap,
        zip_entry_escaping,
        zip_entry_absolute,
        zip_entry_twice,
        zip_entries_differing_in_case,
        zip_entry_encrypted,
        zip_entry_bzip2,
        zip_entry_link,
        zip_entry_bomb,
        zip_bomb_of_many_entries,
        zip_entry_damaged,
        zip_that_is_no_zip,
        zip_claiming_too_many_entries,
        zip_with_an_oversized_directory,
        plugin_file_with_a_blocked_import,
        plugin_without_its_manifest,
        plugin_without_realtime,
        preview_of_changed_files,
        file_error_in_an_operation,
    )
}


@pytest.mark.parametrize("case", CASES)
def test_no_raw_control_character_of_a_name_reaches_the_message(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = CASES[case]
    args = (tmp_path, monkeypatch) if make.__code__.co_argcount == 2 else (tmp_path,)
    messages = make(*args)
    assert messages, "the hostile name was not refused"
    for message in messages:
        raw = sorted({f"U+{ord(c):04X}" for c in message if not c.isprintable()})
        assert not raw, f"{raw} reached the message: {message!r}"
        # Named, not dropped: the user can still tell which file it is.
        assert "\\x1b[2J" in message or "\\x1b]0;pwned" in message, message
