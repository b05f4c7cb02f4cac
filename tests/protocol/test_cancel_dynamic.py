"""Ctrl-C with the dynamic resources: the engine's Cancel reaches the SDK's real provider host
(whose own Cancel does nothing), every wait ends at once saying "interrupted", and the journal
keeps the deploy for the next run on that machine, which re-attaches instead of deploying again.
The build takes longer than the test's own timeout, so only the Cancel can end the create."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from google.protobuf import empty_pb2

from mixpeek_pulumi import AppDeploy
from tests.emulator_fixture import wait_until
from tests.engine import EngineError, Stack, open_stack, run_program
from tests.sites import site, write_tree


@pytest.mark.timeout(90)
def test_cancel_ends_a_dynamic_create_and_the_next_run_reattaches(
    stack: Stack, tmp_path: Path
) -> None:
    app_id = stack.emulator.create_app("dynamic-cancel")
    bundle = write_tree(tmp_path / "dist", site())
    stack.emulator.timing(build_seconds=8)

    def program() -> None:
        AppDeploy(
            "site",
            app_id=app_id,
            bundle=str(bundle),
            timeout_seconds=3000,
            poll_interval_seconds=30,
        )

    deploys = f"/v1/apps/{app_id}/deploy"

    def cancel_once_building() -> None:
        if wait_until(lambda: stack.emulator.count("POST", deploys) == 1, timeout=30):
            stack.host.stub.Cancel(empty_pb2.Empty())

    canceller = threading.Thread(target=cancel_once_building, daemon=True)
    canceller.start()
    with pytest.raises(EngineError) as info:
        run_program(stack.engine, program)
    canceller.join()
    headline = info.value.headline
    assert "was interrupted before it finished" in headline, headline
    assert "the next `pulumi up` re-attaches to it instead of deploying again" in headline
    deploy_id = headline.split("deploy ", 1)[1].split(" ", 1)[0]

    again = open_stack(stack.emulator, tmp_path)  # the next run: a new host, the same journal
    try:
        result = run_program(again.engine, program)
        assert f"re-attaching to deploy {deploy_id} (" in again.host.output()
    finally:
        again.host.close()
    assert result.steps == [("create", "site")]
    assert stack.emulator.count("POST", deploys) == 1
