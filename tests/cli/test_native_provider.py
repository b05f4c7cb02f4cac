"""The native provider, ``pulumi-resource-mixpeek``, under the real Pulumi CLI and engine: the
Pulumi YAML and Python SDK examples, a create interrupted by ``customTimeouts`` or Ctrl-C and
re-attached from another machine, and ``pulumi import`` of live app environments and plugins."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from mixpeek_pulumi.files import bundle as bundles
from mixpeek_pulumi.files import contents
from mixpeek_pulumi.files.excludes import Excludes
from scripts import node_toolchain
from scripts.pulumi_cli import Cli
from scripts.pulumi_stack import CliStack
from tests.cli.conftest import example, open_native_stack
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.sites import plugin, site, write_tree

pytestmark = pytest.mark.cli

DEPLOYS = "/v1/apps/*/deploy"


def assert_no_key(stack: CliStack, key: str, backend: Path) -> None:
    """The API key (or any secret value) is nowhere: not in the export, the backend's files or
    anything printed."""
    assert key not in json.dumps(stack.export())
    for path in backend.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert not any(key in line for line in stack.printed)


def diagnostics_of(lines: list[str], resource: str) -> list[str]:
    """The lines the CLI prints under a resource's heading in its Diagnostics section."""
    start = lines.index(f"  {resource}:")
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    return block


@pytest.mark.parametrize("name", ["native-yaml", "native-python"])
def test_example_goes_up_shows_no_changes_and_is_destroyed(
    name: str, cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stack = open_native_stack(cli, emulator, example(name, tmp_path), tmp_path)
    plugins = 1 if name == "native-yaml" else 0
    assert_example_lifecycle(stack, emulator, tmp_path, plugins=plugins)


def test_typescript_example_through_the_generated_sdk(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path, node_modules: Path
) -> None:
    """sdk/nodejs built as a release would be, against @pulumi/pulumi from npm, and the
    TypeScript example compiled against it and run by the real engine."""
    project = example("native-typescript", tmp_path)
    linked = node_toolchain.build_sdk(node_modules, tmp_path / "node")
    (project / "node_modules").symlink_to(linked, target_is_directory=True)
    node_toolchain.tsc(node_modules, project)
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.env["NODE_PATH"] = str(linked)
    assert_example_lifecycle(stack, emulator, tmp_path)


def assert_example_lifecycle(
    stack: CliStack, emulator: EmulatorHandle, tmp_path: Path, *, plugins: int = 0
) -> None:
    """The app example: up (staging deploy, promotion of that exact version, and the plugin
    where the example has one), no changes on a second look, destroy that leaves both
    environments serving, and no key anywhere."""
    app_id = emulator.create_app("demo-site")
    stack.set_config("appId", app_id)

    up = stack.up()

    assert up.ok, up.output
    assert up.summary == {"create": 3 + plugins}
    out = stack.outputs()
    deploy_id = out.get("deployId") or out["deploy_id"]
    production_id = out.get("productionDeployId") or out["production_deploy_id"]
    state = emulator.records()
    app = state.apps[app_id]
    assert (state.deploys[deploy_id].environment, state.deploys[deploy_id].settled) == (
        "staging",
        True,
    )
    assert app.environments["staging"]["deploy_id"] == deploy_id
    assert app.environments["production"]["deploy_id"] == production_id == deploy_id
    assert len(state.deploys) == 1  # promoted, never rebuilt
    # The build log went through the engine's log service, under the resource.
    logs = diagnostics_of(up.lines, "mixpeek:index:AppDeploy (site-staging)")
    assert f"deploy {deploy_id} queued for staging" in logs
    assert "Deploy complete!" in logs
    if plugins:
        plugin = emulator.records().plugins["ns_demo"]["text_embed_1_0_0"]
        assert out["routePrefix"] == plugin.route_prefix is not None

    assert stack.preview(expect_no_changes=True).ok

    destroyed = stack.destroy()
    assert destroyed.ok, destroyed.output
    assert destroyed.summary == {"delete": 3 + plugins}
    envs = emulator.records().apps[app_id].environments
    assert envs["production"]["deploy_id"] == deploy_id  # on_delete "retain"
    assert stack.resources() == {}
    assert_no_key(stack, emulator.api_key, tmp_path / "backend")


def yaml_program(name: str, resources: str) -> str:
    """A Pulumi YAML project whose app comes from stack config, with these resources."""
    header = f"name: {name}\nruntime: yaml\nconfig:\n  appId:\n    type: string\nresources:\n"
    return header + resources


SITE = """\
  site:
    type: mixpeek:index:AppDeploy
    properties:
      appId: ${appId}
      bundle: ./site
      environment: staging
"""
INTERRUPTIBLE = SITE + (
    "      pollIntervalSeconds: 0.2\n"
    "    options:\n"
    "      customTimeouts:\n"
    "        create: %s\n"
    "outputs:\n"
    "  deployId: ${site.deployId}\n"
)


def interruptible(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path, create_timeout: str
) -> CliStack:
    project = tmp_path / "project"
    write_tree(project / "site", site())
    (project / "Pulumi.yaml").write_text(
        yaml_program("interrupted", INTERRUPTIBLE % create_timeout)
    )
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", emulator.create_app("slow-site"))
    return stack


def assert_reattached_from_another_machine(
    stack: CliStack, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The first run left the deploy in the stack's state; a second run on another machine
    (its own local state folder) waits for that deploy instead of deploying again."""
    kept = stack.resources()["site"]
    deploy_id = kept["outputs"]["deployId"]
    assert kept["initErrors"] and deploy_id in kept["initErrors"][0]
    assert emulator.count("POST", DEPLOYS) == 1

    stack.env["MIXPEEK_PULUMI_STATE_DIR"] = str(tmp_path / "another-machine")
    second = stack.up()

    assert second.ok, second.output
    # Still building, or already live by the time the second run looks: adopted either way.
    assert (
        f"re-attaching to deploy {deploy_id} (" in second.output
        or f"adopting deploy {deploy_id}: it already serves this bundle" in second.output
    ), second.output
    assert stack.outputs()["deployId"] == deploy_id
    assert emulator.count("POST", DEPLOYS) == 1
    state = emulator.records()
    assert state.apps[kept["outputs"]["appId"]].environments["staging"]["deploy_id"] == deploy_id
    assert not stack.resources()["site"].get("initErrors")
    assert stack.preview(expect_no_changes=True).ok


def test_create_cut_short_by_custom_timeouts_is_kept_and_reattached(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stack = interruptible(cli, emulator, tmp_path, "1s")
    emulator.timing(build_seconds=4)

    first = stack.up()

    assert not first.ok
    assert "did not finish within customTimeouts.create=1s" in first.output
    assert "the next `pulumi up` re-attaches to it instead of deploying again" in first.output
    assert_reattached_from_another_machine(stack, emulator, tmp_path)


def test_create_interrupted_by_ctrl_c_is_kept_and_reattached(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stack = interruptible(cli, emulator, tmp_path, "10m")
    emulator.timing(build_seconds=5)
    command = [str(cli.pulumi), "up", "--yes", "--skip-preview", "--non-interactive"]
    with subprocess.Popen(
        [*command, "--stack", stack.stack],
        cwd=stack.work_dir,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as up:
        assert wait_until(lambda: emulator.count("POST", DEPLOYS) == 1, timeout=60)
        up.send_signal(signal.SIGINT)
        printed, _ = up.communicate(timeout=60)

    assert up.returncode != 0
    assert "was interrupted before it finished" in printed, printed
    assert_reattached_from_another_machine(stack, emulator, tmp_path)


def test_create_cut_short_whose_build_then_failed_deploys_anew(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The stack state keeps a deploy that was building; the service fails it afterwards.
    A refresh shows the failure, the next `up` deploys anew instead of resuming it, and the
    one after that has nothing to do."""
    stack = interruptible(cli, emulator, tmp_path, "1s")
    emulator.timing(build_seconds=3)
    emulator.next(deploy_fail_reason="the build ran out of disk")
    assert not stack.up().ok
    kept = stack.resources()["site"]["outputs"]
    failed, app_id = kept["deployId"], kept["appId"]
    assert kept["status"] in ("queued", "building")

    def status() -> str:
        with emulator.api() as api:
            return str(api.get(f"/v1/apps/{app_id}/deploys/{failed}").json()["status"])

    assert wait_until(lambda: status() == "failed", timeout=30)
    emulator.timing(build_seconds=0.2)
    assert stack.refresh().ok
    assert stack.resources()["site"]["outputs"]["status"] == "failed"

    second = stack.up()

    assert second.ok, second.output
    assert f"not using deploy {failed} from the stack state: it ended with status failed" in (
        second.output
    )
    fresh = stack.outputs()["deployId"]
    assert fresh != failed
    assert emulator.records().apps[app_id].environments["staging"]["deploy_id"] == fresh
    assert emulator.count("POST", DEPLOYS) == 2
    assert not stack.resources()["site"].get("initErrors")
    assert stack.preview(expect_no_changes=True).ok


IMPORTED = SITE + (
    "    options:\n"
    "      protect: true\n"
    "  text-embed:\n"
    "    type: mixpeek:index:PluginDeployment\n"
    "    properties:\n"
    "      namespaceId: ns_demo\n"
    "      name: text_embed\n"
    "      version: 1.0.0\n"
    "      source: ./plugin\n"
    "    options:\n"
    "      protect: true\n"
)


def deploy_out_of_band(emulator: EmulatorHandle, app_id: str) -> str:
    """A staging deploy made by someone else's tooling; returns its id once it serves."""
    key = emulator.upload_bundle(app_id, site())
    with emulator.api() as api:
        answer = api.post(
            f"/v1/apps/{app_id}/deploy",
            json={"message": "by hand", "environment": "staging", "bundle_s3_key": key},
        )
        answer.raise_for_status()
    assert wait_until(lambda: emulator.served_version(app_id, "staging") == 1)
    return str(answer.json()["deploy_id"])


def test_import_reads_live_app_environment_and_plugin_without_deploying(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("imported-site")
    deploy_id = deploy_out_of_band(emulator, app_id)
    emulator.seed_plugin("ns_demo", "text_embed", "1.0.0", plugin()).raise_for_status()
    with emulator.api() as api:
        api.post("/v1/namespaces/ns_demo/plugins/text_embed_1_0_0/deploy").raise_for_status()
    assert wait_until(
        lambda: emulator.records().plugins["ns_demo"]["text_embed_1_0_0"].route_prefix is not None
    )
    project = tmp_path / "project"
    write_tree(project / "site", site())
    write_tree(project / "plugin", plugin())
    (project / "Pulumi.yaml").write_text(yaml_program("imported", IMPORTED))
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", app_id)
    deploys, uploads = emulator.count("POST", DEPLOYS), emulator.count("POST", "*/uploads")

    code = tmp_path / "imported.yaml"
    app = stack.run(
        "import",
        "mixpeek:index:AppDeploy",
        "site",
        f"{app_id}/staging",
        "--yes",
        "--out",
        str(code),
        check=False,
    )
    assert app.ok, app.output
    # The inputs the import read pass the provider's own check: no warning at all.
    assert "warning" not in app.output.lower(), app.output
    assert "failed to validate" not in app.output
    generated = code.read_text()
    assert f"appId: {app_id}" in generated
    # The generated program says what to put in `bundle`, and nothing computed.
    assert "bundle: <the build folder or .zip this AppDeploy was deployed from>" in generated
    assert "bundleSha256" not in generated
    plug = stack.run(
        "import",
        "mixpeek:index:PluginDeployment",
        "text-embed",
        "ns_demo/text_embed_1_0_0",
        "--yes",
        "--generate-code=false",
        check=False,
    )
    assert plug.ok, plug.output
    assert "warning" not in plug.output.lower(), plug.output

    resources = stack.resources()
    outputs = resources["site"]["outputs"]
    assert resources["site"]["id"] == f"{app_id}/staging"
    assert (outputs["deployId"], outputs["version"], outputs["live"]) == (deploy_id, 1, True)
    record = emulator.records().plugins["ns_demo"]["text_embed_1_0_0"]
    assert resources["text-embed"]["outputs"]["routePrefix"] == record.route_prefix
    assert resources["text-embed"]["outputs"]["deployed"] is True
    # The documented spelling, whichever the service used on the wire.
    assert resources["text-embed"]["outputs"]["status"] == "DEPLOYED"
    # Nothing was deployed or uploaded, and the program naming the same content has nothing to do.
    assert emulator.count("POST", DEPLOYS) == deploys
    assert emulator.count("POST", "*/uploads") == uploads
    assert stack.preview(expect_no_changes=True).ok


VERIFIED = SITE + (
    "  prod:\n"
    "    type: mixpeek:index:AppPromotion\n"
    "    properties:\n"
    "      appId: ${appId}\n"
    "      version: ${site.version}\n"
    "      sourceDeployId: ${site.deployId}\n"
    "      verify:\n"
    "        url: ${liveSite}\n"
    "        path: /healthz\n"
    "        checks: 2\n"
    "        intervalSeconds: 0.1\n"
    "        timeoutSeconds: 3\n"
    "outputs:\n"
    "  verified: ${prod.verified}\n"
    "  version: ${prod.version}\n"
)


def test_promotion_that_fails_verification_puts_production_back_through_the_cli(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    write_tree(project / "site", {**site("v1"), "healthz": "ok"})
    header = yaml_program("verified", VERIFIED).replace(
        "    type: string\n", "    type: string\n  liveSite:\n    type: string\n", 1
    )
    (project / "Pulumi.yaml").write_text(header)
    stack = open_native_stack(cli, emulator, project, tmp_path)
    app_id = emulator.create_app("verified-site")
    stack.set_config("appId", app_id)
    stack.set_config("liveSite", f"{emulator.url}/_sites/{app_id}/production")

    first = stack.up()
    assert first.ok, first.output
    assert stack.outputs() == {"verified": True, "version": 1}

    write_tree(project / "site", site("v2"))
    (project / "site" / "healthz").unlink()
    second = stack.up()

    assert not second.ok
    assert (
        "AppPromotion 'prod': version 2 failed verification after the switch to production "
        f"(GET {emulator.url}/_sites/{app_id}/production/healthz answered 404, expected 200); "
        "production serves version 1 again."
    ) in second.output
    assert emulator.served_version(app_id, "production") == 1
    assert stack.outputs() == {"verified": True, "version": 1}  # the state is as it was
    assert emulator.count("POST", DEPLOYS) == 2  # staging's two deploys; the promotion none


TWO_ENVIRONMENTS = """\
  site-production:
    type: mixpeek:index:AppDeploy
    properties:
      appId: ${appId}
      bundle: ./production
      environment: production
  site-staging:
    type: mixpeek:index:AppDeploy
    properties:
      appId: ${appId}
      bundle: ./staging
      environment: staging
"""


def deploy_by_hand(emulator: EmulatorHandle, app_id: str, files: dict[str, str], env: str) -> str:
    key = emulator.upload_bundle(app_id, files)
    with emulator.api() as api:
        answer = api.post(
            f"/v1/apps/{app_id}/deploy",
            json={"message": f"by hand to {env}", "environment": env, "bundle_s3_key": key},
        )
        answer.raise_for_status()
    deploy_id = str(answer.json()["deploy_id"])
    assert wait_until(
        lambda: (
            emulator.records().apps[app_id].environments.get(env, {}).get("deploy_id") == deploy_id
        )
    )
    return deploy_id


@pytest.mark.parametrize("first", ["production", "staging"])
def test_import_reads_exactly_the_environment_it_names(
    first: str, cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Production and staging serve different deploys: each import reads its own (deploy,
    version, digest), in either order, and the program with the right folders has nothing
    to do."""
    app_id = emulator.create_app(f"two-envs-{first}")
    content = {"staging": site("staging build"), "production": site("production build")}
    order = [first, "staging" if first == "production" else "production"]
    served = {env: deploy_by_hand(emulator, app_id, content[env], env) for env in order}
    project = tmp_path / "project"
    for env, files in content.items():
        write_tree(project / env, files)
    (project / "Pulumi.yaml").write_text(yaml_program("two-envs", TWO_ENVIRONMENTS))
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", app_id)

    for env in order:
        imported = stack.run(
            "import",
            "mixpeek:index:AppDeploy",
            f"site-{env}",
            f"{app_id}/{env}",
            "--yes",
            "--generate-code=false",
            check=False,
        )
        assert imported.ok, imported.output
        assert "warning" not in imported.output.lower(), imported.output

    resources = stack.resources()
    versions = {env: emulator.served_version(app_id, env) for env in order}
    assert versions[order[0]] == 1 and versions[order[1]] == 2
    for env in order:
        outputs = resources[f"site-{env}"]["outputs"]
        folder = project / env
        digest = contents.digest(bundles.collect(folder, Excludes())).sha256
        assert resources[f"site-{env}"]["id"] == f"{app_id}/{env}"
        assert (outputs["deployId"], outputs["version"]) == (served[env], versions[env])
        assert outputs["bundleSha256"] == digest, env
    assert stack.preview(expect_no_changes=True).ok


def test_a_revoked_key_fails_the_preview_unless_the_check_is_turned_off(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """CI's preview is where a dead key must show, not the next real change: the key is
    checked the first time a resource needs the service, in its check."""
    project = tmp_path / "project"
    write_tree(project / "site", site())
    (project / "Pulumi.yaml").write_text(yaml_program("revoked", SITE))
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", emulator.create_app("revoked-site"))
    stack.set_config("mixpeek:apiKey", "sk_revoked_0123456789abcdef", secret=True)

    preview = stack.preview()

    assert not preview.ok
    assert (
        "The Mixpeek API key from `mixpeek:apiKey` (stack config) was refused by "
        f"{emulator.url} (Mixpeek API answered GET /v1/apps with HTTP 401"
    ) in preview.output
    assert "sk_revoked_0123456789abcdef" not in preview.output
    stack.set_config("mixpeek:skipCredentialsValidation", "true")
    assert stack.preview().ok
