"""Verifying a switch: the live site is requested until enough checks in a row pass, and a
switch that fails them is undone, so ``pulumi up`` fails with production as it was.

A check is one GET of ``url + path`` with its own short timeout, no API key and at most a few
redirects; the checks share the operation's deadline (less what the rollback needs) and end
at once on Cancel. On failure the version the environment served before is restored with the
service's restore (no rebuild) and waited for until it serves again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import httpx

from .._version import __version__
from ..deadline import Deadline
from ..errors import MixpeekError, redact
from ..spec import Verify
from ..waiting import Poller, WaitTimeout
from .common import Operation
from .environments import AppEnvironment

CHECK_SECONDS: Final = 5.0
"""The most one check may take: a site that holds a request fails that check, not the wait."""
MAX_BODY: Final = 1024 * 1024
"""The most of a body read when looking for ``expect_text``."""
MAX_REDIRECTS: Final = 3
ROLLBACK_RESERVE: Final = 15.0
"""Seconds of the operation's deadline kept for the restore that undoes a failed switch."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    said: str
    """The last check that failed (what answered, what was expected), else the last one."""


class Verifier:
    """Runs the checks of one ``Verify`` against one base URL."""

    def __init__(self, op: Operation, spec: Verify, base_url: str) -> None:
        self.op = op
        self.spec = spec
        self.url = base_url + spec.path
        limit = op.deadline.sooner(spec.timeout_seconds)
        room = max(0.0, op.deadline.remaining() - ROLLBACK_RESERVE)
        self.deadline = limit.sooner(room)
        self.wake = op.deadline.cancel or threading.Event()

    def run(self) -> Outcome:
        passes, failed = 0, ""
        # A 3xx can only be what is expected if it is not followed.
        follow = not 300 <= self.spec.expect_status < 400
        with httpx.Client(
            follow_redirects=follow,
            max_redirects=MAX_REDIRECTS,
            # Uncompressed, so the bytes read are the bytes the cap counts.
            headers={
                "User-Agent": f"mixpeek-pulumi/{__version__} (verify)",
                "Accept-Encoding": "identity",
            },
        ) as client:
            while not self.op.deadline.cancelled:
                ok, said = self._check(client)
                passes, failed = (passes + 1, failed) if ok else (0, said)
                if passes >= self.spec.checks:
                    return Outcome(True, said)
                pause = min(self.spec.interval_seconds, self.deadline.remaining())
                if self.deadline.expired or self.deadline.clock.wait(self.wake, pause):
                    break
        if not failed:
            failed = f"only {passes} of {self.spec.checks} checks in a row passed in time"
        return Outcome(False, failed)

    def _check(self, client: httpx.Client) -> tuple[bool, str]:
        seconds = max(0.05, min(CHECK_SECONDS, self.deadline.remaining()))
        # One bound for the whole check: a body that trickles in ends it like a silent one.
        ends = self.deadline.sooner(seconds)
        where, expected, text = f"GET {self.url}", self.spec.expect_status, self.spec.expect_text
        try:
            with client.stream("GET", self.url, timeout=seconds) as answer:
                # The status is judged as soon as it arrives; the body only when it must be.
                if answer.status_code != expected:
                    return False, f"{where} answered {answer.status_code}, expected {expected}"
                body = _start_of(answer, ends) if text is not None else ""
        except httpx.HTTPError as exc:
            return False, redact(f"{where} failed ({type(exc).__name__}: {exc})")
        if body is None:
            return False, f"{where} did not send its body in full within {seconds:.1f} s"
        if text is not None and text not in body:
            return False, f"{where} answered {expected} without the text {text[:80]!r}"
        return True, f"{where} answered {expected}"


def _start_of(answer: httpx.Response, ends: Deadline) -> str | None:
    """The body's first ``MAX_BODY`` bytes in its own charset, or None when ``ends`` (the
    check's bound, or a Cancel) came first."""
    read = bytearray()
    for block in answer.iter_raw():
        read += block
        if len(read) >= MAX_BODY:
            break
        if ends.expired:
            return None
    return bytes(read[:MAX_BODY]).decode(answer.encoding or "utf-8", errors="replace")


@dataclass(frozen=True)
class Switch:
    """What an operation did to an environment: the version it made it serve, the deploy
    that built it, and what it served before (None: nothing, or this run switched nothing)."""

    env: AppEnvironment
    version: int | None
    deploy_id: str
    before: int | None
    switched: bool
    url: str


def verify_switch(op: Operation, spec: Verify | None, switch: Switch) -> bool:
    """Whether the checks ran and passed; None of ``spec`` means no checks (False). A failure
    undoes the switch and raises the one sentence saying what failed and what serves now."""
    if spec is None:
        return False
    outcome = Verifier(op, spec, spec.url or switch.url).run()
    if outcome.passed:
        op.say(f"verified {switch.env.name}: {spec.checks} checks in a row passed")
        return True
    env = switch.env.name
    version = f"version {switch.version}" if switch.version is not None else "the new version"
    if op.deadline.cancelled:
        # Interrupted, not failed: nothing is undone on a verdict that was never reached.
        raise op.timed_out(
            f"the verification of {version} in {env}",
            subject=switch.deploy_id,
            status="unverified",
            then=f"{env} serves it, not yet verified; the next `pulumi up` verifies it again",
        )
    raise op.failed(
        f"{version} failed verification after the switch to {env} "
        f"({outcome.said}); {_undo(op, switch)}",
        subject=switch.deploy_id,
        status="verification_failed",
        reason=outcome.said,
    )


def _undo(op: Operation, switch: Switch) -> str:
    """Serve again what was served before the switch; the sentence says what serves now."""
    env, before = switch.env, switch.before
    version = f"version {switch.version}" if switch.version is not None else "it"
    if not switch.switched:
        return f"this run switched nothing, so {env.name} still serves {version}"
    if before is None:
        return f"{env.name} served nothing before, so it still serves {version}"
    try:
        env.restore(before)
        _until_served(op, env, before)
    except (MixpeekError, WaitTimeout) as exc:
        now = _served_now(env)
        reason = str(exc).splitlines()[0].rstrip(".") if str(exc) else "it did not take"
        return f"restoring version {before} failed too ({reason}), and {env.name} serves {now}"
    return f"{env.name} serves version {before} again"


def _until_served(op: Operation, env: AppEnvironment, version: int) -> None:
    poller: Poller[int | None] = Poller(
        fetch=lambda: env.served_version(env.app()),
        is_terminal=lambda served: served == version,
        deadline=op.deadline,
        interval=0.5,
        max_interval=2.0,
    )
    poller.run()


def _served_now(env: AppEnvironment) -> str:
    try:
        served = env.served_version(env.app())
    except MixpeekError:
        return "what it served could not be read"
    return f"version {served}" if served is not None else "nothing"
