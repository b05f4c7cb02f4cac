"""The real Pulumi CLI (found or built by `make pulumi`), a file backend per test, the emulator."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from mixpeek_pulumi import __version__
from scripts import node_toolchain, pulumi_cli
from scripts.pulumi_cli import Cli
from scripts.pulumi_stack import CliStack
from tests.emulator_fixture import EmulatorHandle
from tests.engine import PROJECT_ROOT

PASSPHRASE = "cli-test-passphrase"


@pytest.fixture(scope="session")
def cli() -> Cli:
    found = pulumi_cli.locate()
    if found is not None:
        return found
    if shutil.which("go") is not None:
        pytest.fail(
            "Go is installed but there is no Pulumi CLI: `make pulumi` builds it (make test "
            "runs it first); see its output for the reason."
        )
    pytest.skip("There is no Pulumi CLI and no Go to build one (`make pulumi` says why).")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """@pulumi/pulumi and TypeScript from npm (`make node`), for the TypeScript example."""
    found, why = node_toolchain.ensure()
    if found is not None:
        return found
    if shutil.which("npm") is not None:
        pytest.fail(f"npm is installed but {why}")
    pytest.skip(why)


IGNORED = shutil.ignore_patterns("Pulumi.*.yaml", "__pycache__", "node_modules", "bin")


def point_virtualenv(manifest: Path) -> None:
    text = re.sub(r"(?m)^(\s*virtualenv:).*$", rf"\1 {sys.prefix}", manifest.read_text())
    manifest.write_text(text)


def root_project(target: Path) -> Path:
    """The demo project at the repository root, as a fresh clone has it."""
    shutil.copytree(PROJECT_ROOT / "examples", target / "examples", ignore=IGNORED)
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    point_virtualenv(target / "Pulumi.yaml")
    return target


def example(name: str, tmp_path: Path) -> Path:
    """An example's project folder, inside a copy of all examples (some share files)."""
    root = tmp_path / "examples"
    if not root.exists():
        shutil.copytree(PROJECT_ROOT / "examples", root, ignore=IGNORED)
        for manifest in root.glob("*/Pulumi.yaml"):
            point_virtualenv(manifest)
    return root / name


def open_stack(
    cli: Cli, emulator: EmulatorHandle, work_dir: Path, tmp_path: Path, stack: str = "dev"
) -> CliStack:
    """A stack on a file backend under ``tmp_path`` with the emulator as its Mixpeek API."""
    s = CliStack(
        cli,
        work_dir,
        stack,
        backend=tmp_path / "backend",
        passphrase=PASSPHRASE,
        env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path / "inflight")},
    )
    s.set_config("mixpeek:baseUrl", emulator.url)
    s.set_config("mixpeek:apiKey", emulator.api_key, secret=True)
    return s


NATIVE_PLUGIN = Path(sys.executable).parent / "pulumi-resource-mixpeek"


def open_native_stack(
    cli: Cli, emulator: EmulatorHandle, work_dir: Path, tmp_path: Path, stack: str = "dev"
) -> CliStack:
    """``open_stack`` with the native provider installed the way the README says, from the
    console script this checkout's virtualenv has."""
    s = open_stack(cli, emulator, work_dir, tmp_path, stack)
    s.install_plugin("resource", "mixpeek", __version__, NATIVE_PLUGIN)
    return s


SITE_PROGRAM = """\
import pulumi

from mixpeek_pulumi import AppDeploy

config = pulumi.Config()
site = AppDeploy(
    "site",
    app_id=config.require("appId"),
    bundle=config.require("bundle"),
    environment="staging",
    on_delete=config.get("onDelete") or "retain",
    poll_interval_seconds=0.2,
)
pulumi.export("deploy_id", site.deploy_id)
pulumi.export("version", site.version)
pulumi.export("previous_version", site.previous_version)
"""


def site_project(folder: Path, name: str = "cli-site") -> Path:
    """A one-resource project whose bundle and on_delete come from stack config."""
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text(
        f"name: {name}\nruntime:\n  name: python\n  options:\n    virtualenv: {sys.prefix}\n"
    )
    (folder / "__main__.py").write_text(SITE_PROGRAM)
    return folder
