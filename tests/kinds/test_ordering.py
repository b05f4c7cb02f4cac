"""CI jobs out of order, in the deploy layer: a deploy or promotion of an older commit never
takes an environment from a newer one unless the program says so, what git cannot tell is
said in one line, and an older build that took an environment over is named and undone."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_pulumi.errors import MixpeekError
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.gitrepo import checkout, commit, history
from tests.kinds.conftest import Make
from tests.sites import site

FAST = {"poll_interval_seconds": 0.1}


def writes(emulator: EmulatorHandle, app: str) -> int:
    """Upload URLs, deploys and restores asked of the service: what a refusal never sends."""
    return sum(
        emulator.count("POST", pattern)
        for pattern in (
            f"/v1/apps/{app}/deploy",
            f"/v1/apps/{app}/deploy/upload-url",
            f"/v1/apps/{app}/versions/*/restore",
        )
    )


def test_a_deploy_of_an_older_commit_is_refused_naming_both_and_sends_nothing(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    c1, c2 = history(tmp_path / "origin", [site("v1"), site("v2")])
    newer = checkout(tmp_path / "origin", tmp_path / "runner-2", c2)
    older = checkout(tmp_path / "origin", tmp_path / "runner-1", c1)
    app = emulator.create_app("ordered")
    resource("AppDeploy", "site", journal_dir=tmp_path / "j2").up(
        app_id=app, bundle=str(newer / "dist"), **FAST
    )
    sent = writes(emulator, app)
    late = resource("AppDeploy", "site", journal_dir=tmp_path / "j1")
    with pytest.raises(MixpeekError) as info:
        late.up(app_id=app, bundle=str(older / "dist"), **FAST)
    assert str(info.value).splitlines()[0] == (
        f"AppDeploy 'site': refused to switch production of app {app} to commit {c1[:7]} (this "
        f"bundle): it is older than commit {c2[:7]}, which production serves now (version 1), "
        "so it would undo newer work, and nothing was sent; set `allow_older_commit` to true to "
        "roll back on purpose."
    )
    assert writes(emulator, app) == sent
    assert emulator.served_version(app, "production") == 1

    late.up(app_id=app, bundle=str(older / "dist"), allow_older_commit=True, **FAST)
    assert emulator.served_version(app, "production") == 2
    assert f"is older than commit {c2[:7]}, which production serves; going on, as " in late.said()


def test_a_shallow_clone_that_lacks_the_live_commit_goes_on_and_says_why(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    origin = tmp_path / "origin"
    (c1,) = history(origin, [site("v1")])
    shallow = checkout(origin, tmp_path / "shallow", c1, depth=1)
    c2 = commit(origin, site("v2"))
    full = checkout(origin, tmp_path / "full", c2)
    app = emulator.create_app("shallow")
    resource("AppDeploy", "site", journal_dir=tmp_path / "j2").up(
        app_id=app, bundle=str(full / "dist"), **FAST
    )
    old = resource("AppDeploy", "site", journal_dir=tmp_path / "j1")
    old.up(app_id=app, bundle=str(shallow / "dist"), **FAST)
    assert emulator.served_version(app, "production") == 2
    assert (
        f"commit {c1[:7]} of this bundle is not compared with commit {c2[:7]}, which production "
        f"serves: this clone does not have commit {c2[:12]} (a shallow clone? fetch the whole "
        "history, e.g. actions/checkout with fetch-depth: 0)"
    ) in old.said()


def test_a_promotion_of_an_older_commit_is_refused_unless_allowed(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c1, c2 = history(tmp_path / "origin", [site("v1"), site("v2")])
    work = checkout(tmp_path / "origin", tmp_path / "work", c2)
    monkeypatch.chdir(work)  # the program's folder: where a promotion asks git
    app = emulator.create_app("promoted")
    staging = resource("AppDeploy", "site")
    for sha, version in ((c1, 1), (c2, 2)):
        built = checkout(tmp_path / "origin", tmp_path / f"build-{version}", sha)
        staging.up(app_id=app, bundle=str(built / "dist"), environment="staging", **FAST)
    prod = resource("AppPromotion", "prod")
    prod.up(app_id=app, version=2, require_smoke_test=False)
    with pytest.raises(MixpeekError) as info:
        prod.up(app_id=app, version=1, require_smoke_test=False)
    assert (
        str(info.value)
        .splitlines()[0]
        .startswith(
            f"AppPromotion 'prod': refused to switch production of app {app} to commit {c1[:7]} "
            f"(version 1): it is older than commit {c2[:7]}, which production serves now (version 2)"
        )
    )
    assert emulator.served_version(app, "production") == 2
    prod.up(app_id=app, version=1, require_smoke_test=False, allow_older_commit=True)
    assert emulator.served_version(app, "production") == 1


def hard_killed_deploy(emulator: EmulatorHandle, app: str, files: dict[str, str], sha: str) -> str:
    """What a runner killed with SIGKILL mid-build leaves: its upload and deploy request
    reached the service, and nothing else of it exists anywhere (no state, no journal)."""
    key = emulator.upload_bundle(app, files)
    with emulator.api() as api:
        answer = api.post(
            f"/v1/apps/{app}/deploy",
            json={
                "message": "build 1",
                "environment": "production",
                "bundle_s3_key": key,
                "git_commit_sha": sha,
            },
        )
        answer.raise_for_status()
        return str(answer.json()["deploy_id"])


@pytest.mark.slow
def test_an_older_build_that_took_over_late_is_named_and_undone(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    c1, c2 = history(tmp_path / "origin", [site("v1"), site("v2")])
    newer = checkout(tmp_path / "origin", tmp_path / "runner-2", c2)
    app = emulator.create_app("took-over")
    emulator.timing(build_seconds=6)
    late = hard_killed_deploy(emulator, app, site("v1"), c1)
    emulator.timing(build_seconds=0.4)
    runner = resource("AppDeploy", "site", journal_dir=tmp_path / "runner-2")
    out = runner.up(app_id=app, bundle=str(newer / "dist"), **FAST)
    ours = out["deploy_id"]
    # The killed runner's build ends last, and the service puts it live.
    assert wait_until(lambda: emulator.served_version(app, "production") == 2, timeout=30)

    refreshed = runner.refresh()
    assert refreshed is not None and refreshed["live"] is False
    named = (
        f"production of app {app} serves deploy {late} (version 2, commit {c1[:7]}), not deploy "
        f"{ours} (version 1, commit {c2[:7]}), which this stack expects"
    )
    assert f"{named}; the next `pulumi up` puts it back" in runner.said()

    runner.up(app_id=app, bundle=str(newer / "dist"), **FAST)
    assert emulator.served_version(app, "production") == 1
    assert f"{named}: restored version 1" in runner.said()


def test_a_newer_build_that_took_over_is_left_and_the_update_refused(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    c1, c2 = history(tmp_path / "origin", [site("v1"), site("v2")])
    older = checkout(tmp_path / "origin", tmp_path / "runner-1", c1)
    app = emulator.create_app("newer-took-over")
    runner = resource("AppDeploy", "site", journal_dir=tmp_path / "runner-1")
    runner.up(app_id=app, bundle=str(older / "dist"), **FAST)
    hard_killed_deploy(emulator, app, site("v2"), c2)
    assert wait_until(lambda: emulator.served_version(app, "production") == 2, timeout=30)
    runner.refresh()
    with pytest.raises(MixpeekError) as info:
        runner.up(app_id=app, bundle=str(older / "dist"), **FAST)
    assert (
        str(info.value)
        .splitlines()[0]
        .startswith(
            f"AppDeploy 'site': refused to switch production of app {app} to commit {c1[:7]} "
            f"(version 1): it is older than commit {c2[:7]}, which production serves now"
        )
    )
    assert emulator.served_version(app, "production") == 2
