"""Verification you can trust, in the deploy layer: a check passes only when the promoted
version's own bytes answer, past any cache and whatever the encoding; a healthy version keeps
its checks' time whatever the build took; the first line names the check that decided; the
version to restore survives an interrupted run; a rollback never lands over another run's
switch; and every wait, a silent resolver's and a trickled status line's included, ends."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_pulumi.errors import MixpeekError
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.fronts import front, wire_server
from tests.kinds.conftest import Make
from tests.kinds.harness import CheckFailed
from tests.sites import site, write_tree

FAST: dict[str, Any] = {"checks": 2, "interval_seconds": 0.1, "timeout_seconds": 3}


def healthy(version: str) -> dict[str, str]:
    return {**site(version), "healthz": "ok"}


class Pipeline:
    """A staging AppDeploy and a production AppPromotion of its version, in one app."""

    def __init__(self, resource: Make, emulator: EmulatorHandle, tmp: Path, slug: str, **opts: Any):
        self.emulator = emulator
        self.tmp = tmp
        self.app = emulator.create_app(slug)
        self.staging = resource("AppDeploy", "site", **opts)
        self.prod = resource("AppPromotion", "prod", **opts)

    @property
    def sites(self) -> str:
        return f"{self.emulator.url}/_sites/{self.app}/production"

    def stage(self, files: dict[str, str]) -> int:
        folder = write_tree(self.tmp / f"build-{len(list(self.tmp.glob('build-*')))}", files)
        out = self.staging.up(
            app_id=self.app, bundle=str(folder), environment="staging", poll_interval_seconds=0.1
        )
        return int(out["version"])

    def promote(self, version: int, prod: Any = None, **verify: Any) -> dict[str, Any]:
        return (prod or self.prod).up(
            app_id=self.app,
            version=version,
            source_deploy_id=self.staging.state["deploy_id"] if self.staging.state else None,
            verify=verify or None,
        )

    def served(self) -> int | None:
        return self.emulator.served_version(self.app, "production")


@pytest.fixture
def pipe(resource: Make, emulator: EmulatorHandle, tmp_path: Path) -> Pipeline:
    return Pipeline(resource, emulator, tmp_path, "verified")


@pytest.mark.slow
def test_a_cache_that_still_serves_the_old_version_fails_the_checks_and_names_it(
    pipe: Pipeline,
) -> None:
    with front(pipe.sites, cache_seconds=60) as cdn:
        pipe.promote(pipe.stage(healthy("v1")), url=cdn.url, path="/healthz", **FAST)
        assert pipe.served() == 1
        assert httpx.get(cdn.url + "/").status_code == 200  # a visitor: the page is cached
        # Version 2 has no /healthz at all; the cache answers it from version 1 for a minute.
        version = pipe.stage(site("v2"))
        with pytest.raises(MixpeekError) as info:
            pipe.promote(version, url=cdn.url, path="/healthz", **FAST)
    assert str(info.value).splitlines()[0] == (
        f"AppPromotion 'prod': version 2 failed verification after the switch to production "
        f"(GET {cdn.url}/ answered version 1's index.html, not version 2's); production serves "
        "version 1 again."
    )
    assert pipe.served() == 1
    # Every check asked past the cache (the one plain request is the visitor's).
    assert [p for p in cdn.requests if "mixpeek-verify=" not in p] == ["/"]


def test_a_site_that_only_sends_gzip_is_read_decoded_and_verified(pipe: Pipeline) -> None:
    with front(pipe.sites, gzip=True) as gzipped:
        out = pipe.promote(
            pipe.stage(healthy("v1")), url=gzipped.url, path="/", expect_text="Hello v1", **FAST
        )
    assert out["verified"] is True
    assert "with version 1's index.html" in pipe.prod.said()


def test_a_site_on_a_localhost_name_is_checked_at_loopback(
    pipe: Pipeline, emulator: EmulatorHandle
) -> None:
    """The emulator serves production at ``<slug>.localhost``, a name the system's resolver
    here does not know: the check resolves it as browsers and curl do (RFC 6761)."""
    port = httpx.URL(emulator.url).port
    out = pipe.promote(
        pipe.stage(healthy("v1")),
        url=f"http://verified.localhost:{port}",
        path="/",
        expect_text="Hello v1",
        **FAST,
    )
    assert out["verified"] is True
    assert f"GET http://verified.localhost:{port}/" in pipe.prod.said()


def test_a_schedule_that_cannot_pass_in_its_time_is_refused_before_anything_is_sent(
    pipe: Pipeline, emulator: EmulatorHandle
) -> None:
    sent = len(emulator.requests())
    with pytest.raises(CheckFailed) as info:
        pipe.prod.check(
            app_id=pipe.app,
            version=1,
            verify={"checks": 3, "interval_seconds": 30, "timeout_seconds": 60},
        )
    (failure,) = info.value.failures
    assert failure.field == "verify"
    assert failure.reason == (
        "3 checks `interval_seconds` (30 s) apart take at least 60.5 s (a check is started "
        "with 0.5 s left at least), which `timeout_seconds` (60 s) does not leave, so they "
        "could never pass in time; raise `timeout_seconds` or lower `checks` or "
        "`interval_seconds`."
    )
    assert len(emulator.requests()) == sent


@pytest.mark.slow
def test_a_build_that_used_most_of_the_deadline_leaves_the_checks_all_their_time(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    app = emulator.create_app("slow-build")
    emulator.timing(build_seconds=3)
    site_url = f"{emulator.url}/_sites/{app}/staging"
    deploy = resource("AppDeploy", "site")
    out = deploy.up(
        app_id=app,
        bundle=str(write_tree(tmp_path / "dist", healthy("v1"))),
        environment="staging",
        poll_interval_seconds=0.1,
        timeout_seconds=6,
        # Four checks take 4.5 s: more than the build leaves of timeout_seconds.
        verify={"url": site_url, "checks": 4, "interval_seconds": 1.5, "timeout_seconds": 20},
    )
    assert out["verified"] is True
    assert emulator.served_version(app, "staging") == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 503}, "answered 503, expected 200"),
        ({}, "answered 200 without `verify.expect_text`"),
    ],
)
def test_the_first_line_names_the_check_that_decided(
    pipe: Pipeline, fault: dict[str, Any], reason: str
) -> None:
    pipe.promote(pipe.stage(healthy("v1")))
    version = pipe.stage(healthy("v2"))
    with front(pipe.sites, **fault) as failing, pytest.raises(MixpeekError) as info:
        # The checks' time runs out while they fail: the last check, cut short, says nothing.
        pipe.promote(
            version, url=failing.url, expect_text="Goodbye", **{**FAST, "timeout_seconds": 1.2}
        )
    first = str(info.value).splitlines()[0]
    assert first.startswith(
        f"AppPromotion 'prod': version 2 failed verification after the switch to production "
        f"(GET {failing.url}/ {reason}"
    )
    assert first.endswith("production serves version 1 again.")
    assert "did not answer" not in first
    checks = [line for line in pipe.prod.lines if line.startswith("check ")]
    assert checks and all(reason in line for line in checks)  # one line per check


@pytest.mark.slow
@pytest.mark.parametrize("keeps_partial", [True, False], ids=["native", "dynamic"])
def test_an_interrupted_verification_is_finished_by_the_next_run(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path, keeps_partial: bool
) -> None:
    """Ctrl-C during the checks of version 2: the next run finds version 2 failing and puts
    version 1 back, from the stack's state (native) or this machine's journal (dynamic)."""
    pipe = Pipeline(resource, emulator, tmp_path, "interrupted", keeps_partial=keeps_partial)
    # Production serves version 1 through another resource: the one below is created with
    # version 2, so the interrupted run is its first (no state from an earlier run).
    pipe.promote(pipe.stage(healthy("v1")), prod=resource("AppPromotion", "earlier"))
    version = pipe.stage(healthy("v2"))
    with front(pipe.sites, hold=threading.Event()) as held:
        assert held.hold is not None
        held.hold.set()
        verify: dict[str, Any] = {"url": held.url, **FAST, "timeout_seconds": 60}
        failed = _in_thread(lambda: pipe.promote(version, **verify))
        assert wait_until(lambda: bool(held.arrived), timeout=30)
        pipe.prod.cancel.set()
        error = failed()
        assert "the verification of version 2 in production was interrupted" in str(error)
        assert pipe.served() == 2  # interrupted, not failed: nothing undone
        if keeps_partial:
            assert pipe.prod.state is not None
            assert (pipe.prod.state["verified"], pipe.prod.state["previous_version"]) == (False, 1)
        else:
            assert pipe.prod.state is None
        pipe.prod.cancel.clear()
        held.hold.clear()
        held.status = 500
        with pytest.raises(MixpeekError) as info:
            pipe.promote(version, **{**verify, "timeout_seconds": 3})
    assert (
        str(info.value)
        .splitlines()[0]
        .endswith("answered 500, expected 200); production serves version 1 again.")
    )
    assert pipe.served() == 1


@pytest.mark.slow
def test_a_deploy_left_unverified_is_rolled_back_from_any_machine_by_its_own_record(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The dynamic resources' worst case: the run that switched was killed, and the next one
    runs elsewhere with no journal. The version's own deploy message names what it replaced."""
    app = emulator.create_app("any-machine")
    sites = f"{emulator.url}/_sites/{app}/production"
    first = resource("AppDeploy", "site", keeps_partial=False, journal_dir=tmp_path / "runner-1")
    first.up(
        app_id=app,
        bundle=str(write_tree(tmp_path / "v1", healthy("v1"))),
        poll_interval_seconds=0.1,
    )
    v2 = str(write_tree(tmp_path / "v2", healthy("v2")))
    with front(sites, hold=threading.Event()) as held:
        assert held.hold is not None
        held.hold.set()
        verify: dict[str, Any] = {"url": held.url, **FAST, "timeout_seconds": 60}
        failed = _in_thread(
            lambda: first.up(app_id=app, bundle=v2, poll_interval_seconds=0.1, verify=verify)
        )
        assert wait_until(lambda: bool(held.arrived), timeout=30)
        first.cancel.set()
        failed()
        assert emulator.served_version(app, "production") == 2
        held.hold.clear()
        held.status = 500
        other = resource(
            "AppDeploy", "site", keeps_partial=False, journal_dir=tmp_path / "runner-2"
        )
        with pytest.raises(MixpeekError) as info:
            other.up(
                app_id=app,
                bundle=v2,
                poll_interval_seconds=0.1,
                verify={**verify, "timeout_seconds": 3},
            )
    assert str(info.value).splitlines()[0].endswith("production serves version 1 again.")
    assert emulator.served_version(app, "production") == 1
    assert emulator.count("POST", f"/v1/apps/{app}/deploy") == 2  # adopted, never rebuilt


@pytest.mark.slow
def test_a_rollback_never_lands_over_another_runs_switch(
    resource: Make, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    pipe = Pipeline(resource, emulator, tmp_path, "racing")
    pipe.promote(pipe.stage(healthy("v1")))
    v2 = pipe.stage(healthy("v2"))
    v2_deploy = pipe.staging.state["deploy_id"] if pipe.staging.state else None
    v3 = pipe.stage(healthy("v3"))
    with front(pipe.sites, hold=threading.Event()) as watched:
        assert watched.hold is not None
        verify = {"url": watched.url, "checks": 2, "interval_seconds": 2, "timeout_seconds": 60}
        p = _in_thread(
            lambda: pipe.prod.up(
                app_id=pipe.app, version=v2, source_deploy_id=v2_deploy, verify=verify
            )
        )
        assert wait_until(lambda: bool(watched.requests), timeout=30)
        watched.hold.set()  # P's next check waits while Q switches production
        q = resource("AppPromotion", "prod-q")
        pipe.promote(v3, prod=q)
        assert pipe.served() == 3
        watched.hold.clear()
        error = p()
    first = str(error).splitlines()[0]
    assert "answered version 3's index.html, not version 2's" in first
    assert first.endswith(
        "production serves version 3 now, put there by someone else after this run switched "
        "it to version 2, so nothing was restored over it."
    )
    assert pipe.served() == 3
    # Version 1 was restored once, by the first promotion; never again by the rollback.
    assert emulator.count("POST", f"/v1/apps/{pipe.app}/versions/1/restore") == 1


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nok",
    ],
    ids=["status-line", "body"],
)
def test_an_answer_that_trickles_ends_the_check_at_its_bound(pipe: Pipeline, answer: bytes) -> None:
    def trickle(conn: socket.socket) -> None:
        head = answer.index(b"\r\n\r\n") + 4 if b"99" in answer else 0
        conn.sendall(answer[:head])
        for byte in answer[head:] + b"x" * 100:
            conn.sendall(bytes([byte]))
            time.sleep(2)

    url, stop = wire_server(trickle)
    try:
        pipe.promote(pipe.stage(healthy("v1")))
        with pytest.raises(MixpeekError) as info:
            pipe.promote(pipe.stage(healthy("v2")), url=url, checks=1, timeout_seconds=3)
    finally:
        stop()
    first = str(info.value).splitlines()[0]
    assert re.search(
        rf"\(GET {re.escape(url)}/ did not answer in full within [23](\.\d)? s\)", first
    )
    assert first.endswith("production serves version 1 again.")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_name_lookup_that_never_answers_ends_the_check_at_its_bound(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = threading.Event()
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "silent.invalid":
            silent.wait()
            raise socket.gaierror("released at the test's end")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    try:
        pipe.promote(pipe.stage(healthy("v1")))
        with pytest.raises(MixpeekError) as info:
            pipe.promote(
                pipe.stage(healthy("v2")),
                url="http://silent.invalid:1",
                checks=1,
                timeout_seconds=3,
            )
    finally:
        silent.set()
    first = str(info.value).splitlines()[0]
    assert re.search(r"\(looking up silent\.invalid did not answer within [23](\.\d)? s\)", first)
    assert first.endswith("production serves version 1 again.")


@pytest.mark.slow
def test_a_cancel_during_the_rollback_says_what_serves_now(
    pipe: Pipeline, emulator: EmulatorHandle
) -> None:
    pipe.promote(pipe.stage(healthy("v1")))
    version = pipe.stage(healthy("v2"))
    restore = f"/v1/apps/{pipe.app}/versions/1/restore"
    emulator.fault(method="POST", path=restore, action="delay", delay=60, times=1)
    with front(pipe.sites, status=500) as failing:
        failed = _in_thread(
            lambda: pipe.promote(version, url=failing.url, checks=1, timeout_seconds=2)
        )
        assert wait_until(lambda: "restoring version 1 to production" in pipe.prod.said(), 30)
        pipe.prod.cancel.set()
        error = failed()
    assert (
        str(error)
        .splitlines()[0]
        .endswith("restoring version 1 was interrupted, and production serves version 2.")
    )
    assert pipe.served() == 2


def _in_thread(work: Callable[[], Any]) -> Callable[[], BaseException]:
    """Run ``work`` (expected to fail) beside the test; the returned call waits for its error."""
    caught: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result() -> BaseException:
        thread.join(timeout=120)
        assert not thread.is_alive(), "the operation did not end"
        assert caught, "the operation was expected to fail"
        return caught[0]

    return result
