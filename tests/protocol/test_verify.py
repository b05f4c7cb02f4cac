"""Promotion that verifies the live site and rolls back by itself, through the real provider
host and the engine stand-in, against the emulator's live sites (``/_sites/...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from mixpeek_pulumi import AppDeploy, AppPromotion, VerifyArgs
from tests.engine import EngineError, Stack, is_secret, run_program
from tests.scripted_server import Reply, ScriptedServer
from tests.sites import site, write_tree

FAST = {"checks": 2, "interval_seconds": 0.1, "timeout_seconds": 3}


def healthy(version: str) -> dict[str, str]:
    return {**site(version), "healthz": "ok"}


def program(app_id: str, bundle: Path, verify: Any) -> Any:
    def run() -> None:
        staging = AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging")
        prod = AppPromotion(
            "prod",
            app_id=app_id,
            version=staging.version,
            source_deploy_id=staging.deploy_id,
            verify=verify,
        )
        pulumi.export("version", prod.version)
        pulumi.export("verified", prod.verified)
        pulumi.export("previous_version", prod.previous_version)

    return run


def live(stack: Stack, app_id: str) -> Any:
    return {"url": f"{stack.emulator.url}/_sites/{app_id}/production", "path": "/healthz", **FAST}


def writes(stack: Stack, app_id: str) -> int:
    """Deploy and upload requests: what a promotion must never send."""
    deploys: int = stack.emulator.count("POST", f"/v1/apps/{app_id}/deploy")
    return deploys + int(stack.emulator.count("POST", f"/v1/apps/{app_id}/deploy/upload-url"))


def test_a_good_version_verifies_and_a_failing_one_is_rolled_back(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("verify-site")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    first = run_program(stack.engine, program(app_id, bundle, VerifyArgs(**live(stack, app_id))))
    assert first.outputs == {"version": 1, "verified": True, "previous_version": None}
    assert "verified production: 2 checks in a row passed" in stack.host.output()

    write_tree(tmp_path / "dist", site("v2"))
    (bundle / "healthz").unlink()  # version 2 has no /healthz
    for _ in range(2):  # a rerun does the same again, never anything worse
        before = writes(stack, app_id)
        with pytest.raises(EngineError) as info:
            run_program(stack.engine, program(app_id, bundle, live(stack, app_id)))
        assert info.value.headline == (
            "AppPromotion 'prod': version 2 failed verification after the switch to production "
            f"(GET {stack.emulator.url}/_sites/{app_id}/production/healthz answered 404, "
            "expected 200); production serves version 1 again."
        )
        assert stack.emulator.served_version(app_id, "production") == 1
        assert writes(stack, app_id) - before in (0, 2)  # only staging's first deploy of v2
        assert stack.engine.outputs("prod")["version"] == 1  # the state is as it was
        assert stack.engine.outputs("prod")["verified"] is True


def test_nothing_served_before_is_said_and_left_as_it_is(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("verify-first")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(app_id, bundle, live(stack, app_id)))
    assert info.value.headline.endswith(
        "answered 404, expected 200); production served nothing before, so it still serves "
        "version 1."
    )
    assert stack.engine.state.keys() == {
        stack.engine.urn("pulumi-python:dynamic/mixpeek:AppDeploy", "site")
    } or ("prod" not in {r.name for r in stack.engine.state.values()})


def test_a_restore_that_fails_says_what_serves_now(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.emulator.create_app("verify-stuck")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    run_program(stack.engine, program(app_id, bundle, live(stack, app_id)))
    write_tree(tmp_path / "dist", site("v2"))
    (bundle / "healthz").unlink()
    stack.emulator.fault(
        method="POST", path=f"/v1/apps/{app_id}/versions/1/restore", status=500, times=100
    )
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(app_id, bundle, live(stack, app_id)))
    headline = info.value.headline
    assert headline.startswith("AppPromotion 'prod': version 2 failed verification")
    assert "restoring version 1 failed too (" in headline
    assert headline.endswith("and production serves version 2.")


def test_a_site_that_holds_every_check_fails_in_time_and_no_check_carries_the_key(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("verify-held")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    server = ScriptedServer()
    try:
        server.default[("GET", "/healthz")] = Reply(200, raw=b"ok")
        checked = {"url": server.url, "path": "/healthz", **FAST}
        assert run_program(stack.engine, program(app_id, bundle, checked)).outputs["verified"]
        write_tree(tmp_path / "dist", healthy("v2"))
        server.default[("GET", "/healthz")] = Reply(200, raw=b"ok", delay=60)
        with pytest.raises(EngineError) as info:
            run_program(stack.engine, program(app_id, bundle, checked))
        assert (
            f"(GET {server.url}/healthz did not answer in full within 3 s)" in info.value.headline
        )
        assert info.value.headline.endswith("production serves version 1 again.")
        assert server.seen, "the checks reached the site"
        for seen in server.seen:
            assert "authorization" not in {k.lower() for k in seen.headers}
            assert stack.emulator.api_key not in str(seen.headers)
    finally:
        server.close()


def test_on_delete_rollback_keeps_served_nothing_through_later_promotions(
    stack: Stack, tmp_path: Path
) -> None:
    """The dynamic host leaves a null output out of state: "served nothing before the first
    promotion" must survive a second promotion, or destroy would restore version 1."""
    app_id = stack.emulator.create_app("rollback-nothing")
    bundle = write_tree(tmp_path / "dist", site("v1"))

    def promoted() -> None:
        staging = AppDeploy("site", app_id=app_id, bundle=str(bundle), environment="staging")
        AppPromotion(
            "prod",
            app_id=app_id,
            version=staging.version,
            on_delete="rollback",
            source_deploy_id=staging.deploy_id,
        )

    run_program(stack.engine, promoted)
    write_tree(tmp_path / "dist", site("v2"))
    run_program(stack.engine, promoted)
    assert stack.engine.outputs("prod")["rollback_version"] == 0
    assert stack.engine.outputs("prod")["previous_version"] == 1
    stack.engine.destroy()
    assert stack.emulator.served_version(app_id, "production") == 2
    assert "production served nothing before this promotion" in stack.host.output()


def test_a_secret_in_verify_is_never_printed_and_stays_secret(stack: Stack, tmp_path: Path) -> None:
    """The engine hands a dynamic provider every value in the clear; the program side tells
    it which inputs it marked secret, so they stay out of every line and error."""
    token = "bypass-5e8c1d7a9b"
    app_id = stack.emulator.create_app("verify-secret")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    site_url = f"{stack.emulator.url}/_sites/{app_id}/production"

    def verify() -> VerifyArgs:
        path = pulumi.Output.secret(f"/healthz?bypass={token}")
        return VerifyArgs(url=site_url, path=path, checks=1, timeout_seconds=2)

    assert run_program(stack.engine, program(app_id, bundle, verify())).outputs["verified"]
    kept = stack.engine.find("prod").outputs["verify"]
    assert is_secret(kept["path"]) and not is_secret(kept["url"])

    write_tree(tmp_path / "dist", site("v2"))
    (bundle / "healthz").unlink()
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program(app_id, bundle, verify()))
    assert "version 2 failed verification" in info.value.headline
    assert f"(GET {site_url}[REDACTED] answered 404, expected 200)" in info.value.headline
    assert token not in str(info.value)
    assert token not in stack.host.output()
