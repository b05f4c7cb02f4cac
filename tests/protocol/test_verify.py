"""A secret in a verified promotion, through the real provider host and the engine stand-in,
against the emulator's live sites (``/_sites/...``): only the dynamic front door, in the host,
learns from the program which inputs are secret. Verification and rollback themselves run
in-process in tests/kinds/test_verify_rollback.py and tests/kinds/test_verify.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from mixpeek_pulumi import AppDeploy, AppPromotion, VerifyArgs
from tests.engine import EngineError, Stack, is_secret, run_program
from tests.sites import site, write_tree


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
