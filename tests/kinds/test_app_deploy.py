"""AppDeploy and AppPromotion in the deploy layer, against the emulator: each resource kept as
the dynamic host keeps it (no partial state, nulls left out, the journal as the only memory of
a create cut short). Ported from the protocol tier, which keeps one program of each through the
real provider host (tests/protocol/test_app_deploy.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mixpeek_pulumi.errors import MixpeekError
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.kinds.harness import CheckFailed, Resource
from tests.sites import site, write_tree

DYNAMIC: dict[str, Any] = {"keeps_partial": False, "drops_nulls": True}
"""Kept as the dynamic host keeps a resource, as the protocol tier ran these."""


def deployer(resource: Make, name: str = "site") -> Resource:
    return resource("AppDeploy", name, **DYNAMIC)


def deploy(r: Resource, app_id: str, bundle: Path, **extra: Any) -> dict[str, Any]:
    """The staging AppDeploy every test here declares, as the protocol tier's program did."""
    return r.up(app_id=app_id, bundle=str(bundle), environment="staging", **extra)


def app_state(emulator: EmulatorHandle, app_id: str) -> dict[str, Any]:
    with emulator.api() as c:
        body: dict[str, Any] = c.get(f"/v1/apps/{app_id}").json()
        return body


def headline(error: BaseException) -> str:
    """The first line of an error: the sentence the CLI shows under the resource."""
    return str(error).splitlines()[0]


def test_create_noop_update_replace(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("life-site")
    bundle = write_tree(tmp_path / "dist", site("v1"), mtime=1_000_000)
    r = deployer(resource)
    first = deploy(r, app_id, bundle)
    assert r.step == "create"
    assert first["deploy_id"].startswith("dep_")
    assert first["version"] == 1
    assert first["url"] == "https://staging-life-site.mxp.co"
    assert first["file_count"] == 3
    assert first["live"] is True
    assert (
        app_state(emulator, app_id)["environments"]["staging"]["deploy_id"] == (first["deploy_id"])
    )
    assert r.id == f"{app_id}/staging"

    write_tree(tmp_path / "dist", site("v1"), mtime=2_000_000)  # rebuilt: same bytes, new mtimes
    (tmp_path / "dist" / "app.js").chmod(0o600)
    preview = r.preview(app_id=app_id, bundle=str(bundle), environment="staging")
    assert preview is not None and not preview.changed
    sent = len(emulator.requests())
    assert deploy(r, app_id, bundle) == first
    assert r.step == "same"
    assert len(emulator.requests()) == sent  # no change: nothing is sent

    write_tree(tmp_path / "dist", site("v2"))
    preview = r.preview(app_id=app_id, bundle=str(bundle), environment="staging")
    assert preview is not None and preview.kinds() == {"bundle_sha256": "update"}
    second = deploy(r, app_id, bundle)
    assert r.step == "update"
    assert second["deploy_id"] != first["deploy_id"]
    assert second["version"] == 2
    # The service's own diff of the two versions, summarised once the update deployed.
    assert "version 1 to 2, as the service diffs them: " in r.said()
    assert r.id == f"{app_id}/staging"

    deploy(r, app_id, bundle, message="new words")
    assert r.step == "update"
    assert emulator.count("POST", "/v1/apps/*/deploy") == 2  # a message alone deploys nothing
    assert "message: recorded in the state only; nothing is deployed" in r.said()

    other = emulator.create_app("other-site")
    preview = r.preview(app_id=other, bundle=str(bundle), environment="staging")
    # Another app, and the message dropped again.
    assert preview is not None and preview.kinds() == {"app_id": "replace", "message": "update"}
    replaced = deploy(r, other, bundle)
    assert r.step == "replace"
    assert r.id == f"{other}/staging"
    assert (
        app_state(emulator, other)["environments"]["staging"]["deploy_id"]
        == (replaced["deploy_id"])
    )


def test_bad_bundle_fails_in_check_before_any_upload(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("nocheck-site")
    bundle = write_tree(tmp_path / "dist", {"main.html": "x", "secret/.env": "A=1"})
    with pytest.raises(CheckFailed) as info:
        deploy(deployer(resource), app_id, bundle)
    assert "bundle: The bundle at" in str(info.value)
    assert "no index.html at its root" in str(info.value)
    assert emulator.count("POST", "/v1/apps/*") == 0


def test_failed_build_raises_headline_and_log_tail(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("fail-site")
    bundle = write_tree(tmp_path / "dist", site())
    emulator.next(deploy_fail_reason="asset upload to CDN failed")
    r = deployer(resource)
    with pytest.raises(MixpeekError) as info:
        deploy(r, app_id, bundle)
    first = headline(info.value)
    assert first.startswith("AppDeploy 'site': deploy dep_")
    assert (
        f"to staging of app {app_id} ended with status failed: asset upload to CDN failed." in first
    )
    assert "Last 5 log lines:" in str(info.value)
    assert "| Deploy failed: asset upload to CDN failed" in str(info.value)
    assert r.state is None
    # Build output was echoed live (the front door heads each line with the resource).
    assert "Validating bundle" in r.said()


@pytest.mark.slow
def test_timeout_then_next_up_adopts_the_same_deploy(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("slow-site")
    bundle = write_tree(tmp_path / "dist", site())
    # The deadline leaves packing and upload time enough on a loaded machine, so the deploy
    # is always triggered before it passes; the build outlasts it.
    emulator.timing(build_seconds=4.0)
    r = deployer(resource)
    with pytest.raises(MixpeekError) as info:
        deploy(r, app_id, bundle, timeout_seconds=1.5, poll_interval_seconds=0.1)
    first = headline(info.value)
    assert "did not finish within timeout_seconds=1.5" in first
    deploy_id = first.split("deploy ", 1)[1].split(" ", 1)[0]
    assert r.state is None

    again = deploy(r, app_id, bundle)
    assert again["deploy_id"] == deploy_id
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 1
    assert "re-attaching to deploy" in r.said()


def test_refresh_shows_drift_and_up_restores_the_declared_version(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("drift-site")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    r = deployer(resource)
    deploy(r, app_id, bundle)
    write_tree(tmp_path / "dist", site("v2"))
    declared = deploy(r, app_id, bundle)
    with emulator.api() as c:
        c.post(
            f"/v1/apps/{app_id}/versions/1/restore", json={"environment": "staging"}
        ).raise_for_status()

    refreshed = r.refresh()
    assert refreshed is not None and refreshed["live"] is False
    fixed = deploy(r, app_id, bundle)
    assert r.step == "update"
    assert (
        app_state(emulator, app_id)["environments"]["staging"]["deploy_id"]
        == (declared["deploy_id"])
    )
    assert fixed["live"] is True
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 2  # restored, not rebuilt


def test_staging_deploy_promoted_to_production_without_rebuild(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("promo-site")
    bundle = write_tree(tmp_path / "dist", site())
    staging = resource("AppDeploy", "staging", **DYNAMIC)
    prod = resource("AppPromotion", "prod", **DYNAMIC)

    def run() -> dict[str, Any]:
        built = deploy(staging, app_id, bundle)
        return prod.up(app_id=app_id, version=built["version"], environment="production")

    promoted = run()
    envs = app_state(emulator, app_id)["environments"]
    served = {env: emulator.served_version(app_id, env) for env in envs}
    assert served == {"staging": 1, "production": 1}
    assert promoted["deploy_id"] == envs["staging"]["deploy_id"]
    assert promoted["url"] == "https://promo-site.mxp.co"
    assert emulator.count("POST", "/v1/apps/*/deploy/upload-url") == 1
    assert emulator.count("PUT", "/_storage/*") == 1
    assert emulator.count("POST", "/v1/apps/*/deploy") == 1
    sent = len(emulator.requests())
    run()
    assert (staging.step, prod.step) == ("same", "same")
    assert len(emulator.requests()) == sent


def promoter(resource: Make) -> Resource:
    return resource("AppPromotion", "prod", **DYNAMIC)


@pytest.mark.parametrize("handed_over", [True, False], ids=["source-deploy-id", "found-served"])
def test_promotion_refuses_a_version_whose_smoke_test_failed(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, handed_over: bool
) -> None:
    app_id = emulator.create_app(f"smoke-site-{handed_over}".lower())
    bundle = write_tree(tmp_path / "dist", site())
    emulator.next(smoke_test_fail=True)
    built = deploy(deployer(resource), app_id, bundle, require_smoke_test=False)
    source = {"source_deploy_id": built["deploy_id"]} if handed_over else {}
    with pytest.raises(MixpeekError) as info:
        promoter(resource).up(app_id=app_id, version=1, **source)
    assert headline(info.value) == (
        f"AppPromotion 'prod': version 1 of app {app_id} is not promoted to production: its "
        f"deploy {built['deploy_id']} did not pass (GET https://staging-"
        f"smoke-site-{str(handed_over).lower()}.mxp.co/ returned HTTP 500); set "
        "require_smoke_test=False to promote it anyway."
    )
    assert "production" not in app_state(emulator, app_id)["environments"]


def test_promotion_refuses_when_it_cannot_tell_which_deploy_built_the_version(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("unknown-origin")
    staging = deployer(resource)
    deploy(staging, app_id, write_tree(tmp_path / "v1", site("v1")))
    second = deploy(staging, app_id, write_tree(tmp_path / "v1", site("v2")))["deploy_id"]
    prod = promoter(resource)
    # Version 1 is served nowhere now, and the program names no deploy: refuse, never guess.
    with pytest.raises(MixpeekError) as info:
        prod.up(app_id=app_id, version=1)
    assert "nothing tells which deploy built it" in headline(info.value)
    assert "pass source_deploy_id (for example staging.deploy_id)" in headline(info.value)
    assert "production" not in app_state(emulator, app_id)["environments"]
    with pytest.raises(MixpeekError) as info:
        prod.up(app_id=app_id, version=1, source_deploy_id=second)
    assert f"deploy {second} did not build it (their messages differ)" in headline(info.value)
    prod.up(app_id=app_id, version=1, require_smoke_test=False)
    assert emulator.served_version(app_id, "production") == 1
    assert prod.step == "create"


def test_smoke_failure_fails_the_deploy_and_restores_the_previous_version(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("guard-site")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    r = deployer(resource)
    deploy(r, app_id, bundle)
    write_tree(tmp_path / "dist", site("v2"))
    emulator.next(smoke_test_fail=True)
    with pytest.raises(MixpeekError) as info:
        deploy(r, app_id, bundle)
    assert "its smoke test failed" in headline(info.value)
    assert "staging was restored to version 1" in headline(info.value)
    assert emulator.served_version(app_id, "staging") == 1


@pytest.mark.parametrize("on_delete", ["retain", "rollback"])
def test_destroy_follows_on_delete(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, on_delete: str
) -> None:
    app_id = emulator.create_app(f"bye-{on_delete}")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    deploy(deployer(resource), app_id, bundle)
    later = deployer(resource, "next")
    deploy(later, app_id, write_tree(tmp_path / "second", site("v2")), on_delete=on_delete)
    assert emulator.served_version(app_id, "staging") == 2  # "next" serves v2 over "site"'s v1
    later.destroy()  # the program drops "next"
    expected = 1 if on_delete == "rollback" else 2
    assert emulator.served_version(app_id, "staging") == expected


# A 30 s poll interval would hold the run past this test's time limit; the stream's end wakes
# the waiter instead (tests/unit/test_waiting.py shows the same on a fake clock).
@pytest.mark.timeout(25)
def test_outputs_arrive_while_the_service_finishes(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("quick-site")
    bundle = write_tree(tmp_path / "dist", site())
    emulator.timing(build_seconds=1.0)
    out = deploy(deployer(resource), app_id, bundle, poll_interval_seconds=30)
    assert out["version"] == 1
    assert emulator.count("GET", f"/v1/apps/{app_id}/deploys/*/logs/stream") == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"action": "delay", "delay": 600.0}, id="hangs"),
        pytest.param({"status": 503, "retry_after": "1"}, id="answers-503-forever"),
    ],
)
@pytest.mark.timeout(45)  # the read timeout and the retry budget alone would take minutes
def test_timeout_seconds_is_one_deadline_for_every_wait_and_retry(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, fault: dict[str, Any]
) -> None:
    app_id = emulator.create_app("stuck-site")
    bundle = write_tree(tmp_path / "dist", site())
    emulator.fault(method="GET", path=f"/v1/apps/{app_id}/deploys/*", times=10**6, **fault)
    with pytest.raises(MixpeekError) as info:
        deploy(deployer(resource), app_id, bundle, timeout_seconds=3, poll_interval_seconds=0.2)
    first = headline(info.value)
    assert first.startswith("AppDeploy 'site': deploy dep_")
    assert "did not finish within timeout_seconds=3 (last status unknown)" in first
    deploy_id = first.split("deploy ", 1)[1].split(" ", 1)[0]
    assert deploy_id in emulator.records().deploys


@pytest.mark.slow
def test_promotion_to_a_missing_version_lists_the_last_five_that_exist(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("six-versions")
    r = deployer(resource)
    for i in range(6):
        deploy(
            r, app_id, write_tree(tmp_path / f"dist{i}", site(f"v{i}")), poll_interval_seconds=0.1
        )
    with pytest.raises(MixpeekError) as info:
        promoter(resource).up(app_id=app_id, version=99)
    assert (
        f"app {app_id} has no version 99 to promote to production (the last 5 it has: "
        "6, 5, 4, 3, 2; only completed deploys become versions)"
    ) in headline(info.value), str(info.value)
