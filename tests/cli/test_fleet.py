"""A CI fleet through the real CLI: several runners, each with its own HOME, PULUMI_HOME,
TMPDIR, cache and checkout, on one S3 state backend (moto's server on loopback). Jobs of an
older commit are refused, a runner cut by Ctrl-C is picked up by the next, and after a runner
killed with SIGKILL leaves an older build that takes over late, the next runner's ``up
--refresh`` names it and puts the newer bundle back."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mixpeek_pulumi import __version__
from scripts.pulumi_cli import Cli
from scripts.pulumi_stack import CliResult, CliStack
from tests.cli.conftest import NATIVE_PLUGIN, PASSPHRASE
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.gitrepo import checkout, commit, git
from tests.sites import site

pytestmark = pytest.mark.cli

PROJECT = """\
name: fleet
runtime: yaml
config:
  appId:
    type: string
  allowOlder:
    type: boolean
    default: false
resources:
  site:
    type: mixpeek:index:AppDeploy
    properties:
      appId: ${appId}
      bundle: ./site
      pollIntervalSeconds: 0.2
      allowOlderCommit: ${allowOlder}
outputs:
  deployId: ${site.deployId}
"""
DEPLOYS = "/v1/apps/*/deploy"


@pytest.fixture
def s3() -> Iterator[str]:
    """An S3 bucket on loopback, as a state backend URL the CLI takes."""
    import boto3  # type: ignore[import-untyped]
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="fleet",
        aws_secret_access_key="fleet",
    ).create_bucket(Bucket="state")
    try:
        yield f"s3://state?endpoint={endpoint}&use_path_style=true&region=us-east-1"
    finally:
        server.stop()


@dataclass
class Fleet:
    cli: Cli
    emulator: EmulatorHandle
    backend: str
    tmp: Path
    origin: Path
    app: str
    config: Path | None = None

    def runner(self, name: str, sha: str) -> CliStack:
        """A runner with nothing of its own but the checkout of ``sha`` and the stack config
        the repository would carry (its first runner writes it)."""
        root = self.tmp / name
        env = {
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "MIXPEEK_PULUMI_STATE_DIR": str(root / "journal"),
            "AWS_ACCESS_KEY_ID": "fleet",
            "AWS_SECRET_ACCESS_KEY": "fleet",
            "AWS_REGION": "us-east-1",
        }
        for folder in ("home", "tmp", "cache"):
            (root / folder).mkdir(parents=True)
        work = checkout(self.origin, root / "checkout", sha) / "infra"
        if self.config is not None:
            shutil.copy(self.config, work / "Pulumi.dev.yaml")
        stack = CliStack(
            self.cli, work, "dev", backend=self.backend, passphrase=PASSPHRASE, env=env,
            home=root / "pulumi-home",
        )  # fmt: skip
        stack.install_plugin("resource", "mixpeek", __version__, NATIVE_PLUGIN)
        if self.config is None:
            stack.set_config("mixpeek:baseUrl", self.emulator.url)
            stack.set_config("mixpeek:apiKey", self.emulator.api_key, secret=True)
            stack.set_config("appId", self.app)
            self.config = self.tmp / "Pulumi.dev.yaml"
            shutil.copy(work / "Pulumi.dev.yaml", self.config)
        return stack


@pytest.fixture
def fleet(cli: Cli, emulator: EmulatorHandle, s3: str, tmp_path: Path) -> Fleet:
    origin = tmp_path / "origin"
    (origin / "infra").mkdir(parents=True)
    (origin / "infra" / "Pulumi.yaml").write_text(PROJECT)
    git(origin, "init", "-q", "-b", "main")
    return Fleet(cli, emulator, s3, tmp_path, origin, emulator.create_app("fleet-site"))


def two_commits(fleet: Fleet) -> tuple[str, str]:
    return (
        commit(fleet.origin, site("v1"), folder="infra/site"),
        commit(fleet.origin, site("v2"), folder="infra/site"),
    )


def test_an_older_commit_is_refused_over_a_newer_one_unless_allowed(fleet: Fleet) -> None:
    c1, c2 = two_commits(fleet)
    newer = fleet.runner("runner-2", c2)
    assert newer.up().ok
    older = fleet.runner("runner-1", c1)

    late = older.up()

    assert not late.ok
    assert (
        f"refused to switch production of app {fleet.app} to commit {c1[:7]} (this bundle): it is "
        f"older than commit {c2[:7]}, which production serves now (version 1)"
    ) in late.output
    assert "set `allowOlderCommit` to true to roll back on purpose" in late.output
    assert fleet.emulator.count("POST", DEPLOYS) == 1
    older.set_config("allowOlder", "true")
    assert older.up().ok
    assert fleet.emulator.served_version(fleet.app, "production") == 2


def interrupted(stack: CliStack, emulator: EmulatorHandle, sig: signal.Signals) -> CliResult:
    """``pulumi up`` sent ``sig`` once its deploy is requested (the build is still running)."""
    before = emulator.count("POST", DEPLOYS)
    command = [str(stack.cli.pulumi), "up", "--yes", "--skip-preview", "--non-interactive"]
    result = CliResult("up", ok=False)
    with subprocess.Popen(
        [*command, "--stack", stack.stack],
        cwd=stack.work_dir,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert wait_until(lambda: emulator.count("POST", DEPLOYS) > before, timeout=60)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
        result.lines = out.splitlines()
        result.ok = proc.returncode == 0
    return result


def plugins_of(home: str) -> list[int]:
    """The live ``pulumi-resource-mixpeek`` processes a runner's PULUMI_HOME started."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if home in command and "pulumi-resource-mixpeek" in command and state != "Z":
            found.append(int(proc.name))
    return found


def test_a_runner_cut_by_ctrl_c_is_picked_up_by_the_next(fleet: Fleet) -> None:
    c1, _ = two_commits(fleet)
    fleet.emulator.timing(build_seconds=6)
    first = fleet.runner("runner-1", c1)
    cut = interrupted(first, fleet.emulator, signal.SIGINT)
    assert not cut.ok
    second = fleet.runner("runner-2", c1)
    up = second.up()
    assert up.ok, up.output
    deploy_id = second.outputs()["deployId"]
    assert f"re-attaching to deploy {deploy_id}" in up.output or "adopting deploy" in up.output
    assert fleet.emulator.count("POST", DEPLOYS) == 1


def test_an_older_build_left_by_a_killed_runner_is_undone_by_the_next_up(fleet: Fleet) -> None:
    c1, c2 = two_commits(fleet)
    fleet.emulator.timing(build_seconds=8)
    killed = fleet.runner("runner-1", c1)
    cut = interrupted(killed, fleet.emulator, signal.SIGKILL)
    assert not cut.ok
    # Its plugins notice the engine is gone and exit, instead of serving gRPC to nobody.
    home = str(fleet.tmp / "runner-1" / "pulumi-home")
    assert wait_until(lambda: not plugins_of(home), timeout=45), plugins_of(home)
    (older,) = [d for d in fleet.emulator.records().deploys]

    fleet.emulator.timing(build_seconds=0.4)
    newer = fleet.runner("runner-2", c2)
    newer.run("cancel", "--yes", check=False)  # the lock a killed run leaves behind
    up = newer.up(refresh=True)
    assert up.ok, up.output
    ours = newer.outputs()["deployId"]
    # The killed runner's build ends last, and the service puts it live.
    assert wait_until(lambda: fleet.emulator.served_version(fleet.app, "production") == 2, 60)

    third = fleet.runner("runner-3", c2)
    repaired = third.up(refresh=True)

    assert repaired.ok, repaired.output
    named = (
        f"production of app {fleet.app} serves deploy {older} (version 2, commit {c1[:7]}), not "
        f"deploy {ours} (version 1, commit {c2[:7]}), which this stack expects"
    )
    assert named in repaired.output
    assert fleet.emulator.served_version(fleet.app, "production") == 1
    assert third.preview(expect_no_changes=True).ok
