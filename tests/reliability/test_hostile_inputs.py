"""Hostile and careless input, class by class, through the real provider host and the engine
stand-in against the emulator: each ends in one sentence naming the field or the file before
anything is sent, or in a deploy the service accepts that ships no secret. The provider's
temporary folder is empty afterwards. The run is recorded as a table in docs/reliability.md.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pulumi
import pytest

from mixpeek_pulumi import (
    App,
    AppDeploy,
    AppDomain,
    AppDomainVerification,
    AppPromotion,
    PluginDeployment,
)
from mixpeek_pulumi.errors import InputError
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.engine import EngineError, open_stack, run_program
from tests.reliability.docs import normalize, section, write_section, writing
from tests.sites import plugin, site, write_tree

Outcome = Literal["refused", "shipped", "failed"]
SECRET = "TOKEN=hunter2-do-not-ship"


@dataclass
class Hostile:
    kind: str
    case: str
    build: Callable[[Path, str], tuple[Callable[[], None], dict[str, str]]]
    expect: Outcome
    says: str
    step: str = "check"
    """Where a refusal happens: settings are read when first used, at create."""

    @property
    def id(self) -> str:
        return "-".join(self.case.lower().replace("'", "").split())[:60]


def deploy(bundle: Path | str, app_id: str, **extra: Any) -> Callable[[], None]:
    def program() -> None:
        d = AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging", **extra)
        pulumi.export("deploy_id", d.deploy_id)

    return program


def tree(tmp: Path, extra: dict[str, str | bytes]) -> Path:
    return write_tree(tmp / "dist", {**site(), **extra})


def zipped(
    tmp: Path, entries: list[tuple[str, bytes]], patch: Callable[[bytes], bytes] = bytes
) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    path = tmp / "bundle.zip"
    path.write_bytes(patch(buffer.getvalue()))
    return path


def _flag(data: bytes, offset: int, bits: int) -> bytes:
    out = bytearray(data)
    for start, where in ((out.find(b"PK\x03\x04"), offset), (out.find(b"PK\x01\x02"), offset + 2)):
        struct.pack_into(
            "<H", out, start + where, struct.unpack_from("<H", out, start + where)[0] | bits
        )
    return bytes(out)


def _linked(tmp: Path, link: str, target: str) -> Path:
    root = tree(tmp, {target: SECRET})
    (root / link).symlink_to(root / target)
    return root


def _loop(tmp: Path) -> Path:
    root = tree(tmp, {})
    (root / "assets" / "again").symlink_to(root)
    return root


def _plugin_loop(tmp: Path) -> Path:
    root = write_tree(tmp / "plugin", plugin())
    (root / "models").mkdir()
    (root / "models" / "up").symlink_to(root)
    return root


def _plugin(source: Path, ns: str, version: str = "1.0.0") -> Callable[[], None]:
    def program() -> None:
        PluginDeployment(
            "p", namespace_id=ns, name="text_embed", version=version, source=str(source)
        )

    return program


def _promote(app_id: str, version: Any) -> Callable[[], None]:
    def program() -> None:
        AppPromotion("prod", app_id=app_id, version=version)

    return program


def _app(slug: str) -> Callable[[], None]:
    def program() -> None:
        App(
            "app",
            slug=slug,
            meta={"title": "Hostile"},
            auth_config={"mode": "password", "password": "s3cretpass"},
        )

    return program


def _domain(app_id: str, domain: str) -> Callable[[], None]:
    def program() -> None:
        AppDomain("d", app_id=app_id, domain=domain)

    return program


def _verification(app_id: str, domain: str) -> Callable[[], None]:
    def program() -> None:
        AppDomainVerification("v", app_id=app_id, domain=domain)

    return program


def _big_plugin(tmp: Path) -> Path:
    root = write_tree(tmp / "plugin", plugin())
    with (root / "weights.bin").open("wb") as handle:
        handle.truncate(501 * 1024 * 1024)  # sparse: refused by size before a byte is read
    return root


def program_for(case: str) -> Callable[[Path, str], tuple[Callable[[], None], dict[str, str]]]:
    """Each class of hostile input as a program (and any provider environment it needs)."""
    none: dict[str, str] = {}
    ten_mib = b"\0" * (10 * 1024 * 1024)
    builds: dict[str, Callable[[Path, str], tuple[Callable[[], None], dict[str, str]]]] = {
        "link to .env": lambda t, a: (deploy(_linked(t, "config.txt", ".env"), a), none),
        "link to id_rsa": lambda t, a: (deploy(_linked(t, "key.txt", "id_rsa"), a), none),
        "secrets in other cases": lambda t, a: (
            deploy(
                tree(
                    t,
                    {
                        ".ENV": SECRET,
                        "ID_RSA": SECRET,
                        "Server.PEM": SECRET,
                        "Credentials.json": SECRET,
                        ".Git/config": SECRET,
                        ".ｅｎｖ": SECRET,
                    },
                ),
                a,
            ),
            none,
        ),
        "symlink loop in a bundle": lambda t, a: (deploy(_loop(t), a), none),
        "symlink loop in a plugin": lambda t, a: (_plugin(_plugin_loop(t), "ns_loop"), none),
        "symlinked folder": lambda t, a: (deploy(_mirrored(t), a), none),
        "zip with a bad CRC": lambda t, a: (
            deploy(zipped(t, [("index.html", b"<h1>x</h1>" * 50)], _bad_crc), a),
            none,
        ),
        "zip with bzip2 entries": lambda t, a: (
            deploy(zipped(t, [("index.html", b"x")], lambda d: _method(d, 12)), a),
            none,
        ),
        "zip with an encrypted entry": lambda t, a: (
            deploy(zipped(t, [("index.html", b"x")], lambda d: _flag(d, 6, 0x1)), a),
            none,
        ),
        "zip bomb of many entries": lambda t, a: (
            deploy(
                zipped(
                    t,
                    [("index.html", b"x")] + [(f"z{i}", ten_mib[: 900 * 1024]) for i in range(40)],
                ),
                a,
            ),
            none,
        ),
        "zip with index.html twice": lambda t, a: (
            deploy(zipped(t, [("index.html", b"a"), ("./index.html", b"b")]), a),
            none,
        ),
        "zip whose header disagrees with its directory": lambda t, a: (
            deploy(zipped(t, [("index.html", b"<h1>x</h1>")], _renamed_header), a),
            none,
        ),
        "zip claiming 2 million entries": lambda t, a: (deploy(_claiming(t, 2_000_000), a), none),
        "names that differ only in case": lambda t, a: (
            deploy(tree(t, {"Logo.png": b"a", "logo.png": b"b"}), a),
            none,
        ),
        "plugin source over 500 MB": lambda t, a: (_plugin(_big_plugin(t), "ns_big"), none),
        "version=True": lambda t, a: (_promote(a, True), none),
        "slug '../admin' beside a password": lambda t, a: (_app("../admin"), none),
        "domain given as a URL": lambda t, a: (_domain(a, "https://search.acme.com/x"), none),
        "domain under localhost": lambda t, a: (_verification(a, "admin.localhost"), none),
        "full-width plugin version": lambda t, a: (
            _plugin(write_tree(t / "plugin", plugin()), "ns_fw", version="１.０.０"),
            none,
        ),
        "app_id of '..'": lambda t, a: (deploy(tree(t, {}), ".."), none),
        "timeout_seconds=inf": lambda t, a: (
            deploy(tree(t, {}), a, timeout_seconds=float("inf")),
            none,
        ),
        "poll_interval_seconds=1e-9": lambda t, a: (
            deploy(tree(t, {}), a, poll_interval_seconds=1e-9),
            none,
        ),
        "base_url of ftp://": lambda t, a: (
            deploy(tree(t, {}), a, base_url="ftp://files.example"),
            none,
        ),
        "credentials in base_url": lambda t, a: (
            deploy(tree(t, {}), a, base_url="http://admin:s3cretpass@127.0.0.1:9"),
            none,
        ),
        "MIXPEEK_HTTP_READ_TIMEOUT=nan": lambda t, a: (
            deploy(tree(t, {}), a),
            {"MIXPEEK_HTTP_READ_TIMEOUT": "nan"},
        ),
    }
    return builds[case]


def _mirrored(tmp: Path) -> Path:
    root = tree(tmp, {})
    (root / "shared").mkdir()
    (root / "shared" / "logo.svg").write_text("<svg/>")
    (root / "static").symlink_to(root / "shared")
    return root


def _bad_crc(data: bytes) -> bytes:
    out = bytearray(data)
    for start, at in ((out.find(b"PK\x03\x04"), 14), (out.find(b"PK\x01\x02"), 16)):
        out[start + at : start + at + 4] = b"\xde\xad\xbe\xef"
    return bytes(out)


def _renamed_header(data: bytes) -> bytes:
    """The first entry's local header names it in upper case; its directory entry does not."""
    out = bytearray(data)
    start = out.find(b"PK\x03\x04")
    length = struct.unpack_from("<H", out, start + 26)[0]
    out[start + 30 : start + 30 + length] = bytes(out[start + 30 : start + 30 + length]).upper()
    return bytes(out)


def _claiming(tmp: Path, entries: int) -> Path:
    """A zip that is only its end records, the ZIP64 one claiming ``entries`` entries."""
    path = tmp / "bundle.zip"
    path.write_bytes(
        struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, 0, 0)
        + struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    )
    return path


def _method(data: bytes, method: int) -> bytes:
    out = bytearray(data)
    for start, at in ((out.find(b"PK\x03\x04"), 8), (out.find(b"PK\x01\x02"), 10)):
        struct.pack_into("<H", out, start + at, method)
    return bytes(out)


def hostile(kind: str, case: str, expect: Outcome, says: str, step: str = "check") -> Hostile:
    return Hostile(kind, case, program_for(case), expect, says, step)


CASES = [
    hostile(
        "secret files",
        "link to .env",
        "refused",
        "the symlink config.txt points to .env, which is left out",
    ),
    hostile("secret files", "link to id_rsa", "refused", "the symlink key.txt points to id_rsa"),
    hostile("secret files", "secrets in other cases", "shipped", ""),
    hostile("links", "symlink loop in a bundle", "refused", "the symlink assets/again"),
    hostile("links", "symlink loop in a plugin", "refused", "the symlink models/up"),
    hostile("links", "symlinked folder", "shipped", ""),
    hostile("archives", "zip with a bad CRC", "refused", "the entry 'index.html' cannot be read"),
    hostile("archives", "zip with bzip2 entries", "refused", "uses compression method 12"),
    hostile(
        "archives", "zip with an encrypted entry", "refused", "the entry 'index.html' is encrypted"
    ),
    hostile("archives", "zip bomb of many entries", "refused", "which is a zip bomb"),
    hostile(
        "archives",
        "zip with index.html twice",
        "refused",
        "the entry 'index.html' appears more than once",
    ),
    hostile("sizes", "plugin source over 500 MB", "refused", "more than 500 MiB"),
    hostile("numbers", "version=True", "refused", "version: must be a whole number, not a boolean"),
    hostile("ids", "full-width plugin version", "refused", "version: String should match pattern"),
    hostile("ids", "app_id of '..'", "refused", "app_id: must name an object, not '.' or '..'"),
    hostile(
        "numbers", "timeout_seconds=inf", "refused", "timeout_seconds: must be a finite number"
    ),
    hostile(
        "numbers",
        "poll_interval_seconds=1e-9",
        "refused",
        "poll_interval_seconds: must be at least 0.05.",
    ),
    hostile(
        "urls",
        "base_url of ftp://",
        "refused",
        "base_url: cannot be the Mixpeek endpoint: it is not an http(s) URL",
    ),
    hostile(
        "urls",
        "credentials in base_url",
        "refused",
        "it has a user name or password in it; put the API key in `mixpeek:apiKey`",
    ),
    hostile(
        "settings",
        "MIXPEEK_HTTP_READ_TIMEOUT=nan",
        "refused",
        "MIXPEEK_HTTP_READ_TIMEOUT must be a number of seconds from 1 to 3600, not 'nan'",
        step="check",  # the key check needs the setting: a bad one fails the preview
    ),
    hostile(
        "archives",
        "zip whose header disagrees with its directory",
        "refused",
        "the entry 'index.html' cannot be read (File name in directory 'index.html' and header",
    ),
    hostile(
        "archives",
        "zip claiming 2 million entries",
        "refused",
        "its central directory lists more than 200,000 entries (files and folders)",
    ),
    hostile(
        "names",
        "names that differ only in case",
        "refused",
        "'Logo.png' and 'logo.png' differ only in letter case or Unicode form",
    ),
    hostile("app settings", "slug '../admin' beside a password", "refused", "is not a slug"),
    hostile("app settings", "domain given as a URL", "refused", "is not a hostname"),
    hostile("app settings", "domain under localhost", "refused", "is under localhost"),
]
ROWS: dict[str, tuple[str, str]] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Hostile, emulator: EmulatorHandle, tmp_path: Path) -> None:
    scratch = tmp_path / "provider-tmp"
    scratch.mkdir()
    app_id = emulator.create_app("hostile-site")
    program, env = case.build(tmp_path, app_id)
    stack = open_stack(emulator, tmp_path, env={"TMPDIR": str(scratch), **env})
    before = len(emulator.requests())
    try:
        outcome, step = "success", ""
        try:
            run_program(stack.engine, program)
        except EngineError as exc:
            outcome, step = exc.headline, exc.op
        except InputError as exc:  # refused in the program itself, before the engine
            outcome, step = str(exc), "check"
    finally:
        stack.host.close()
    sent = emulator.requests()[before:]
    assert os.listdir(scratch) == []
    if case.expect == "refused":
        assert step == case.step, f"{step}: {outcome}"
        assert case.says in outcome, outcome
        assert outcome.endswith(".") and "\n" not in outcome
        assert "s3cretpass" not in outcome
        assert sent == []
        ROWS[case.id] = (outcome, "nothing")
    else:
        assert outcome == "success", outcome
        names = shipped(emulator, app_id)
        assert not {n for n in names if "hunter2" in read(emulator, app_id, n)}
        ROWS[case.id] = (
            "deployed; shipped " + ", ".join(sorted(names)),
            f"{len(sent)} requests, no secret",
        )


def shipped(emulator: EmulatorHandle, app_id: str) -> list[str]:
    state = emulator.running.emulator.store.state
    key = next(d.bundle_s3_key for d in state.deploys.values() if d.app_id == app_id)
    with zipfile.ZipFile(emulator.running.emulator.objects.path(key or "")) as zf:
        return zf.namelist()


def read(emulator: EmulatorHandle, app_id: str, name: str) -> str:
    state = emulator.running.emulator.store.state
    key = next(d.bundle_s3_key for d in state.deploys.values() if d.app_id == app_id)
    with zipfile.ZipFile(emulator.running.emulator.objects.path(key or "")) as zf:
        return zf.read(name).decode(errors="replace")


def test_an_interrupted_upload_leaves_nothing_in_the_temporary_folder(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The archive is an unnamed temporary file: a provider killed mid-upload leaves nothing."""
    scratch = tmp_path / "provider-tmp"
    scratch.mkdir()
    app_id = emulator.create_app("killed-site")
    emulator.fault(method="PUT", path="/_storage/*", action="delay", delay=60.0)
    stack = open_stack(emulator, tmp_path, env={"TMPDIR": str(scratch)})
    big = tree(tmp_path, {"media.bin": os.urandom(8 * 1024 * 1024)})
    uploading = f"/v1/apps/{app_id}/deploy/upload-url"

    def kill_when_uploading() -> None:
        if wait_until(lambda: emulator.count("POST", uploading) == 1, timeout=60):
            stack.host.process.send_signal(signal.SIGTERM)

    killer = threading.Thread(target=kill_when_uploading, daemon=True)
    killer.start()
    try:
        with pytest.raises(EngineError):
            run_program(stack.engine, deploy(big, app_id))
    finally:
        killer.join(timeout=60)
        stack.host.close()
    assert stack.host.process.returncode == -signal.SIGTERM
    assert os.listdir(scratch) == []
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 0


def test_a_redirect_from_storage_is_a_refusal_not_a_success(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("moved-site")
    emulator.fault(
        method="PUT", path="/_storage/*", status=307, times=10, raw="", content_type="text/plain"
    )
    stack = open_stack(emulator, tmp_path)
    try:
        with pytest.raises(EngineError) as info:
            run_program(stack.engine, deploy(tree(tmp_path, {}), app_id))
    finally:
        stack.host.close()
    assert "PUT 127.0.0.1" in info.value.headline and "HTTP 307" in info.value.headline
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 0


def test_the_committed_table_lists_every_class() -> None:
    if writing():
        assert len(ROWS) == len(CASES), "run every case to write the table"
        lines = [
            "## Hostile input",
            "",
            "Generated by `make reliability` from `tests/reliability/test_hostile_inputs.py`: each",
            "class of hostile or careless input, through the real provider host and the engine",
            "stand-in against `mixpeek-emulator`. *What the user sees* is the first line of the",
            "error (`pulumi preview` shows the same, since `check` refuses it), or what was",
            "deployed. *What was sent* is what the emulator received.",
            "",
            "| # | input class | case | what the user sees | what was sent |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, case in enumerate(CASES, 1):
            seen, sent = ROWS[case.id]
            lines.append(f"| {i} | {case.kind} | {case.case} | {normalize(seen)} | {sent} |")
        write_section("hostile-input", lines)
    text = section("hostile-input")
    for case in CASES:
        assert f"| {case.kind} | {case.case} |" in text, (
            f"docs/reliability.md lacks {case.id}; run make reliability"
        )
