"""`make demo` as a user types it, with a build of their own: `make demo BUNDLE=... APP_ID=...
VERIFY_TEXT=...` deploys that folder, promotes it and finds the text on the live production
site. Run in a copy of the repository's demo files (the virtualenv shared), so the demo's
state folder and stack file are the copy's, never the checkout's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.pulumi_cli import ROOT, Cli
from tests.sites import write_tree

pytestmark = pytest.mark.cli


def demo_clone(target: Path) -> Path:
    """What `make demo` reads, copied with its times (an older pyproject.toml than the
    virtualenv's install stamp, so make installs nothing)."""
    target.mkdir()
    for name in ("Makefile", "Pulumi.yaml", "pyproject.toml", "sdk/python/pyproject.toml"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    ignored = shutil.ignore_patterns("__pycache__", "node_modules", "Pulumi.*.yaml")
    for folder in ("scripts", "examples", "tests", "tools"):
        shutil.copytree(ROOT / folder, target / folder, ignore=ignored)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def test_make_demo_deploys_the_build_given_on_the_command_line(cli: Cli, tmp_path: Path) -> None:
    clone = demo_clone(tmp_path / "clone")
    build = write_tree(
        tmp_path / "my shop" / "dist",
        {"index.html": "<!doctype html><h1>Welcome to the shop of 7f3a</h1>", "app.js": "1;"},
    )

    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(clone),
            "demo",
            f"BUNDLE={build}",
            "APP_ID=app_my_shop",
            "VERIFY_TEXT=the shop of 7f3a",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"Deploying your build at {build} to app_my_shop" in said
    assert "Using the Pulumi CLI" in said, said  # the real engine, not the suite's stand-in
    # Only this build holds the text, so a verified promotion is this build, live.
    assert re.search(r"^\s*verified\s+True$", said, re.MULTILINE), said
    assert "verified production: 3 checks in a row passed" in said, said


def test_make_demo_refuses_a_bundle_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "no such build"
    done = subprocess.run(
        [ROOT / ".venv" / "bin" / "python", "-m", "scripts.demo"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MIXPEEK_DEMO_BUNDLE": str(missing)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"make demo cannot start: BUNDLE={missing} is neither a folder nor a .zip file (it was "
        f"looked for at {missing}); give the folder your build writes, the one with index.html."
    ]
