"""AppDeploy and AppPromotion through the real provider host, against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from mixpeek_pulumi import AppDeploy, AppPromotion
from tests.engine import EngineError, Stack, run_program
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


def test_bad_bundle_fails_in_check_before_any_upload(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("nocheck-site")
    bundle = write_tree(tmp_path / "dist", {"main.html": "x", "secret/.env": "A=1"})
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, deploy_program(app_id, bundle))
    assert info.value.op == "check"
    assert "bundle: The bundle at" in info.value.details
    assert "no index.html at its root" in info.value.details
    assert stack.emulator.count("POST", "/v1/apps/*") == 0


def test_failed_build_raises_headline_and_log_tail(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("fail-site")
    bundle = write_tree(tmp_path / "dist", site())
    stack.emulator.next(deploy_fail_reason="asset upload to CDN failed")
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, deploy_program(app_id, bundle))
    headline = info.value.headline
    assert headline.startswith("AppDeploy 'site': deploy dep_")
    assert (
        f"to staging of app {app_id} ended with status failed: asset upload to CDN failed."
        in headline
    )
    assert "Last 5 log lines:" in info.value.details
    assert "| Deploy failed: asset upload to CDN failed" in info.value.details
    assert stack.engine.state == {}
    # Build output was echoed live, prefixed with the resource.
    assert "AppDeploy site: Validating bundle" in stack.host.output()


def test_timeout_then_next_up_adopts_the_same_deploy(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("slow-site")
    bundle = write_tree(tmp_path / "dist", site())
    # The deadline leaves packing and upload time enough on a loaded machine, so the deploy
    # is always triggered before it passes; the build outlasts it.
    stack.emulator.timing(build_seconds=4.0)
    with pytest.raises(EngineError) as info:
        run_program(
            stack.engine,
            deploy_program(app_id, bundle, timeout_seconds=1.5, poll_interval_seconds=0.1),
        )
    headline = info.value.headline
    assert "did not finish within timeout_seconds=1.5" in headline
    deploy_id = headline.split("deploy ", 1)[1].split(" ", 1)[0]
    assert stack.engine.state == {}

    again = run_program(stack.engine, deploy_program(app_id, bundle))
    assert again.outputs["deploy_id"] == deploy_id
    assert stack.emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 1
    assert "re-attaching to deploy" in stack.host.output()


def test_refresh_shows_drift_and_up_restores_the_declared_version(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("drift-site")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    run_program(stack.engine, deploy_program(app_id, bundle))
    write_tree(tmp_path / "dist", site("v2"))
    declared = run_program(stack.engine, deploy_program(app_id, bundle)).outputs
    with stack.emulator.api() as c:
        c.post(
            f"/v1/apps/{app_id}/versions/1/restore", json={"environment": "staging"}
        ).raise_for_status()

    stack.engine.refresh()
    assert stack.engine.outputs("site")["live"] is False
    fixed = run_program(stack.engine, deploy_program(app_id, bundle))
    assert fixed.steps == [("update", "site")]
    assert app_state(stack, app_id)["environments"]["staging"]["deploy_id"] == declared["deploy_id"]
    assert stack.engine.outputs("site")["live"] is True
    assert stack.emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 2  # restored, not rebuilt


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


def promote(app_id: str, **extra: Any) -> Any:
    return lambda: AppPromotion("prod", app_id=app_id, version=1, **extra) and None


@pytest.mark.parametrize("handed_over", [True, False], ids=["source-deploy-id", "found-served"])
def test_promotion_refuses_a_version_whose_smoke_test_failed(
    stack: Stack, tmp_path: Path, handed_over: bool
) -> None:
    app_id = stack.emulator.create_app(f"smoke-site-{handed_over}".lower())
    bundle = write_tree(tmp_path / "dist", site())
    stack.emulator.next(smoke_test_fail=True)
    built = run_program(stack.engine, deploy_program(app_id, bundle, require_smoke_test=False))
    source = {"source_deploy_id": built.outputs["deploy_id"]} if handed_over else {}
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, promote(app_id, **source))
    assert info.value.headline == (
        f"AppPromotion 'prod': version 1 of app {app_id} is not promoted to production: its "
        f"deploy {built.outputs['deploy_id']} did not pass (GET https://staging-"
        f"smoke-site-{str(handed_over).lower()}.mxp.co/ returned HTTP 500); set "
        "require_smoke_test=False to promote it anyway."
    )
    assert "production" not in app_state(stack, app_id)["environments"]


def test_promotion_refuses_when_it_cannot_tell_which_deploy_built_the_version(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("unknown-origin")
    run_program(stack.engine, deploy_program(app_id, write_tree(tmp_path / "v1", site("v1"))))
    run_program(stack.engine, deploy_program(app_id, write_tree(tmp_path / "v1", site("v2"))))
    # Version 1 is served nowhere now, and the program names no deploy: refuse, never guess.
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, promote(app_id))
    assert "nothing tells which deploy built it" in info.value.headline
    assert "pass source_deploy_id (for example staging.deploy_id)" in info.value.headline
    assert "production" not in app_state(stack, app_id)["environments"]
    second = stack.engine.outputs("site")["deploy_id"]
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, promote(app_id, source_deploy_id=second))
    assert f"deploy {second} did not build it (their messages differ)" in info.value.headline
    done = run_program(stack.engine, promote(app_id, require_smoke_test=False))
    assert stack.emulator.served_version(app_id, "production") == 1
    assert ("create", "prod") in done.steps


def test_smoke_failure_fails_the_deploy_and_restores_the_previous_version(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("guard-site")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    run_program(stack.engine, deploy_program(app_id, bundle))
    write_tree(tmp_path / "dist", site("v2"))
    stack.emulator.next(smoke_test_fail=True)
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, deploy_program(app_id, bundle))
    assert "its smoke test failed" in info.value.headline
    assert "staging was restored to version 1" in info.value.headline
    assert stack.emulator.served_version(app_id, "staging") == 1


@pytest.mark.parametrize("on_delete", ["retain", "rollback"])
def test_destroy_follows_on_delete(stack: Stack, tmp_path: Path, on_delete: str) -> None:
    app_id = stack.emulator.create_app(f"bye-{on_delete}")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    run_program(stack.engine, deploy_program(app_id, bundle))
    write_tree(tmp_path / "second", site("v2"))

    def both() -> None:
        AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging")
        AppDeploy(
            "next",
            app_id=app_id,
            bundle=str(tmp_path / "second"),
            environment="staging",
            on_delete=on_delete,
        )

    run_program(stack.engine, both)  # "next" now serves v2 over "site"'s v1
    run_program(stack.engine, deploy_program(app_id, bundle))  # drops "next"
    expected = 1 if on_delete == "rollback" else 2
    assert stack.emulator.served_version(app_id, "staging") == expected


# A 30 s poll interval would hold the run past this test's time limit; the stream's end wakes
# the waiter instead (tests/unit/test_waiting.py shows the same on a fake clock).
@pytest.mark.timeout(25)
def test_outputs_arrive_while_the_service_finishes(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("quick-site")
    bundle = write_tree(tmp_path / "dist", site())
    stack.emulator.timing(build_seconds=1.0)
    result = run_program(stack.engine, deploy_program(app_id, bundle, poll_interval_seconds=30))
    assert result.outputs["version"] == 1
    assert stack.emulator.count("GET", f"/v1/apps/{app_id}/deploys/*/logs/stream") == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"action": "delay", "delay": 600.0}, id="hangs"),
        pytest.param({"status": 503, "retry_after": "1"}, id="answers-503-forever"),
    ],
)
@pytest.mark.timeout(45)  # the read timeout and the retry budget alone would take minutes
def test_timeout_seconds_is_one_deadline_for_every_wait_and_retry(
    stack: Stack, tmp_path: Path, fault: dict[str, Any]
) -> None:
    app_id = stack.emulator.create_app("stuck-site")
    bundle = write_tree(tmp_path / "dist", site())
    stack.emulator.fault(method="GET", path=f"/v1/apps/{app_id}/deploys/*", times=10**6, **fault)
    with pytest.raises(EngineError) as info:
        run_program(
            stack.engine,
            deploy_program(app_id, bundle, timeout_seconds=3, poll_interval_seconds=0.2),
        )
    headline = info.value.headline
    assert headline.startswith("AppDeploy 'site': deploy dep_")
    assert "did not finish within timeout_seconds=3 (last status unknown)" in headline
    deploy_id = headline.split("deploy ", 1)[1].split(" ", 1)[0]
    assert deploy_id in stack.emulator.running.emulator.store.state.deploys


def test_promotion_to_a_missing_version_lists_the_last_five_that_exist(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("six-versions")
    for i in range(6):
        bundle = write_tree(tmp_path / f"dist{i}", site(f"v{i}"))
        run_program(stack.engine, deploy_program(app_id, bundle, poll_interval_seconds=0.1))
    missing = lambda: AppPromotion("prod", app_id=app_id, version=99) and None  # noqa: E731
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, missing)
    assert (
        f"app {app_id} has no version 99 to promote to production (the last 5 it has: "
        "6, 5, 4, 3, 2; only completed deploys become versions)"
    ) in info.value.headline, info.value.headline
