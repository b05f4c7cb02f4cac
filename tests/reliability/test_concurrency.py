"""Twenty deploys in one program: the host serves four at a time, and none interferes."""

from __future__ import annotations

from pathlib import Path

import pulumi

from mixpeek_pulumi import AppDeploy
from tests.engine import Stack, run_program
from tests.sites import site, write_tree


def test_twenty_app_deploys(stack: Stack, tmp_path: Path) -> None:
    apps = [stack.emulator.create_app(f"many-{i:02d}") for i in range(20)]
    bundles = [write_tree(tmp_path / f"dist{i}", site(f"v{i}")) for i in range(20)]

    def program() -> None:
        for i, (app_id, bundle) in enumerate(zip(apps, bundles, strict=True)):
            d = AppDeploy(
                f"site{i:02d}", app_id=app_id, bundle=str(bundle), poll_interval_seconds=0.5
            )
            pulumi.export(f"deploy{i:02d}", d.deploy_id)

    result = run_program(stack.engine, program)
    deploys = [result.outputs[f"deploy{i:02d}"] for i in range(20)]
    assert len(set(deploys)) == 20
    with stack.emulator.api() as c:
        for app_id, deploy_id, i in zip(apps, deploys, range(20), strict=True):
            app = c.get(f"/v1/apps/{app_id}").json()
            assert app["environments"]["production"]["deploy_id"] == deploy_id
            files = c.get(f"/v1/apps/{app_id}/versions/1").json()["asset_manifest"]
            assert set(files) == {"index.html", "app.js", "assets/style.css"}, i
    assert stack.emulator.count("POST", "/v1/apps/*/deploy") == 20
    again = run_program(stack.engine, program).steps
    assert sorted(again) == [("same", f"site{i:02d}") for i in range(20)]
