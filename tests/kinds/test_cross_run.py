"""Runs that follow a create cut short: what an earlier run remembered is a hint the service
must confirm, so no sequence of runs ends in a success while other content is served, and none
gets stuck on a deploy that failed or is gone. In the deploy layer, against the emulator, each
AppDeploy kept as the dynamic host keeps it (no partial state: the journal is the only memory
of a create cut short); recorded in docs/reliability.md (`make reliability`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mixpeek_pulumi.errors import MixpeekError
from mixpeek_pulumi.files import bundle as bundles
from mixpeek_pulumi.files.contents import digest
from mixpeek_pulumi.files.excludes import Excludes
from mixpeek_pulumi.run.journal import Journal
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.kinds.conftest import Make
from tests.kinds.harness import Resource
from tests.reliability.docs import normalize, section, write_section, writing
from tests.sites import site, write_tree

DYNAMIC: dict[str, Any] = {"keeps_partial": False, "drops_nulls": True}
"""Kept as the dynamic host keeps a resource: no partial state, so the journal remembers."""

ROWS: dict[str, tuple[str, str, str]] = {}
SEQUENCES = {
    "back to a bundle": "create of A cut short, its deploy went live, B deployed after it, "
    "then the program declares A again",
    "failed since": "create cut short; the service then failed that build",
    "hint answers 410": "create cut short; the service answers 410 for that deploy",
    "hint answers 400": "create cut short; the service answers 400 for that deploy",
    "hint answers 200": "create cut short; the service answers 200 with a body that is no deploy",
    "other content": "the journal names a deploy of other content",
    "other content still building": "create of A cut short while A builds; the program "
    "declares B at once",
    "tag in the user's message": "A deployed with a message quoting B's tag, then B declared",
    "hint without message": "the service answers the hint without its message or environment",
    "unknown status": "the service answers the hint with a status this release does not know",
    "record expired": "the deploy's record answers 410 on refresh and on the next up",
}


def record(name: str, outcome: str, emulator: EmulatorHandle, app_id: str) -> None:
    posts = emulator.count("POST", f"/v1/apps/{app_id}/deploy")
    ROWS[name] = (outcome, f"{posts} deploy POSTs in all", "no change")


def deployer(resource: Make, tmp_path: Path) -> Resource:
    return resource("AppDeploy", "site", journal_dir=tmp_path / "inflight", **DYNAMIC)


def deploy(r: Resource, app_id: str, bundle: Path, **extra: Any) -> dict[str, Any]:
    return r.up(app_id=app_id, bundle=str(bundle), environment="staging", **extra)


def no_change(r: Resource, app_id: str, bundle: Path) -> bool:
    """The next up finds nothing to do, and sends nothing."""
    sent = len(r.emulator.requests())
    deploy(r, app_id, bundle)
    return r.step == "same" and len(r.emulator.requests()) == sent


def served_deploy(emulator: EmulatorHandle, app_id: str) -> str | None:
    with emulator.api() as c:
        app: dict[str, Any] = c.get(f"/v1/apps/{app_id}").json()
    entry: dict[str, Any] = app["environments"].get("staging") or {}
    return entry.get("deploy_id")


def deploy_status(emulator: EmulatorHandle, app_id: str, deploy_id: str) -> str:
    with emulator.api() as c:
        status: str = c.get(f"/v1/apps/{app_id}/deploys/{deploy_id}").json()["status"]
        return status


CUT_AFTER = 1.5
"""The cut-short create's deadline: long enough for packing and upload on a loaded machine,
so the deploy is always triggered first; every cut-short build outlasts it."""


def cut_short(r: Resource, app_id: str, bundle: Path, build_seconds: float) -> str:
    """A create whose deadline passes while its deploy builds; returns that deploy's id."""
    assert build_seconds > CUT_AFTER + 0.5
    r.emulator.timing(build_seconds=build_seconds)
    with pytest.raises(MixpeekError) as info:
        deploy(r, app_id, bundle, timeout_seconds=CUT_AFTER, poll_interval_seconds=0.1)
    assert r.state is None
    headline = str(info.value).splitlines()[0]
    assert "did not finish within" in headline and "deploy dep_" in headline, headline
    r.emulator.timing(build_seconds=0.1)
    return headline.split("deploy ", 1)[1].split(" ", 1)[0]


@pytest.mark.slow
def test_going_back_to_a_bundle_restores_its_deploy_instead_of_reporting_a_stale_one(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("back-site")
    bundle_a = write_tree(tmp_path / "a", site("A"))
    bundle_b = write_tree(tmp_path / "b", site("B"))
    r = deployer(resource, tmp_path)
    deploy_a = cut_short(r, app_id, bundle_a, 2.5)
    assert wait_until(lambda: served_deploy(emulator, app_id) == deploy_a)

    with_b = deploy(r, app_id, bundle_b)
    assert served_deploy(emulator, app_id) == with_b["deploy_id"] != deploy_a

    back = deploy(r, app_id, bundle_a)
    assert r.step == "update"
    # The service, not the journal, decided: A's version serves again, and says so.
    assert served_deploy(emulator, app_id) == back["deploy_id"] == deploy_a
    assert back["live"] is True
    assert emulator.served_version(app_id, "staging") == back["version"] == 1
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 2  # no rebuild
    assert "restored its version 1 instead of building again" in r.said()
    again = r.preview(app_id=app_id, bundle=str(bundle_a), environment="staging")
    assert again is not None and not again.changed
    record(
        "back to a bundle", "A's version restored and verified served, no rebuild", emulator, app_id
    )


@pytest.mark.slow
def test_a_remembered_deploy_that_failed_since_is_dropped_and_deployed_anew(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("failed-hint-site")
    bundle = write_tree(tmp_path / "dist", site())
    emulator.next(deploy_fail_reason="the build ran out of disk")
    r = deployer(resource, tmp_path)
    failed = cut_short(r, app_id, bundle, 2.5)
    assert wait_until(lambda: deploy_status(emulator, app_id, failed) == "failed")

    again = deploy(r, app_id, bundle)
    assert r.step == "create"
    assert again["deploy_id"] != failed
    assert served_deploy(emulator, app_id) == again["deploy_id"]
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 2
    assert f"not using deploy {failed} from the journal" in r.said()
    assert "it ended with status failed (the build ran out of disk)" in r.said()
    assert no_change(r, app_id, bundle)
    record(
        "failed since", "the hint is dropped in one line; a new deploy goes live", emulator, app_id
    )


@pytest.mark.slow
@pytest.mark.parametrize("answer", [410, 400, 200])
def test_a_remembered_deploy_the_service_cannot_confirm_never_blocks_a_deploy(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, answer: int
) -> None:
    """A 410 for an expired record, a refusal, or a 200 that is not a deploy: the hint is
    dropped in one line and the deploy goes on, on this run and every later one."""
    app_id = emulator.create_app(f"gone-hint-{answer}")
    bundle = write_tree(tmp_path / "dist", site())
    r = deployer(resource, tmp_path)
    stuck = cut_short(r, app_id, bundle, 60.0)
    body = {"unexpected": True} if answer == 200 else None
    emulator.fault(
        method="GET",
        path=f"/v1/apps/{app_id}/deploys/{stuck}",
        status=answer,
        times=1000,
        body=body,
    )

    again = deploy(r, app_id, bundle)
    assert again["deploy_id"] != stuck
    assert served_deploy(emulator, app_id) == again["deploy_id"]
    assert f"not using deploy {stuck} from the journal" in r.said()
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 2
    assert no_change(r, app_id, bundle)
    outcome = "the hint is dropped in one line; a new deploy goes live"
    record(f"hint answers {answer}", outcome, emulator, app_id)


@pytest.mark.slow
def test_a_remembered_deploy_of_other_content_is_never_adopted(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A journal entry that names a deploy of other content (edited, or copied from another
    machine) is refused by that deploy's own tag, however it got there."""
    app_id = emulator.create_app("foreign-hint-site")
    bundle_a = write_tree(tmp_path / "a", site("A"))
    bundle_b = write_tree(tmp_path / "b", site("B"))
    r = deployer(resource, tmp_path)
    # A's build need not outlast the refusal (a completed deploy of other content is refused
    # by its tag alike); a long one would only hold B, which waits for A to end first.
    building_a = cut_short(r, app_id, bundle_a, 3.0)
    journal = Journal(tmp_path / "inflight")
    digest_b = digest(bundles.collect(bundle_b, Excludes())).sha256
    journal.record((emulator.url, app_id, "staging", digest_b), building_a)

    with_b = deploy(r, app_id, bundle_b)
    assert with_b["deploy_id"] != building_a
    assert served_deploy(emulator, app_id) == with_b["deploy_id"]
    assert f"not using deploy {building_a} from the journal" in r.said()
    assert "it is a deploy of other content" in r.said()
    assert no_change(r, app_id, bundle_b)
    record(
        "other content", "refused by the deploy's own tag; a new deploy goes live", emulator, app_id
    )


@pytest.mark.slow
def test_a_cut_short_deploy_of_other_content_ends_before_the_next_one_is_reported_live(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A's deploy was left building; B is declared at once. B must not be reported live while
    A could still complete after it and take the environment."""
    app_id = emulator.create_app("settle-site")
    bundle_a = write_tree(tmp_path / "a", site("A"))
    bundle_b = write_tree(tmp_path / "b", site("B"))
    r = deployer(resource, tmp_path)
    building_a = cut_short(r, app_id, bundle_a, 2.5)

    with_b = deploy(r, app_id, bundle_b)

    assert f"waiting for deploy {building_a} (" in r.said()
    assert deploy_status(emulator, app_id, building_a) == "complete"  # ended before B's deploy
    assert served_deploy(emulator, app_id) == with_b["deploy_id"]
    assert no_change(r, app_id, bundle_b)
    assert served_deploy(emulator, app_id) == with_b["deploy_id"]
    record(
        "other content still building",
        "A ends first; B is deployed and stays served",
        emulator,
        app_id,
    )


@pytest.mark.slow
def test_a_tag_quoted_in_the_users_message_never_counts(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("quote-site")
    bundle_a = write_tree(tmp_path / "a", site("A"))
    bundle_b = write_tree(tmp_path / "b", site("B"))
    r = deployer(resource, tmp_path)
    first_b_message = deploy(r, app_id, bundle_b)["deploy_message"]
    tag_b = first_b_message[first_b_message.index("[mixpeek-pulumi:") :]
    quoted = deploy(r, app_id, bundle_a, message=f"see {tag_b}")
    assert r.step == "update"
    # Only the provider's own markers remain, at the end: what it replaced, then its tag.
    message = quoted["deploy_message"]
    assert re.fullmatch(
        r"see \[mixpeek-pulumi:staging:replaces=1\] \[mixpeek-pulumi:staging:[0-9a-f]{32}\]",
        message,
    ), message

    back = deploy(r, app_id, bundle_b, message=f"see {tag_b}")

    # A's deploy, whose message quoted B's tag, was not taken for B: B was deployed.
    assert back["deploy_id"] != quoted["deploy_id"]
    assert served_deploy(emulator, app_id) == back["deploy_id"]
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 3
    outcome = "the quote is not taken for B's tag; B is deployed"
    record("tag in the user's message", outcome, emulator, app_id)


@pytest.mark.slow
def test_a_hint_answered_without_its_message_is_not_trusted(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("bare-hint-site")
    bundle_a = write_tree(tmp_path / "a", site("A"))
    r = deployer(resource, tmp_path)
    building = cut_short(r, app_id, bundle_a, 60.0)
    bare = {"deploy_id": building, "status": "building"}
    emulator.fault(
        method="GET", path=f"/v1/apps/{app_id}/deploys/{building}", status=200, body=bare
    )

    again = deploy(r, app_id, bundle_a)

    assert again["deploy_id"] != building
    assert served_deploy(emulator, app_id) == again["deploy_id"]
    assert "it is a deploy of other content" in r.said()
    record(
        "hint without message",
        "the hint is dropped in one line; a new deploy goes live",
        emulator,
        app_id,
    )


@pytest.mark.slow
def test_a_hint_in_a_status_this_release_does_not_know_is_waited_for(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("odd-status-site")
    bundle = write_tree(tmp_path / "dist", site())
    r = deployer(resource, tmp_path)
    building = cut_short(r, app_id, bundle, 2.5)
    emulator.next(status_flap=["deploying"])

    again = deploy(r, app_id, bundle)

    assert again["deploy_id"] == building
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 1
    assert f"re-attaching to deploy {building} (" in r.said()
    record("unknown status", "re-attached: one deploy", emulator, app_id)


def test_an_expired_deploy_record_never_blocks_a_refresh_or_an_up(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app_id = emulator.create_app("expired-site")
    bundle = write_tree(tmp_path / "dist", site())
    r = deployer(resource, tmp_path)
    deploy_id = deploy(r, app_id, bundle)["deploy_id"]
    emulator.fault(
        method="GET", path=f"/v1/apps/{app_id}/deploys/{deploy_id}", status=410, times=1000
    )

    refreshed = r.refresh()

    assert refreshed is not None
    assert (refreshed["live"], refreshed["status"]) == (True, "complete")
    assert no_change(r, app_id, bundle)
    assert emulator.count("POST", f"/v1/apps/{app_id}/deploy") == 1
    record("record expired", "refresh keeps the last status; nothing to do", emulator, app_id)


def test_the_committed_table_lists_every_sequence() -> None:
    if writing():
        assert len(ROWS) == len(SEQUENCES), "run the whole file to write the table"
        write_doc()
    text = section("cross-run")
    for sequence in SEQUENCES.values():
        assert f"| {sequence} |" in text, "docs/reliability.md lacks it; run make reliability"


def write_doc() -> None:
    lines = [
        "## Runs after a create cut short",
        "",
        "Generated by `make reliability` from `tests/kinds/test_cross_run.py`, in the deploy",
        "layer with each resource kept as the dynamic host keeps it. A deploy id an earlier run",
        "remembered (the dynamic resources' journal, or the native provider's partial state) is",
        "only a hint: it is used when the service says it is a deploy of this bundle to this",
        "environment that is still building, or that completed (its version is then restored).",
        "Anything else is dropped in one log line. *Next up* is the run after that one.",
        "`tests/cli/test_native_provider.py` runs the native provider's partial state through",
        "the real CLI: cut short by `customTimeouts` or Ctrl-C then re-attached from another",
        "machine, and cut short with a build that then failed: the refresh shows `failed` and",
        "the next `up` deploys anew.",
        "",
        "| # | sequence | outcome | deploys | next up |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, (name, sequence) in enumerate(SEQUENCES.items(), 1):
        outcome, posts, next_up = ROWS[name]
        lines.append(f"| {i} | {sequence} | {normalize(outcome)} | {posts} | {next_up} |")
    write_section("cross-run", lines)
