"""An app with a long history keeps working: 40 versions of a 4,000-file site, and a
60,000-file bundle deployed twice, still deploy, refresh and promote, although the app's own
answer then carries tens of MB of file lists (past the 16 MiB an answer may have whole)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mixpeek_emulator.state.apps import Version
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.sites import site, write_tree


def seed(emulator: EmulatorHandle, app_id: str, versions: int, files: int) -> None:
    """Versions an earlier life of the app left, each listing ``files`` files, as the service
    would keep them (their bytes are never asked for)."""
    manifest: dict[str, dict[str, Any]] = {
        f"assets/part{i % 50}/file{i:06}.js": {"hash": f"{i:064x}", "size": 100 + i % 900}
        for i in range(files)
    }
    store = emulator.running.emulator.store
    with store.lock:
        app = store.state.apps[app_id]
        for _ in range(versions):
            number = len(app.versions) + 1
            app.versions.append(
                Version(
                    version=number,
                    deploy_id=f"dep_seed{number:04}",
                    environment="production",
                    message=f"build {number}",
                    deployed_at=time.time(),
                    build_duration_ms=1000,
                    asset_prefix=f"apps/{app_id}/v{number}/",
                    bundle_s3_key=None,
                    files=manifest,
                    source_files=None,
                    git_commit_sha=None,
                    git_commit_message=None,
                    git_author=None,
                )
            )


def app_answer_size(emulator: EmulatorHandle, app_id: str) -> int:
    with emulator.api() as api:
        return len(api.get(f"/v1/apps/{app_id}").content)


@pytest.mark.slow
def test_an_app_with_40_versions_of_a_4000_file_site_deploys_refreshes_and_promotes(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app = emulator.create_app("long-history")
    seed(emulator, app, 40, 4000)
    assert app_answer_size(emulator, app) > 16 * 1024 * 1024
    staging = resource("AppDeploy", "site")
    out = staging.up(
        app_id=app,
        bundle=str(write_tree(tmp_path / "dist", site("v41"))),
        environment="staging",
        poll_interval_seconds=0.1,
    )
    assert out["version"] == 41
    assert out["bundle_files"] is not None  # the new version's own list, read alone
    assert staging.refresh() is not None
    assert staging.state is not None and staging.state["live"] is True
    prod = resource("AppPromotion", "prod")
    prod.up(app_id=app, version=41, source_deploy_id=out["deploy_id"])
    assert emulator.served_version(app, "production") == 41
    assert prod.refresh() is not None


@pytest.mark.slow
def test_a_60000_file_bundle_deploys_a_second_time_and_promotes(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    files = {f"assets/part{i % 100}/f{i:05}.js": f"{i}" for i in range(60_000)}
    app = emulator.create_app("huge-bundle")
    seed(emulator, app, 1, 60_000)  # its first deploy
    files["index.html"] = "<h1>second</h1>"
    staging = resource("AppDeploy", "site")
    out = staging.up(
        app_id=app,
        bundle=str(write_tree(tmp_path / "dist", files)),
        environment="staging",
        poll_interval_seconds=0.2,
    )
    assert out["version"] == 2
    assert app_answer_size(emulator, app) > 16 * 1024 * 1024
    assert out["bundle_files"] is None  # over the list the state keeps, and said so nowhere
    assert staging.refresh() is not None
    prod = resource("AppPromotion", "prod")
    prod.up(
        app_id=app,
        version=2,
        source_deploy_id=out["deploy_id"],
        verify={"url": f"{emulator.url}/_sites/{app}/production", "checks": 1},
    )
    assert emulator.served_version(app, "production") == 2
    assert prod.state is not None and prod.state["verified"] is True
