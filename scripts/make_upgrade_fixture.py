"""Write the upgrade fixture: stacks the previous release wrote, for `tests/cli/test_upgrade.py`.

Users' stacks hold state written by the release they last ran; for the dynamic resources that
includes the pickled provider (``__provider``), which names our classes by module path. The
fixture is two stacks that release created, through the real Pulumi CLI, against a
mixpeek-emulator that keeps its state and uploads in a data folder:

- ``dynamic/``: a Python program with an AppDeploy to staging, an AppPromotion of its version to
  production and a PluginDeployment (``mixpeek_pulumi``'s dynamic resources);
- ``native/``: a Pulumi YAML program with the same three resources (``mixpeek:index:*``, the
  native provider ``pulumi-resource-mixpeek``);
- ``.pulumi/``: the local file backend holding both stacks (named ``upgrade``), whose secrets
  provider is the passphrase ``PASSPHRASE`` below (``Pulumi.upgrade.yaml`` holds its salt);
- ``emulator/``: the emulator's ``--data-dir`` (its ``state.json`` and the uploaded archives).

The endpoint and API key reach both providers through MIXPEEK_BASE_URL and MIXPEEK_API_KEY, never
stack config, so nothing in the state pins the port this run's emulator had. The apps are seeded
by the emulator (``--app``), so their ids are fixed and written into the programs.

There is one fixture per release that wrote stacks users may still have: release 0.1.0
(c8e5ff0), and the last commit before the provider's layers were redrawn (cf20fc9). To
regenerate one (after `make setup` and `make pulumi`), from the repository root, with a
checkout of the commit that must have written the stacks:

    git worktree add --detach /tmp/old-release c8e5ff0
    .venv/bin/python -m scripts.make_upgrade_fixture --old-release /tmp/old-release
    git worktree remove /tmp/old-release

Everything runs with ``PYTHONPATH`` pointing at that checkout (its ``provider/``, ``emulator/``
and root): the program, the dynamic-provider host and the native plugin (the virtualenv's
``pulumi-resource-mixpeek`` console script) all import ``mixpeek_pulumi`` from there; the script
checks that they do before it starts. The work happens in a temporary folder outside any git
work tree; the result replaces ``tests/data/upgrade/release-<version>-<ref>/``, where ``<ref>`` is
the checkout's short commit and ``<version>`` the version it declares.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from scripts.pulumi_cli import ROOT, Cli, locate
from scripts.pulumi_stack import CliStack

UPGRADES = ROOT / "tests" / "data" / "upgrade"
FIXTURES = sorted(p for p in UPGRADES.glob("release-*") if p.is_dir())
"""Every fixture: the stacks of each release users may still have, oldest first."""
FIXTURE = UPGRADES / "release-0.1.0-c8e5ff0"
"""The first release's: the oldest state any user's stack may hold."""
PASSPHRASE = "upgrade-fixture-passphrase"
API_KEY = "sk_test_UPGRADE_FIXTURE_KEY_0c8e5ff0"
"""The emulator's key: a test key, given to the providers only through MIXPEEK_API_KEY."""
STACK = "upgrade"
PROJECTS = ("dynamic", "native")
APPS = {"dynamic": "app_upgrade_dynamic", "native": "app_upgrade_native"}
NAMESPACES = {"dynamic": "ns_upgrade_dynamic", "native": "ns_upgrade_native"}
MAX_BYTES = 1_000_000

SITE = {
    "index.html": "<!doctype html><h1>Hello from release 0.1.0</h1><script src='app.js'></script>",
    "app.js": "console.log('hello');\n",
    "assets/style.css": "h1 { color: teal; }\n",
}
PLUGIN = {
    "manifest.py": "feature_extractor_name = 'text_embed'\nversion = '1.0.0'\n",
    "pipeline.py": "def build_steps():\n    return []\n",
    "realtime.py": "def run_inference(inputs):\n    return {'embedding': [0.0]}\n",
}

DYNAMIC_MANIFEST = """\
name: mixpeek-upgrade-dynamic
description: Written by mixpeek-pulumi release {version} ({ref}); see ../README.md.
runtime: python
"""
DYNAMIC_PROGRAM = '''\
"""One of each dynamic resource, as release {version} ({ref}) created them."""

import pulumi

from mixpeek_pulumi import AppDeploy, AppPromotion, PluginDeployment

APP_ID = "{app_id}"

# Paths relative to the project folder (the program's working directory); the resources store
# them made absolute, as every release so far has.
staging = AppDeploy(
    "site-staging",
    app_id=APP_ID,
    bundle="site",
    environment="staging",
    message="Upgrade fixture",
    poll_interval_seconds=0.2,
)
production = AppPromotion(
    "site-production",
    app_id=APP_ID,
    version=staging.version,
    source_deploy_id=staging.deploy_id,
    environment="production",
)
embed = PluginDeployment(
    "text-embed",
    namespace_id="{namespace}",
    name="text_embed",
    version="1.0.0",
    source="text_embed",
    poll_interval_seconds=0.2,
)

pulumi.export("deploy_id", staging.deploy_id)
pulumi.export("version", staging.version)
pulumi.export("production_deploy_id", production.deploy_id)
pulumi.export("route_prefix", embed.route_prefix)
'''
NATIVE_MANIFEST = """\
name: mixpeek-upgrade-native
description: Written by mixpeek-pulumi release {version} ({ref}); see ../README.md.
runtime: yaml
resources:
  site-staging:
    type: mixpeek:index:AppDeploy
    properties:
      appId: {app_id}
      bundle: ./site
      environment: staging
      message: Upgrade fixture
      pollIntervalSeconds: 0.2
  site-production:
    type: mixpeek:index:AppPromotion
    properties:
      appId: {app_id}
      version: ${{site-staging.version}}
      sourceDeployId: ${{site-staging.deployId}}
      environment: production
  text-embed:
    type: mixpeek:index:PluginDeployment
    properties:
      namespaceId: {namespace}
      name: text_embed
      version: 1.0.0
      source: ./text_embed
      pollIntervalSeconds: 0.2
outputs:
  deployId: ${{site-staging.deployId}}
  version: ${{site-staging.version}}
  productionDeployId: ${{site-production.deployId}}
  routePrefix: ${{text-embed.routePrefix}}
"""
README = """\
# Stacks written by mixpeek-pulumi release {version} ({ref})

Written by `scripts/make_upgrade_fixture.py` (its docstring says how to regenerate it) with the
code of commit `{commit}`,
through Pulumi CLI {pulumi}, against mixpeek-emulator. `tests/cli/test_upgrade.py` runs the
current code on a copy of it.

- `dynamic/`: Python program (`mixpeek_pulumi.AppDeploy`, `AppPromotion`, `PluginDeployment`),
  stack `{stack}`. Its state pickles the provider classes by module path (`__provider`) and
  stores `bundle` and `source` made absolute: they name the temporary folder the stacks were
  written in, so every run of the test is a project that has moved since.
- `native/`: Pulumi YAML program (`mixpeek:index:*`, the native provider), stack `{stack}`. Its
  state keeps the relative paths as written.
- `.pulumi/`: the local file backend with both stacks; passphrase secrets provider (the
  passphrase is `PASSPHRASE` in the script).
- `emulator/`: the emulator's `--data-dir` (state and uploaded archives).

The endpoint and API key were given through `MIXPEEK_BASE_URL` and `MIXPEEK_API_KEY`, so
neither is in the state. Do not edit these files by hand (ruff and mypy leave them alone): the
state records digests of `site/` and `text_embed/`, and the point is what that release wrote.
"""
SECRET_NAMES = re.compile(
    r"(^\.env(\..*)?$|\.(pem|key|p12|pfx|kdbx)$|^id_(rsa|dsa|ecdsa|ed25519)|^\.(npmrc|pypirc|netrc)$"
    r"|^credentials\.json$|\.tfstate$|\.tfvars$)",
    re.IGNORECASE,
)
KEY_LIKE = re.compile(rb"sk_(?:live|test)_[A-Za-z0-9_]+")


def say(text: str) -> None:
    print(f"[upgrade-fixture] {text}", flush=True)


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def write_projects(work: Path, version: str, ref: str) -> None:
    values = {"version": version, "ref": ref}
    for name in PROJECTS:
        write_tree(work / name / "site", SITE)
        write_tree(work / name / "text_embed", PLUGIN)
        ids = {"app_id": APPS[name], "namespace": NAMESPACES[name]}
        if name == "dynamic":
            (work / name / "Pulumi.yaml").write_text(DYNAMIC_MANIFEST.format(**values))
            (work / name / "__main__.py").write_text(DYNAMIC_PROGRAM.format(**values, **ids))
        else:
            (work / name / "Pulumi.yaml").write_text(NATIVE_MANIFEST.format(**values, **ids))


def old_code_env(old: Path) -> dict[str, str]:
    """The environment under which every process imports the old release's packages."""
    path = os.pathsep.join(str(old / part) for part in ("provider", "emulator", "."))
    return {"PYTHONPATH": path}


def check_imports(old: Path, env: Mapping[str, str]) -> str:
    """Both packages, as the program, the provider host and the plugin import them, come from
    ``old``: the editable install of the virtualenv points elsewhere; the version it declares."""
    probe = "import mixpeek_pulumi as p, mixpeek_emulator as e; print(p.__version__)"
    probe += "; print(p.__file__, e.__file__)"
    version, *found = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in found:
        if not Path(path).resolve().is_relative_to(old.resolve()):
            raise SystemExit(f"PYTHONPATH does not select the old release: {path}")
    say(f"the old release's code ({version}): {', '.join(found)}")
    return version


def commit_of(old: Path) -> str:
    """The checkout's commit, which must be clean: the fixture is what that commit wrote."""
    commit = subprocess.run(
        ["git", "-C", str(old), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(old), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if dirty:
        raise SystemExit(f"{old} has local changes; the fixture must be what {commit} wrote")
    return commit


@contextmanager
def emulator(data_dir: Path, env: Mapping[str, str]) -> Iterator[str]:
    """mixpeek-emulator (the old release's) on a free loopback port, persisting to ``data_dir``,
    with the two apps seeded and short builds."""
    command = [sys.executable, "-m", "mixpeek_emulator", "--host", "127.0.0.1", "--port", "0"]
    command += ["--data-dir", str(data_dir), "--queue-seconds", "0.05"]
    command += ["--build-seconds", "0.2", "--plugin-seconds", "0.2"]
    for app_id in APPS.values():
        command += ["--app", app_id.removeprefix("app_").replace("_", "-")]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "MIXPEEK_EMULATOR_API_KEY": API_KEY},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise SystemExit("mixpeek-emulator did not start")
        say(f"mixpeek-emulator at {url}, data in {data_dir}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run_stacks(cli: Cli, work: Path, env: Mapping[str, str], old: Path, version: str) -> None:
    """``pulumi up`` of both projects, then a preview that must show no changes."""
    plugin = Path(sys.executable).parent / "pulumi-resource-mixpeek"
    for name in PROJECTS:
        stack = CliStack(
            cli,
            work / name,
            STACK,
            backend=work,
            passphrase=PASSPHRASE,
            env=env,
            echo=lambda line: print(f"  {line}", flush=True),
        )
        if name == "native":
            stack.install_plugin("resource", "mixpeek", version, plugin)
        say(f"pulumi up of {name}/ with {old}")
        up = stack.up()
        if not up.ok or up.summary != {"create": 4}:  # the stack and its three resources
            raise SystemExit(f"pulumi up of {name}/ did not create 3 resources: {up.summary}")
        if not stack.preview(expect_no_changes=True).ok:
            raise SystemExit(f"{name}/ shows changes right after pulumi up")


def copy_result(work: Path, target: Path, commit: str, version: str, cli: Cli) -> None:
    """What the fixture keeps: the programs and their sources, the backend's stacks and history
    (not its backups, which repeat the stacks, nor PULUMI_HOME, which holds a copy of the plugin
    and a credentials.json) and the emulator's data."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.tmp", "locks", "backups", "*.bak", "*.bak.attrs"
    )
    for part in (*PROJECTS, ".pulumi", "emulator"):
        shutil.copytree(work / part, target / part, ignore=ignore)
    (target / "README.md").write_text(
        README.format(
            version=version, ref=commit[:7], commit=commit, pulumi=cli.version, stack=STACK
        )
    )


def problems(target: Path) -> list[str]:
    """What would make the fixture unfit to commit: more than ``MAX_BYTES``, a file that looks
    like a secret, any API key (not even the test key, which only ever went through the
    environment), the caller's own MIXPEEK_API_KEY, or the passphrase. The tests check it too."""
    files = [p for p in target.rglob("*") if p.is_file()]
    found = []
    size = sum(p.stat().st_size for p in files)
    if size > MAX_BYTES:
        found.append(f"the fixture is {size} bytes, more than {MAX_BYTES}")
    own = os.environ.get("MIXPEEK_API_KEY", "").encode()
    for path in files:
        if SECRET_NAMES.search(path.name):
            found.append(f"{path} looks like a secret file")
        data = path.read_bytes()
        if KEY_LIKE.search(data) or (own and own in data) or PASSPHRASE.encode() in data:
            found.append(f"{path} holds an API key or the passphrase")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--old-release", type=Path, required=True, help="a clean checkout of the old commit"
    )
    parser.add_argument("--out", type=Path, help="default: tests/data/upgrade/release-<v>-<ref>")
    args = parser.parse_args(argv)
    old: Path = args.old_release.resolve()
    commit = commit_of(old)
    cli = locate()
    if cli is None:
        raise SystemExit("There is no Pulumi CLI: run `make pulumi` first.")
    env = old_code_env(old)
    version = check_imports(old, env)
    out: Path = args.out or UPGRADES / f"release-{version}-{commit[:7]}"
    with tempfile.TemporaryDirectory(prefix="mixpeek-upgrade-fixture-") as scratch:
        work = Path(scratch)
        write_projects(work, version, commit[:7])
        with emulator(work / "emulator", env) as url:
            stack_env = {
                **env,
                "MIXPEEK_BASE_URL": url,
                "MIXPEEK_API_KEY": API_KEY,
                # In-flight deploys are remembered here; not part of what users' stacks hold.
                "MIXPEEK_PULUMI_STATE_DIR": str(work / "inflight"),
            }
            run_stacks(cli, work, stack_env, old, version)
        copy_result(work, out, commit, version, cli)
    found = problems(out)
    if found:
        raise SystemExit("\n".join(found))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    say(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
