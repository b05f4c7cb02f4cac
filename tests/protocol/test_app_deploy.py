"""AppDeploy and AppPromotion through the real provider host and the engine stand-in, against
the emulator: one program of each kind, for what only the host shows (the provider pickled
into state and found again, outputs exported through the SDK, the engine's steps, the host's
detailed diff and its lines headed by the resource). Every branch of the deploy layer runs
in-process in tests/kinds/test_app_deploy.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.proto import provider_pb2

from mixpeek_pulumi import AppDeploy, AppPromotion
from tests.engine import Stack, run_program
from tests.sites import site, write_tree


def deploy_program(app_id: str, bundle: Path, **extra: Any) -> Any:
    def program() -> None:
        d = AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging", **extra)
        pulumi.export("deploy_id", d.deploy_id)
        pulumi.export("version", d.version)
        pulumi.export("url", d.url)

    return program


def app_state(stack: Stack, app_id: str) -> dict[str, Any]:
    with stack.emulator.api() as c:
        body: dict[str, Any] = c.get(f"/v1/apps/{app_id}").json()
        return body


def test_create_noop_update_replace(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("life-site")
    bundle = write_tree(tmp_path / "dist", site("v1"), mtime=1_000_000)
    first = run_program(stack.engine, deploy_program(app_id, bundle))
    assert first.steps == [("create", "site")]
    assert first.outputs["deploy_id"].startswith("dep_")
    assert first.outputs["version"] == 1
    assert first.outputs["url"] == "https://staging-life-site.mxp.co"
    outs = stack.engine.outputs("site")
    assert outs["file_count"] == 3
    assert outs["live"] is True
    assert (
        app_state(stack, app_id)["environments"]["staging"]["deploy_id"]
        == first.outputs["deploy_id"]
    )

    write_tree(tmp_path / "dist", site("v1"), mtime=2_000_000)  # rebuilt: same bytes, new mtimes
    (tmp_path / "dist" / "app.js").chmod(0o600)
    assert run_program(stack.engine, deploy_program(app_id, bundle), preview=True).steps == [
        ("same", "site")
    ]
    assert run_program(stack.engine, deploy_program(app_id, bundle)).steps == [("same", "site")]

    write_tree(tmp_path / "dist", site("v2"))
    second = run_program(stack.engine, deploy_program(app_id, bundle))
    assert second.steps == [("update", "site")]
    # The host's answer names the digest that changed, so the CLI shows `[diff: ~bundle_sha256]`.
    diff = stack.engine.diffs["site"]
    assert list(diff.diffs) == ["bundle_sha256"]
    assert diff.hasDetailedDiff
    assert diff.detailedDiff["bundle_sha256"].kind == provider_pb2.PropertyDiff.UPDATE
    assert second.outputs["deploy_id"] != first.outputs["deploy_id"]
    assert second.outputs["version"] == 2
    # The service's own diff of the two versions, summarised once the update deployed.
    assert "AppDeploy site: version 1 to 2, as the service diffs them: " in stack.host.output()
    assert stack.engine.find("site").id == f"{app_id}/staging"

    assert run_program(stack.engine, deploy_program(app_id, bundle, message="new words")).steps == [
        ("update", "site")
    ]
    assert stack.emulator.count("POST", "/v1/apps/*/deploy") == 2  # a message alone deploys nothing
    assert "message: recorded in the state only; nothing is deployed" in stack.host.output()

    other = stack.emulator.create_app("other-site")
    replaced = run_program(stack.engine, deploy_program(other, bundle))
    assert replaced.steps == [("replace", "site"), ("delete", "site")]
    assert (
        app_state(stack, other)["environments"]["staging"]["deploy_id"]
        == replaced.outputs["deploy_id"]
    )


def test_staging_deploy_promoted_to_production_without_rebuild(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("promo-site")
    bundle = write_tree(tmp_path / "dist", site())

    def program() -> None:
        staging = AppDeploy("staging", app_id=app_id, bundle=str(bundle), environment="staging")
        prod = AppPromotion(
            "prod", app_id=app_id, version=staging.version, environment="production"
        )
        pulumi.export("staging_version", staging.version)
        pulumi.export("prod_deploy", prod.deploy_id)
        pulumi.export("prod_url", prod.url)

    result = run_program(stack.engine, program)
    envs = app_state(stack, app_id)["environments"]
    served = {env: stack.emulator.served_version(app_id, env) for env in envs}
    assert served == {"staging": result.outputs["staging_version"], "production": 1}
    assert result.outputs["prod_deploy"] == envs["staging"]["deploy_id"]
    assert result.outputs["prod_url"] == "https://promo-site.mxp.co"
    assert stack.emulator.count("POST", "/v1/apps/*/deploy/upload-url") == 1
    assert stack.emulator.count("PUT", "/_storage/*") == 1
    assert stack.emulator.count("POST", "/v1/apps/*/deploy") == 1
    assert run_program(stack.engine, program).steps == [("same", "staging"), ("same", "prod")]
