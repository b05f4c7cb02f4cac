"""The plugin as a user gets it: the release archive `make dist` writes, installed into a fresh
PULUMI_HOME by `pulumi plugin install --file`, or downloaded by the engine itself from a
loopback HTTP server named by the `pluginDownloadURL` resource option. Either way the machine
has none of this project's virtualenvs on PATH, and a Pulumi YAML program goes up, shows no
changes and is destroyed against the emulator."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from mixpeek_pulumi import __version__
from mixpeek_pulumi.native import wire
from mixpeek_pulumi.native.schema import schema_json
from scripts import dist
from scripts.pulumi_cli import Cli
from scripts.pulumi_stack import CliStack
from tests.cli.conftest import example, open_stack
from tests.cli.test_native_provider import assert_example_lifecycle
from tests.emulator_fixture import EmulatorHandle

# The first test on a worker may freeze the plugin (a minute alone, longer on busy cores).
pytestmark = [pytest.mark.cli, pytest.mark.timeout(600)]

KEPT = ("HOME", "LANG", "LC_ALL", "TMPDIR", "MIXPEEK_PULUMI_STATE_DIR")


@pytest.fixture(scope="session")
def release_archive() -> Path:
    """This checkout's plugin archive, frozen once per source digest (shared with `make dist`)."""
    return dist.plugin_archive()


def without_our_virtualenvs(stack: CliStack) -> None:
    """The stack's commands see the CLI and the system's own folders only: no virtualenv, no
    PYTHONPATH, so the plugin can only be the archive's executable."""
    env = {k: v for k, v in stack.env.items() if k.startswith("PULUMI_") or k in KEPT}
    env.pop("PULUMI_PYTHON_CMD", None)
    env["PATH"] = os.pathsep.join([str(stack.cli.bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    for folder in env["PATH"].split(os.pathsep):
        assert not (Path(folder).parent / "pyvenv.cfg").exists(), folder
        assert not (Path(folder) / "pulumi-resource-mixpeek").exists(), folder
    stack.env = env


def plugins_of(stack: CliStack) -> list[Path]:
    found = (Path(stack.env["PULUMI_HOME"]) / "plugins").glob("resource-mixpeek-*")
    return sorted(p for p in found if p.is_dir())


def test_archive_has_the_plugin_at_its_top_level(release_archive: Path) -> None:
    """PyInstaller's one-folder build: the executable at the top (what the engine runs), its
    libraries under `_internal/`, nothing else but the licence."""
    assert release_archive.name == f"pulumi-resource-mixpeek-v{__version__}-linux-amd64.tar.gz"
    with tarfile.open(release_archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    top = {name for name in members if "/" not in name}
    assert top == {"pulumi-resource-mixpeek", "LICENSE"}
    assert all(name in top or name.startswith("_internal/") for name in members)
    assert members["pulumi-resource-mixpeek"].mode & 0o111
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


@pytest.fixture(scope="session")
def unpacked_plugin(release_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive unpacked as the engine unpacks it into a plugin's folder."""
    folder = tmp_path_factory.mktemp("plugin")
    with tarfile.open(release_archive) as tar:
        tar.extractall(folder, filter="tar")
    return folder / "pulumi-resource-mixpeek"


def test_the_schema_the_release_carries_is_the_one_its_sources_make(
    unpacked_plugin: Path, tmp_path: Path
) -> None:
    """A release build answers GetSchema from the schema frozen beside it, without loading the
    deploy layer: it must be the schema the provider itself makes."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.Popen([str(unpacked_plugin)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            answered = stub.GetSchema(provider_pb2.GetSchemaRequest(), timeout=60).schema
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert answered == schema_json()


@pytest.mark.parametrize("ending", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("tmpdir", ["empty", "unusable"])
def test_the_plugin_leaves_nothing_in_tmpdir_however_it_ends(
    unpacked_plugin: Path, tmp_path: Path, ending: signal.Signals, tmpdir: str
) -> None:
    """Nothing is unpacked at start, so nothing is left whatever ends the plugin, and a
    TMPDIR that takes no file (noexec, read-only, or as here not a folder at all) is no
    obstacle: the plugin starts and serves a Check, which loads the whole provider."""
    temp = tmp_path / "tmp"
    if tmpdir == "empty":
        temp.mkdir()
    else:
        temp.write_text("not a folder")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(temp)}
    proc = subprocess.Popen(
        [str(unpacked_plugin)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            checked = stub.Check(
                provider_pb2.CheckRequest(
                    urn="urn:pulumi:dev::p::mixpeek:index:AppDeploy::site",
                    news=wire.dump({"appId": "app_1", "bundle": str(tmp_path / "missing")}),
                ),
                timeout=60,
            )
        assert [f.property for f in checked.failures] == ["bundle"]
    finally:
        proc.send_signal(ending)
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    assert proc.returncode == -ending
    if tmpdir == "empty":
        assert list(temp.iterdir()) == []


def test_installed_from_the_release_archive(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path, release_archive: Path
) -> None:
    stack = open_stack(cli, emulator, example("native-yaml", tmp_path), tmp_path)
    without_our_virtualenvs(stack)
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    stack.env["TMPDIR"] = str(temp)
    assert plugins_of(stack) == []

    stack.install_plugin("resource", "mixpeek", __version__, release_archive)

    installed = plugins_of(stack)
    assert [p.name for p in installed] == [f"resource-mixpeek-v{__version__}"]
    assert (installed[0] / "pulumi-resource-mixpeek").is_file()
    listed = stack.run("plugin", "ls", stack=False).output
    assert any(
        line.split()[:3] == ["mixpeek", "resource", __version__] for line in listed.splitlines()
    )
    assert_example_lifecycle(stack, emulator, tmp_path, plugins=1)  # the YAML example has one
    # up, preview and destroy, each with the plugin started and ended by the engine
    assert list(temp.iterdir()) == []


class Releases(http.server.SimpleHTTPRequestHandler):
    """A release server on 127.0.0.1 that remembers what was asked of it."""

    asked: list[str]

    def do_GET(self) -> None:
        self.asked.append(self.path)
        super().do_GET()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def release_server(tmp_path: Path, release_archive: Path) -> Iterator[tuple[str, list[str]]]:
    served = tmp_path / "releases"
    served.mkdir()
    shutil.copyfile(release_archive, served / release_archive.name)
    asked: list[str] = []
    handler = type("Handler", (Releases,), {"asked": asked})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", asked
    finally:
        server.shutdown()
        server.server_close()


def with_download_url(manifest: Path, url: str) -> None:
    """Every resource of the YAML program pinned to this version and its plugin downloaded from
    ``url`` (a YAML program has no SDK to carry either; an explicit provider would, but would
    not read the stack's `mixpeek:` config)."""
    options = f"    options:\n      version: {__version__}\n      pluginDownloadURL: {url}\n"
    out: list[str] = []
    for line in manifest.read_text().splitlines(keepends=True):
        out.append(line)
        if line.startswith("    type: mixpeek:index:"):
            out.append(options)
    manifest.write_text("".join(out))


def test_downloaded_by_the_engine_from_the_plugin_download_url(
    cli: Cli,
    emulator: EmulatorHandle,
    tmp_path: Path,
    release_server: tuple[str, list[str]],
) -> None:
    url, asked = release_server
    project = example("native-yaml", tmp_path)
    with_download_url(project / "Pulumi.yaml", url)
    stack = open_stack(cli, emulator, project, tmp_path)
    without_our_virtualenvs(stack)
    assert plugins_of(stack) == []

    assert_example_lifecycle(stack, emulator, tmp_path, plugins=1)  # the YAML example has one

    assert f"/{dist.archive_name(__version__)}" in asked
    # The version the program pins is what `pulumi about` reports.
    about = [line.split() for line in stack.run("about").lines]
    assert ["resource", "mixpeek", __version__] in about
    assert [p.name for p in plugins_of(stack)] == [f"resource-mixpeek-v{__version__}"]
