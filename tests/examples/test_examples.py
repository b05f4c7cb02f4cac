"""Every example program through the engine stand-in (fast; tests/cli runs them through the real
Pulumi CLI and holds the two to the same steps and state)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator_fixture import EmulatorHandle
from tests.engine import PROJECT_ROOT, FakeEngine, ProviderHost, is_secret, run_program

EXAMPLES = PROJECT_ROOT / "examples"


@pytest.fixture
def demo(emulator: EmulatorHandle) -> EmulatorHandle:
    """The emulator with the app the examples deploy to."""
    emulator.create_app("demo-site")
    return emulator


def engine(
    emulator: EmulatorHandle, tmp_path: Path, project: str, stack: str = "dev"
) -> tuple[ProviderHost, FakeEngine]:
    host = ProviderHost(
        project=project, env={"MIXPEEK_PULUMI_STATE_DIR": str(tmp_path / "inflight")}
    )
    cfg = {"mixpeek:apiKey": emulator.api_key, "mixpeek:baseUrl": emulator.url}
    return host, FakeEngine(
        host, config=cfg, secret_keys={"mixpeek:apiKey"}, project=project, stack=stack
    )


def app_id_of(emulator: EmulatorHandle) -> str:
    with emulator.api() as c:
        return str(c.get("/v1/apps", params={"slug": "demo-site"}).json()["results"][0]["app_id"])


def test_app_example(demo: EmulatorHandle, tmp_path: Path) -> None:
    host, eng = engine(demo, tmp_path, "mixpeek-app")
    config = {"mixpeek-app:appId": app_id_of(demo)}
    try:
        out = run_program(eng, EXAMPLES / "app" / "__main__.py", config=config).outputs
        assert out["version"] == 1
        assert out["deploy_id"] == out["production_deploy_id"]
        assert out["url"] == "https://staging-demo-site.mxp.co"
        assert out["production_url"] == "https://demo-site.mxp.co"
        again = run_program(eng, EXAMPLES / "app" / "__main__.py", config=config, preview=True)
        assert {op for op, _ in again.steps} == {"same"}
    finally:
        host.close()


def test_plugin_example(demo: EmulatorHandle, tmp_path: Path) -> None:
    host, eng = engine(demo, tmp_path, "mixpeek-plugin")
    config = {"mixpeek-plugin:pollSeconds": "0.1"}
    try:
        out = run_program(eng, EXAMPLES / "plugin" / "__main__.py", config=config).outputs
        assert out == {
            "route_prefix": "/inference/custom_plugin_text_embed_1_0_0",
            "feature_uri": "mixpeek://text_embed@1.0.0",
        }
        again = run_program(eng, EXAMPLES / "plugin" / "__main__.py", config=config)
        assert again.steps == [("same", "text-embed")]
    finally:
        host.close()


def test_promotion_example_two_stacks(demo: EmulatorHandle, tmp_path: Path) -> None:
    program = EXAMPLES / "promotion" / "__main__.py"
    app_id = app_id_of(demo)
    live_site = f"{demo.url}/_sites/{app_id}/production"
    config = {"mixpeek-promotion:appId": app_id, "mixpeek-promotion:verifyUrl": live_site}
    host, staging = engine(demo, tmp_path, "mixpeek-promotion", stack="staging")
    try:
        staged = run_program(staging, program, config=config).outputs
        production = FakeEngine(
            host,
            config={"mixpeek:apiKey": demo.api_key, "mixpeek:baseUrl": demo.url},
            secret_keys={"mixpeek:apiKey"},
            project="mixpeek-promotion",
            stack="production",
        )
        refs = {"organization/mixpeek-promotion/staging": staged}
        promoted = run_program(production, program, config=config, stack_references=refs).outputs
        assert promoted["version"] == staged["version"] == 1
        assert promoted["deploy_id"] == staged["deploy_id"]
        assert promoted["url"] == "https://demo-site.mxp.co"
        assert promoted["verified"] is True  # the live site answered, checked in a row
        assert demo.count("POST", "/v1/apps/*/deploy") == 1
        again = run_program(production, program, config=config, stack_references=refs)
        assert again.steps == [("same", "production")]
    finally:
        host.close()


def test_app_domain_example_declares_the_app_it_deploys(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    program = EXAMPLES / "app-domain" / "__main__.py"
    host, eng = engine(emulator, tmp_path, "mixpeek-app-domain")
    config = {
        "mixpeek-app-domain:verifySeconds": "30",
        "mixpeek-app-domain:verifyPollSeconds": "1",
        "mixpeek-app-domain:sitesUrl": f"{emulator.url}/_sites",
    }
    try:
        out = run_program(eng, program, config=config).outputs
        assert out["url"] == "https://acme-search.mxp.co"
        assert out["txt_name"] == "_mixpeek-verify.search.acme.com"
        assert out["domain_status"] == "active"
        assert out["verified"] is True
        app = emulator.records().apps[out["app_id"]]
        assert app.domains[0].domain == "search.acme.com"
        # The config was plain: the App itself kept the password and build secrets secret.
        (kept,) = [r for r in eng.state.values() if r.urn.endswith("::search-app")]
        for where in (kept.inputs, kept.outputs):
            assert is_secret(where["auth_config"]["password"])
            assert is_secret(where["build_config"]["secrets"])
            assert not is_secret(where["slug"])
        again = run_program(eng, program, config=config, preview=True)
        assert {op for op, _ in again.steps} == {"same"}
    finally:
        host.close()


def test_demo_project_at_the_root(demo: EmulatorHandle, tmp_path: Path) -> None:
    host, eng = engine(demo, tmp_path, "mixpeek-demo")
    app_id = app_id_of(demo)
    config = {
        "mixpeek-demo:appId": app_id,
        "mixpeek-demo:verifyUrl": f"{demo.url}/_sites/{app_id}/production",
    }
    try:
        out = run_program(eng, EXAMPLES / "demo" / "__main__.py", config=config).outputs
        assert out["verified"] is True
        assert out["route_prefix"] == "/inference/custom_plugin_text_embed_1_0_0"
        assert out["production_deploy_id"] == out["deploy_id"]
        assert {
            op for op, _ in run_program(eng, EXAMPLES / "demo" / "__main__.py", config=config).steps
        } == {"same"}
    finally:
        host.close()
    assert (PROJECT_ROOT / "Pulumi.yaml").read_text().count("main: examples/demo/") == 1
