"""Twenty deploys in one program: the host serves four at a time, and none interferes."""

from __future__ import annotations

import re
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
    # Twenty resources printed side by side, and every line is one resource's, whole.
    printed = [x for x in stack.host.output().splitlines() if "AppDeploy site" in x]
    assert len(printed) > 20 * 5
    for line in printed:
        assert re.fullmatch(r"AppDeploy site\d\d: [^\n]*", line), line
        assert line.count("AppDeploy site") == 1, line
    again = run_program(stack.engine, program).steps
    assert sorted(again) == [("same", f"site{i:02d}") for i in range(20)]


def test_deploys_wait_side_by_side_not_four_at_a_time(stack: Stack, tmp_path: Path) -> None:
    """The SDK's provider host serves 4 calls at once; ours widens it, so the service sees
    more than 4 of one program's builds running together (read from its own records)."""
    stack.emulator.timing(build_seconds=3.0)
    apps = [stack.emulator.create_app(f"wide-{i:02d}") for i in range(12)]
    bundle = write_tree(tmp_path / "dist", site())

    def program() -> None:
        for i, app_id in enumerate(apps):
            AppDeploy(f"w{i:02d}", app_id=app_id, bundle=str(bundle), poll_interval_seconds=0.5)

    run_program(stack.engine, program)
    deploys = list(stack.emulator.running.emulator.store.state.deploys.values())
    spans = [(d.queued_at, d.done_at) for d in deploys]
    overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert len(deploys) == 12
    assert overlap > 4, f"at most {overlap} builds ran at once"
