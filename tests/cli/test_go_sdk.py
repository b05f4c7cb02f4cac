"""The generated Go SDK (sdk/go) builds and vets, and the Go example goes up, shows no changes
and is destroyed through the real CLI (served inline by the Go Automation API, since the Go
language host is not available)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.pulumi_cli import ROOT, Cli
from tests.cli.conftest import example, open_native_stack
from tests.cli.test_native_provider import assert_example_lifecycle
from tests.emulator_fixture import EmulatorHandle

# A cold Go build cache compiles the Pulumi Go SDK first (two minutes on 2 cores).
pytestmark = [pytest.mark.cli, pytest.mark.timeout(900)]


def go() -> str:
    found = shutil.which("go")
    if found is None:
        pytest.skip("Go is not installed, so the Go SDK cannot be built")
    return found


def go_run(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
    done = subprocess.run(
        [go(), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"go {' '.join(args)}: {done.stdout}{done.stderr}"


def test_go_sdk_builds_and_vets() -> None:
    go_run("build", "./...", cwd=ROOT / "sdk" / "go")
    go_run("vet", "./...", cwd=ROOT / "sdk" / "go")
    go_run("vet", ".", cwd=ROOT / "examples" / "native-go")


def test_go_example_goes_up_shows_no_changes_and_is_destroyed(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    go()
    project = example("native-go", tmp_path)
    shutil.copytree(ROOT / "sdk" / "go", tmp_path / "sdk" / "go")  # its go.mod's replace
    stack = open_native_stack(cli, emulator, project, tmp_path)
    assert stack.inline  # no pulumi-language-go here: the program serves itself
    stack.env["GOFLAGS"] = "-mod=readonly"
    assert_example_lifecycle(stack, emulator, tmp_path)
