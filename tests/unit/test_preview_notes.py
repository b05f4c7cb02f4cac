"""What a preview says under an AppDeploy whose content changed: the files that differ, or, when
a list of files is missing, the true reason: a state an earlier release wrote, a bundle over
the cap, or a list that was never kept. Stacks of 0.1.0 are read from the upgrade fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixpeek_pulumi.kinds.registry import KINDS
from mixpeek_pulumi.kinds.spec import AppDeployState
from mixpeek_pulumi.native.wire import Codec
from scripts.make_upgrade_fixture import FIXTURE
from tests.sites import site, write_tree

KIND = KINDS["AppDeploy"]
NO_LIST = "bundle: its content changed (no file list to compare: "


def released_state(project: str) -> dict[str, Any]:
    """site-staging's outputs as release 0.1.0 left them, under the models' names."""
    stack = FIXTURE / ".pulumi" / "stacks" / f"mixpeek-upgrade-{project}" / "upgrade.json"
    resources = json.loads(stack.read_text())["checkpoint"]["latest"]["resources"]
    [outputs] = [r["outputs"] for r in resources if r["urn"].endswith("AppDeploy::site-staging")]
    if project == "native":
        return Codec(KIND).model(outputs)
    return {k: v for k, v in outputs.items() if k != "__provider"}


def current_state(*, dynamic: bool, **fields: Any) -> dict[str, Any]:
    """A state this release writes: the dynamic resources' state drops every null."""
    defaults: dict[str, Any] = {
        "app_id": "app_1",
        "environment": "staging",
        "bundle": "/old/dist",
        "bundle_sha256": "0" * 64,
        "deploy_id": "dep_1",
        "version": 1,
        "status": "complete",
        "file_count": 3,
        "live": True,
        "verified": False,
    }
    state = AppDeployState(**{**defaults, **fields}).to_outputs()
    return {k: v for k, v in state.items() if v is not None} if dynamic else state


def note(olds: dict[str, Any], bundle: Path) -> str:
    """The line a preview shows under the resource, through check and diff as both doors call
    them."""
    news = {
        "app_id": olds["app_id"],
        "environment": olds["environment"],
        "bundle": str(bundle),
        "resource_name": "site",
    }
    computed, failures = KIND.check(olds, news, set())
    assert not failures, failures
    [said] = KIND.diff(KIND.state.load(olds), {**news, **computed}, set()).notes
    return said


@pytest.mark.parametrize("project", ["dynamic", "native"])
def test_a_state_of_an_earlier_release_is_named_as_the_reason(project: str, tmp_path: Path) -> None:
    olds = released_state(project)
    assert olds["file_count"] == 3 and "bundle_files" not in olds  # a small bundle, no list
    said = note(olds, write_tree(tmp_path / "dist", site("v2")))
    assert said == (
        NO_LIST + "the state was written by an earlier release of mixpeek-pulumi, which kept "
        "none; the next `pulumi up` records one)"
    )


@pytest.mark.parametrize("dynamic", [True, False])
def test_a_deployed_bundle_over_the_cap_is_named_as_the_reason(
    dynamic: bool, tmp_path: Path
) -> None:
    olds = current_state(dynamic=dynamic, file_count=1500)
    said = note(olds, write_tree(tmp_path / "dist", site("v2")))
    assert said == (
        NO_LIST + "the deployed bundle has 1,500 files, and the state keeps a list only for "
        "bundles of up to 1,000)"
    )


@pytest.mark.parametrize("dynamic", [True, False])
def test_a_list_never_kept_is_named_as_the_reason(dynamic: bool, tmp_path: Path) -> None:
    said = note(current_state(dynamic=dynamic), write_tree(tmp_path / "dist", site("v2")))
    assert said == (
        NO_LIST + "none was kept for the deployed version, as the service gave no sha256 "
        "hashes of its files; the next `pulumi up` records one)"
    )


def test_a_new_bundle_over_the_cap_is_named_as_the_reason(tmp_path: Path) -> None:
    olds = current_state(dynamic=True, bundle_files={"index.html": "0" * 16})
    many = {**site("v2"), **{f"assets/{i}.txt": str(i) for i in range(1000)}}
    said = note(olds, write_tree(tmp_path / "dist", many))
    assert said == (
        NO_LIST + "the bundle now has 1,003 files, and lists are kept only for up to 1,000)"
    )


def test_with_both_lists_the_files_that_differ_are_named(tmp_path: Path) -> None:
    olds = current_state(dynamic=True, bundle_files={"index.html": "0" * 16, "gone.js": "1" * 16})
    said = note(olds, write_tree(tmp_path / "dist", {"index.html": "<h1>x</h1>"}))
    assert said == "bundle: 1 changed, 0 added, 1 removed: index.html, -gone.js"
