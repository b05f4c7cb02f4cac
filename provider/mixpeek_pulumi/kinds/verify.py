"""Verifying a switch: the live site is asked, past any cache, until enough checks in a row
find the promoted version's own bytes; a version that fails them is replaced by the one served
before, unless someone else has switched the environment since.

A check is one GET of ``url + path`` (and, when that path is no file of the version, one of
its ``index.html``) with a parameter no cache has seen, no API key, at most a few redirects,
and one bound of ``CHECK_SECONDS`` for everything from the name lookup to the last byte. The
body, decoded, must answer the expected status, hold ``expect_text``, and be the file the
version's ``asset_manifest`` describes (its hash recognised by its form; where the form is
unknown, the bytes this provider shipped or the version's own archive decide).

The checks have ``verify.timeout_seconds`` of their own, counted from their start, and a
rollback has ``ROLLBACK_SECONDS``: a slow build shortens neither. Only a failure of the
version's own (a check that failed, or a site that did not answer within a check's bound)
rolls it back; a verdict never reached (a Cancel, checks cut short by the verifier's own
deadline) leaves it serving, unverified, for the next run to judge, with the version served
before kept in the state it returns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from ..api import site
from ..api.client import MixpeekClient
from ..api.models import VersionRecord
from ..deadline import Deadline
from ..errors import MixpeekError, first_line
from ..files.excludes import Excludes
from ..files.layout import entry_prefix
from ..files.sources import APP_LIMITS
from ..files.zips import collect_archive
from ..run.context import Context
from ..run.waiting import Poller, WaitTimeout
from .environments import AppEnvironment, unverified
from .spec import MIN_CHECK_SECONDS, AppDeployState, AppPromotionState, State, Verify

CHECK_SECONDS: Final = 5.0
"""The most one check may take: a site that holds a request fails that check, not the wait."""
CUT_TOLERANCE: Final = 0.25
"""A first check that has all of a short ``timeout_seconds`` has its own bound, less the
moment the file list took to read."""
ROLLBACK_SECONDS: Final = 120.0
"""The bound of the restore that undoes a failed switch, and of the wait until it serves."""
READ_BACK_SECONDS: Final = 10.0
"""After a Cancel during a restore: how long the one read of what the environment serves may
take, so the sentence says what serves now."""
# A file's hash in a version's asset_manifest: the API does not name the algorithm, so it is
# recognised by its form (hex of a known length, or an SRI "sha256-<base64>" / "sha256:<hex>").
_HEX_LENGTHS: Final = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_NAMED: Final = re.compile(r"^(md5|sha1|sha256|sha384|sha512)[:-](.+)$")

Kind = Literal["passed", "failed", "cut", "unreadable", "interrupted"]


@dataclass(frozen=True)
class Switch:
    """What an operation did to an environment: the version it made it serve, the deploy
    that built it, and the version to restore if it fails (None: nothing was served before,
    or this run switched nothing)."""

    env: AppEnvironment
    version: int | None
    deploy_id: str
    before: int | None
    switched: bool
    url: str


@dataclass(frozen=True)
class Content:
    """A file of a version, as a check compares it: its path in the version, where the site
    serves it (the checked path itself, or the site's root for ``index.html``), and its
    digest (``digest`` may be a prefix: the shipped manifest keeps 16 hex digits)."""

    rel: str
    own_path: bool
    algorithm: str
    digest: str
    certain: bool = True
    """False for a hash whose form only suggests its algorithm (bare hex: an S3 ETag of
    32 digits is an MD5 only for some objects): a mismatch is then confirmed by the version's
    own archive before it counts."""

    def matches(self, digests: Mapping[str, str]) -> bool:
        found = digests.get(self.algorithm)
        return found is not None and found.startswith(self.digest)


def recognised(value: object) -> tuple[str, str, bool] | None:
    """The algorithm and hex digest of a manifest ``hash``, if its form suggests which it is,
    and whether the form says so (a named or SRI hash) rather than suggests it (bare hex)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    named = _NAMED.match(text.lower())
    if named is not None:
        algorithm, rest = named.groups()
        size = hashlib.new(algorithm).digest_size
        if re.fullmatch(r"[0-9a-f]+", rest) and len(rest) == size * 2:
            return algorithm, rest, True
        try:
            raw = base64.b64decode(text[len(algorithm) + 1 :], validate=True)
        except (binascii.Error, ValueError):
            return None
        return (algorithm, raw.hex(), True) if len(raw) == size else None
    lowered = text.lower()
    if re.fullmatch(r"[0-9a-f]+", lowered) and len(lowered) in _HEX_LENGTHS:
        return _HEX_LENGTHS[len(lowered)], lowered, False
    return None


def candidates(path: str) -> list[str]:
    """The files of a version a checked path may be, most likely first (a %-encoded path is
    the file it names)."""
    plain = unquote(urlsplit(path).path).lstrip("/")
    if plain == "" or plain.endswith("/"):
        return [f"{plain}index.html"]
    return [plain, f"{plain}/index.html", f"{plain}.html"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    said: str
    final: bool = False
    """No later check can pass: the environment serves another version now."""


@dataclass(frozen=True)
class Outcome:
    kind: Literal["passed", "failed", "unverified", "interrupted"]
    said: str
    """The check that decided it (what answered, what was expected), or why none did."""


class _Tally:
    """The checks so far: the streak of passes, and the last failure (which a check cut short
    never replaces)."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.number = 0
        self.passes = 0
        self.failure: Verdict | None = None
        self.last: Verdict | None = None

    @property
    def passed(self) -> bool:
        return self.passes >= self.wanted

    def add(self, verdict: Verdict) -> str:
        """Count ``verdict``; the progress line it makes."""
        self.number += 1
        self.last = verdict
        if verdict.kind == "passed":
            self.passes += 1
        elif verdict.kind == "failed":
            self.passes, self.failure = 0, verdict
        return f"check {self.number} ({self.passes} of {self.wanted} in a row): {verdict.said}"

    def outcome(self, cancelled: bool, spec: Verify) -> Outcome:
        if self.passed and self.last is not None:
            return Outcome("passed", self.last.said)
        if cancelled:
            return Outcome("interrupted", self.failure.said if self.failure else "no verdict yet")
        if self.failure is not None:
            return Outcome("failed", self.failure.said)
        return Outcome(
            "unverified",
            f"only {self.passes} of {self.wanted} checks in a row passed within "
            f"`verify.timeout_seconds` ({spec.timeout_seconds:g} s), and none failed",
        )


class Verifier:
    """Runs the checks of one ``Verify`` for one switch, within ``deadline``."""

    def __init__(
        self,
        ctx: Context,
        spec: Verify,
        switch: Switch,
        *,
        deadline: Deadline,
        shipped: Mapping[str, str] | None = None,
        resolve: site.Resolver | None = None,
    ) -> None:
        self.ctx = ctx
        self.spec = spec
        self.switch = switch
        self.shipped = shipped
        self.resolve = resolve
        self.base = (spec.url or switch.url).rstrip("/")
        self.url = self.base + spec.path
        self.deadline = deadline
        """The checks' own time, from the start of the verification: its reads included."""
        self.wake = ctx.deadline.cancel or threading.Event()
        self._others: dict[int, Content | None] = {}
        self._archived: str | None = None

    @property
    def name(self) -> str:
        v = self.switch.version
        return f"version {v}" if v is not None else "the new version"

    def run(self) -> Outcome:
        expected = self._expected()
        if self.deadline.cancelled:
            return Outcome("interrupted", "no verdict yet")
        if isinstance(expected, str):
            return Outcome("unverified", expected)
        tally = _Tally(self.spec.checks)
        while not self.deadline.cancelled and self._may_still_pass(tally):
            verdict = self._check(expected)
            self.ctx.say(tally.add(verdict))
            # A check cut short by the verifier's own time, or answered in an encoding it
            # cannot read, is no verdict on the version.
            if tally.passed or verdict.final or verdict.kind in ("interrupted", "cut"):
                break
            if verdict.kind == "unreadable":
                return Outcome("unverified", verdict.said)
            pause = min(self.spec.interval_seconds, self.deadline.remaining())
            if self.deadline.clock.wait(self.wake, pause):
                break
        return tally.outcome(self.deadline.cancelled, self.spec)

    def _may_still_pass(self, tally: _Tally) -> bool:
        """Whether another check is worth starting: there is time for it, and for the passes
        still missing (a failing version is not kept serving after it can no longer pass)."""
        left = self.deadline.remaining()
        missing = tally.wanted - tally.passes
        return left >= MIN_CHECK_SECONDS and (missing - 1) * self.spec.interval_seconds < left

    # ------------------------------------------------------------------- one check

    def _check(self, expected: Content) -> Verdict:
        """One check: the status and text at the checked path, and the version's bytes."""
        own = min(CHECK_SECONDS, self.spec.timeout_seconds)
        bound = min(own, self.deadline.remaining())
        cut = bound < own - CUT_TOLERANCE  # the verifier's time, not the check's, ends it
        ends = self.deadline.sooner(bound)
        started = time.monotonic()
        spec = self.spec
        algorithms = {expected.algorithm, "sha256"}
        try:
            page = self._get(self.url, ends, bound, algorithms if expected.own_path else ())
            where = f"GET {site.shown(self.url)}"
            if page.status != spec.expect_status:
                said = f"{where} answered {page.status}, expected {spec.expect_status}"
                return Verdict("failed", said)
            if spec.expect_text is not None and spec.expect_text not in page.text():
                said = f"{where} answered {page.status} without `verify.expect_text`"
                return Verdict("failed", said + _decoded(page))
            if not expected.own_path:
                where = f"GET {self.base}/"
                page = self._get(self.base + "/", ends, bound, algorithms, follow=True)
                if page.status != 200:
                    return Verdict("failed", f"{where} answered {page.status}, expected 200")
        except site.SiteError as exc:
            if exc.interrupted:
                return Verdict("interrupted", str(exc))
            if exc.unreadable:
                return Verdict("unreadable", str(exc))
            if exc.timed_out and cut:
                return Verdict("cut", f"{exc}, which was all the time left for the checks")
            return Verdict("failed", str(exc))
        took = f"{time.monotonic() - started:.2f} s"
        if not expected.matches(page.digests) and not self._confirmed_by_archive(expected, page):
            who, taken = self._who(expected, page.digests)
            return Verdict("failed", f"{where} answered {who}", final=taken)
        what = f"{self.name}'s {expected.rel}"
        return Verdict("passed", f"{where} answered {page.status} with {what} in {took}")

    def _confirmed_by_archive(self, expected: Content, page: site.Page) -> bool:
        """Whether bytes that differ from a hash whose algorithm was only suggested are the
        version's own after all, as its archive shows (read once per verification)."""
        if expected.certain:
            return False
        if self._archived is None:
            version = self.switch.version
            found = archived_digest(self.ctx.api, self.switch.env.app_id, version, expected.rel)
            self._archived = found or ""
        return bool(self._archived) and page.digests.get("sha256") == self._archived

    def _get(
        self,
        url: str,
        ends: Deadline,
        bound: float,
        algorithms: set[str] | tuple[()],
        *,
        follow: bool | None = None,
    ) -> site.Page:
        # A 3xx the program expects is judged, not followed.
        if follow is None:
            follow = not 300 <= self.spec.expect_status < 400
        return site.get(
            url,
            ends,
            within=bound,
            follow=follow,
            algorithms=sorted(algorithms),
            resolve=self.resolve,
        )

    # ------------------------------------------------------------ what is expected

    def _expected(self) -> Content | str:
        """The file of the promoted version a check compares, or why it cannot be known."""
        version = self.switch.version
        if version is None:
            return (
                f"the version {self.switch.env.name} serves is not known, so its content "
                "cannot be compared"
            )
        # A redirect the program expects has no bytes of the version: its index.html has.
        redirect = 300 <= self.spec.expect_status < 400
        wanted = [] if redirect else candidates(self.spec.path)
        try:
            record = self.ctx.api.get_version(
                self.switch.env.app_id, version, wanted=[*wanted, "index.html"]
            )
        except MixpeekError as exc:
            return f"version {version}'s file list cannot be read ({first_line(exc)})"
        files = record.asset_manifest or {}
        rel = next((c for c in wanted if c in files), None)
        own = rel is not None
        rel = rel or "index.html"
        if rel not in files and record.asset_manifest is not None:
            return f"version {version} has no {rel} to compare what the site answers with"
        return self._content(record, rel, own) or (
            f"what version {version} holds at {rel} cannot be told: its hash is in a form this "
            "provider does not know, and its archive cannot be read"
        )

    def _content(self, record: VersionRecord, rel: str, own: bool) -> Content | None:
        entry = (record.asset_manifest or {}).get(rel)
        known = recognised(entry.get("hash") if isinstance(entry, Mapping) else None)
        if known is not None:
            return Content(rel, own, *known)
        if self.shipped is not None and rel in self.shipped:
            return Content(rel, own, "sha256", self.shipped[rel])
        digest = archived_digest(self.ctx.api, self.switch.env.app_id, record.version, rel)
        return Content(rel, own, "sha256", digest) if digest else None

    def _who(self, expected: Content, digests: Mapping[str, str]) -> tuple[str, bool]:
        """What answered instead of the promoted version's file (the version served before, or
        the one the environment serves now, when the bytes say so), and whether the
        environment serves another version now, so that no later check can pass."""
        try:
            now = self.switch.env.served_version(self.switch.env.app())
        except MixpeekError:
            now = self.switch.version
        taken = now != self.switch.version
        suspects = (self.switch.before, now)
        for version in dict.fromkeys(v for v in suspects if v and v != self.switch.version):
            found = self._other(version, expected)
            if found is not None and found.matches(digests):
                note = f" ({self.switch.env.name} serves version {now} now)" if taken else ""
                return f"version {version}'s {expected.rel}, not {self.name}'s{note}", taken
        shown = digests.get("sha256", "")[:12]
        note = f"; {self.switch.env.name} serves version {now} now" if taken else ""
        return f"content that is not {self.name}'s {expected.rel} (sha256 {shown}…{note})", taken

    def _other(self, version: int, like: Content) -> Content | None:
        if version not in self._others:
            try:
                record = self.ctx.api.get_version(
                    self.switch.env.app_id, version, wanted=[like.rel]
                )
                entry = (record.asset_manifest or {}).get(like.rel)
                known = recognised(entry.get("hash") if isinstance(entry, Mapping) else None)
                self._others[version] = Content(like.rel, like.own_path, *known) if known else None
            except MixpeekError:
                self._others[version] = None
        return self._others[version]


def _decoded(page: site.Page) -> str:
    return "" if page.encoding == "identity" else f" (its body {page.encoding}-decoded)"


def archived_digest(api: MixpeekClient, app_id: str, version: int | None, rel: str) -> str | None:
    """The sha256 of ``rel`` in the version's own archive (its path inside the folder that
    holds ``index.html``), or None when the archive cannot be had or has no such file."""
    if version is None:
        return None
    with tempfile.TemporaryFile(prefix="mixpeek-version-") as handle:
        try:
            url = api.download_version(app_id, version).download_url
            api.download(url, handle, max_bytes=APP_LIMITS.max_bytes)
            files = collect_archive(handle, "the version's archive", Excludes(), APP_LIMITS)
            prefix = entry_prefix(files) or ""
            for f in files:
                if f.rel == prefix + rel:
                    digest = hashlib.sha256()
                    with f.open() as data:
                        while block := data.read(1 << 20):
                            digest.update(block)
                    return digest.hexdigest()
        except (MixpeekError, OSError):
            return None
    return None


# ---------------------------------------------------------------------- the verdict


def verify_switch(
    ctx: Context,
    spec: Verify | None,
    switch: Switch,
    *,
    pending: Callable[[], State | None],
    shipped: Mapping[str, str] | None = None,
    resolve: site.Resolver | None = None,
) -> bool:
    """Whether the checks ran and passed; None of ``spec`` means no checks (False). A version
    that fails them is rolled back and the one sentence says what failed and what serves now;
    a verdict not reached raises with ``pending()``, the state that keeps the version to
    restore, for the next run."""
    if spec is None:
        return False
    # The verification's reads (file lists, an archive) are inside the checks' own time.
    checks = Deadline.after(spec.timeout_seconds, ctx.deadline.clock, ctx.deadline.cancel)
    with ctx.bound(checks) as bounded:
        on = replace(switch, env=_on(bounded.api, switch.env))
        verifier = Verifier(bounded, spec, on, deadline=checks, shipped=shipped, resolve=resolve)
        outcome = verifier.run()
    env, name = switch.env.name, verifier.name
    if outcome.kind == "passed":
        ctx.say(f"verified {env}: {spec.checks} checks in a row passed and found {name}")
        return True
    if outcome.kind == "interrupted":
        raise ctx.timed_out(
            f"the verification of {name} in {env}",
            subject=switch.deploy_id,
            status="unverified",
            then=f"{env} serves it, not yet verified; the next `pulumi up` verifies it again",
            partial=pending(),
        )
    if outcome.kind == "unverified":
        raise ctx.failed(
            f"{name} could not be verified in {env} ({outcome.said}); {env} serves it, "
            "not yet verified, and nothing was rolled back; the next `pulumi up` verifies "
            "it again",
            subject=switch.deploy_id,
            status="unverified",
            reason=outcome.said,
            partial=pending(),
        )
    rollback = Deadline.after(ROLLBACK_SECONDS, ctx.deadline.clock, ctx.deadline.cancel)
    with ctx.bound(rollback) as bounded:
        undone, restored = _undo(bounded, replace(switch, env=_on(bounded.api, switch.env)))
    raise ctx.failed(
        f"{name} failed verification after the switch to {env} ({outcome.said}); {undone}",
        subject=switch.deploy_id,
        status="verification_failed",
        reason=outcome.said,
        partial=None if restored else pending(),
    )


St = TypeVar("St", AppDeployState, AppPromotionState)


def verify_unchanged(ctx: Context, olds: St, state: St) -> St:
    """An update that switches nothing: a switch an earlier run left unverified is verified
    now, and the version it replaced (kept in the state) restored if it fails; a ``verify``
    just added checks what serves, and rolls nothing back. Otherwise ``state`` as it is."""
    env, now, url = (
        AppEnvironment(ctx.api, state.app_id, state.environment),
        state.version,
        state.url,
    )
    if state.verify is None:
        return state.model_copy(update={"verified": False})
    pending: Callable[[], State | None]
    if unverified(olds):
        before = olds.previous_version
        switch = Switch(env, now, state.deploy_id or "", before, before != now, url or "")
        pending = lambda: state.model_copy(update={"verified": False})  # noqa: E731
    elif olds.verify is None:
        switch = Switch(env, now, state.deploy_id or "", None, False, url or "")
        pending = lambda: None  # noqa: E731 - nothing of this run's to undo, ever
    else:
        return state
    verified = verify_switch(ctx, state.verify, switch, pending=pending)
    return state.model_copy(update={"verified": verified})


def _on(api: MixpeekClient, env: AppEnvironment) -> AppEnvironment:
    return AppEnvironment(api, env.app_id, env.name)


def _undo(ctx: Context, switch: Switch) -> tuple[str, bool]:
    """Serve again what was served before the switch, unless another run switched the
    environment since; the sentence says what serves now, and whether nothing is left to do
    (True: restored, or nothing of ours to undo)."""
    env, before = switch.env, switch.before
    version = f"version {switch.version}" if switch.version is not None else "it"
    if not switch.switched or before == switch.version:
        return f"this run switched nothing, so {env.name} still serves {version}", True
    if before is None:
        return f"{env.name} served nothing before, so it still serves {version}", True
    try:
        now = env.served_version(env.app())
    except MixpeekError as exc:
        return (
            f"what {env.name} serves cannot be read ({first_line(exc)}), so nothing was restored",
            False,
        )
    if now != switch.version:
        shown = f"version {now}" if now is not None else "nothing"
        return (
            f"{env.name} serves {shown} now, put there by someone else after this run switched "
            f"it to {version}, so nothing was restored over it",
            True,
        )
    ctx.say(f"restoring version {before} to {env.name}")
    try:
        env.restore(before)
        _until_served(env, before)
    except (MixpeekError, WaitTimeout) as exc:
        if ctx.deadline.cancelled:
            return (
                f"restoring version {before} was interrupted, and {env.name} serves {_read_back(ctx.api, env)}",
                False,
            )
        reason = first_line(exc) if str(exc) else "it did not take"
        return (
            f"restoring version {before} failed too ({reason}), and {env.name} serves {_read_back(ctx.api, env)}",
            False,
        )
    return f"{env.name} serves version {before} again", True


def _until_served(env: AppEnvironment, version: int) -> None:
    poller: Poller[int | None] = Poller(
        fetch=lambda: env.served_version(env.app()),
        is_terminal=lambda served: served == version,
        deadline=env.api.deadline,
        interval=0.5,
        max_interval=2.0,
    )
    poller.run()


def _read_back(api: MixpeekClient, env: AppEnvironment) -> str:
    """What the environment serves, read once under a short bound of its own (a Cancel may
    have ended the operation's)."""
    with api.bound(Deadline.after(READ_BACK_SECONDS)) as reader:
        try:
            served = _on(reader, env).served_version(_on(reader, env).app())
        except MixpeekError:
            return "what could not be read"
    return f"version {served}" if served is not None else "nothing"
