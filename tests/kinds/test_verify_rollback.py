"""Promotion that verifies the live site and rolls back by itself, in the deploy layer, against
the emulator's live sites (``/_sites/...``): a staging AppDeploy and a production AppPromotion
of its version, kept as the dynamic host keeps them. Ported from the protocol tier, which keeps
the secret in ``verify`` (the dynamic front door's own way of learning what is secret)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mixpeek_pulumi.errors import MixpeekError
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.scripted_server import Reply, ScriptedServer
from tests.sites import site, write_tree

FAST: dict[str, Any] = {"checks": 2, "interval_seconds": 0.1, "timeout_seconds": 3}
DYNAMIC: dict[str, Any] = {"keeps_partial": False, "drops_nulls": True}
"""Kept as the dynamic host keeps a resource, as the protocol tier ran these."""


def healthy(version: str) -> dict[str, str]:
    return {**site(version), "healthz": "ok"}


class Program:
    """The protocol tier's program: AppDeploy "site" to staging, and AppPromotion "prod" of
    its version (and deploy) to production, verified as ``verify`` says."""

    def __init__(self, resource: Make, emulator: EmulatorHandle, slug: str) -> None:
        self.emulator = emulator
        self.app = emulator.create_app(slug)
        self.site = resource("AppDeploy", "site", **DYNAMIC)
        self.prod = resource("AppPromotion", "prod", **DYNAMIC)

    def up(self, bundle: Path, verify: Any = None, **promotion: Any) -> dict[str, Any]:
        staging = self.site.up(app_id=self.app, bundle=str(bundle), environment="staging")
        return self.prod.up(
            app_id=self.app,
            version=staging["version"],
            source_deploy_id=staging["deploy_id"],
            verify=verify,
            **promotion,
        )

    def live(self) -> dict[str, Any]:
        """A check of production's own live site."""
        return {"url": f"{self.emulator.url}/_sites/{self.app}/production", "path": "/healthz"}

    def writes(self) -> int:
        """Deploy and upload requests: what a promotion must never send."""
        return self.emulator.count("POST", f"/v1/apps/{self.app}/deploy") + self.emulator.count(
            "POST", f"/v1/apps/{self.app}/deploy/upload-url"
        )

    def served(self) -> int | None:
        return self.emulator.served_version(self.app, "production")


def headline(error: BaseException) -> str:
    return str(error).splitlines()[0]


@pytest.mark.slow
def test_a_good_version_verifies_and_a_failing_one_is_rolled_back(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    p = Program(resource, emulator, "verify-site")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    first = p.up(bundle, {**p.live(), **FAST})
    assert (first["version"], first["verified"], first.get("previous_version")) == (1, True, None)
    assert "verified production: 2 checks in a row passed" in p.prod.said()

    write_tree(tmp_path / "dist", site("v2"))
    (bundle / "healthz").unlink()  # version 2 has no /healthz
    for _ in range(2):  # a rerun does the same again, never anything worse
        before = p.writes()
        with pytest.raises(MixpeekError) as info:
            p.up(bundle, {**p.live(), **FAST})
        assert headline(info.value) == (
            "AppPromotion 'prod': version 2 failed verification after the switch to production "
            f"(GET {emulator.url}/_sites/{p.app}/production/healthz answered 404, "
            "expected 200); production serves version 1 again."
        )
        assert p.served() == 1
        assert p.writes() - before in (0, 2)  # only staging's first deploy of v2
        assert p.prod.state is not None
        assert p.prod.state["version"] == 1  # the state is as it was
        assert p.prod.state["verified"] is True


@pytest.mark.slow
def test_nothing_served_before_is_said_and_left_as_it_is(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    p = Program(resource, emulator, "verify-first")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    with pytest.raises(MixpeekError) as info:
        p.up(bundle, {**p.live(), **FAST})
    assert headline(info.value).endswith(
        "answered 404, expected 200); production served nothing before, so it still serves "
        "version 1."
    )
    assert p.served() == 1
    assert p.site.state is not None and p.prod.state is None


@pytest.mark.slow
def test_a_restore_that_fails_says_what_serves_now(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    p = Program(resource, emulator, "verify-stuck")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    p.up(bundle, {**p.live(), **FAST})
    write_tree(tmp_path / "dist", site("v2"))
    (bundle / "healthz").unlink()
    emulator.fault(
        method="POST", path=f"/v1/apps/{p.app}/versions/1/restore", status=500, times=100
    )
    with pytest.raises(MixpeekError) as info:
        p.up(bundle, {**p.live(), **FAST})
    first = headline(info.value)
    assert first.startswith("AppPromotion 'prod': version 2 failed verification")
    assert "restoring version 1 failed too (" in first
    assert first.endswith("and production serves version 2.")
    assert p.served() == 2


@pytest.mark.slow
def test_a_site_that_holds_every_check_fails_in_time_and_no_check_carries_the_key(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    p = Program(resource, emulator, "verify-held")
    bundle = write_tree(tmp_path / "dist", healthy("v1"))
    server = ScriptedServer()
    try:
        server.default[("GET", "/healthz")] = Reply(200, raw=b"ok")
        checked = {"url": server.url, "path": "/healthz", **FAST}
        assert p.up(bundle, checked)["verified"] is True
        write_tree(tmp_path / "dist", healthy("v2"))
        server.default[("GET", "/healthz")] = Reply(200, raw=b"ok", delay=60)
        with pytest.raises(MixpeekError) as info:
            p.up(bundle, checked)
        first = headline(info.value)
        # The check ends at the bound in force: its own, or what is left of the verification's
        # 3 s once the version's file list was read (2.9 s on a busy machine); never later.
        held = re.search(
            rf"\(GET {re.escape(server.url)}/healthz did not answer in full within "
            r"([\d.]+) s\)",
            first,
        )
        assert held is not None, first
        assert 0 < float(held.group(1)) <= 3, first
        assert first.endswith("production serves version 1 again.")
        assert p.served() == 1
        assert server.seen, "the checks reached the site"
        for seen in server.seen:
            assert "authorization" not in {k.lower() for k in seen.headers}
            assert emulator.api_key not in str(seen.headers)
    finally:
        server.close()


def test_on_delete_rollback_keeps_served_nothing_through_later_promotions(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The dynamic host leaves a null output out of state: "served nothing before the first
    promotion" must survive a second promotion, or destroy would restore version 1."""
    p = Program(resource, emulator, "rollback-nothing")
    bundle = write_tree(tmp_path / "dist", site("v1"))
    p.up(bundle, on_delete="rollback")
    write_tree(tmp_path / "dist", site("v2"))
    p.up(bundle, on_delete="rollback")
    assert p.prod.state is not None
    assert p.prod.state["rollback_version"] == 0
    assert p.prod.state["previous_version"] == 1
    p.prod.destroy()
    assert p.served() == 2
    assert "production served nothing before this promotion" in p.prod.said()
