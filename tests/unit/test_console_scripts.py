"""The console scripts behave as console scripts do: `--help` and `--version` print and exit,
the emulator names the extra it needs, and it prints the id of every app it made."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from mixpeek_pulumi import __version__
from tests.emulator_fixture import wait_until

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def run(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )


PLUGIN = "import sys; from mixpeek_pulumi.native.server import main; main(sys.argv[1:])"
EMULATOR = "import sys; from mixpeek_emulator.__main__ import main; sys.exit(main(sys.argv[1:]))"
NO_EXTRA = "import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = None; " + EMULATOR


@pytest.mark.slow
def test_plugin_help_prints_and_exits_without_serving() -> None:
    for flag in ("--help", "-h"):
        done = run(PLUGIN, flag, timeout=20)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: pulumi-resource-mixpeek")
        assert f"pulumi plugin install resource mixpeek {__version__}" in done.stdout


def test_plugin_version() -> None:
    done = run(PLUGIN, "--version")
    assert (done.returncode, done.stdout) == (0, f"{__version__}\n")


def test_emulator_version_and_help_need_no_extra() -> None:
    version = run(NO_EXTRA, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("mixpeek-emulator ")
    helped = run(NO_EXTRA, "--help")
    assert helped.returncode == 0
    assert "--app my-site makes app_my_site" in " ".join(helped.stdout.split())


def test_emulator_without_the_extra_says_what_to_install() -> None:
    done = run(NO_EXTRA, "--api-key", "k")
    assert done.returncode == 2
    assert "pip install 'mixpeek-pulumi[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False  # the URL is printed before the server accepts connections


@pytest.mark.slow
def test_emulator_prints_the_id_and_the_live_sites_of_every_app_it_made() -> None:
    apps = ["--app", "my-site", "--app", "demo"]
    command = [sys.executable, "-c", EMULATOR, "--api-key", "k", *apps]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline().strip() for _ in range(11)]
            url = lines[0]
            port = url.rpartition(":")[2]
            assert wait_until(lambda: answers(f"{url}/_emulator/health"))
            served = httpx.get(f"{url}/_sites/app_demo/production", timeout=10)
            hosted = httpx.get(
                url, headers={"Host": f"demo.production.localhost:{port}"}, timeout=10
            )
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert url.startswith("http://127.0.0.1:")
    assert lines[1:3] == ["app app_my_site my-site", "app app_demo demo"]
    assert lines[3:] == [
        f"site app_my_site staging {url}/_sites/app_my_site/staging",
        f"host app_my_site staging http://my-site.staging.localhost:{port}/",
        f"site app_my_site production {url}/_sites/app_my_site/production",
        f"host app_my_site production http://my-site.production.localhost:{port}/",
        f"site app_demo staging {url}/_sites/app_demo/staging",
        f"host app_demo staging http://demo.staging.localhost:{port}/",
        f"site app_demo production {url}/_sites/app_demo/production",
        f"host app_demo production http://demo.production.localhost:{port}/",
    ]
    # The live sites themselves, serving nothing yet: the routes, not a 404 of an unknown path.
    nothing = "serves nothing: no version is deployed to production yet"
    assert served.text.startswith(f"production of app_demo {nothing}")
    assert hosted.text.startswith(f"demo.production.localhost {nothing}")
