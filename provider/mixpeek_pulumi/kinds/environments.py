"""An app environment as both app resources see it: what it serves, its URL, drift, rollback.

Only what the official models define is relied on: an environment entry's ``deploy_id`` and
``asset_prefix``, and a version record's ``asset_prefix``, ``is_active`` and ``message``. A
version record has no deploy id, so the version an environment serves is the record that says
it is active there, else the one with the environment's asset prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from ..api.client import MixpeekClient
from ..api.models import (
    ENVIRONMENTS,
    AppResponse,
    DeployStatusResponse,
    Environment,
    RestoreVersionResponse,
    VersionRecord,
)
from ..errors import (
    ApiStatusError,
    AuthenticationError,
    MixpeekError,
    NotFoundError,
    PermissionDeniedError,
    ResponseValidationError,
)
from ..files import manifest as manifests
from ..run.context import Context
from .spec import AppDeployState, AppPromotionState, identifier_problem

St = TypeVar("St", AppDeployState, AppPromotionState)
MARKER_PREFIX: Final = "mixpeek-pulumi:"
SERVED_NOW: Final = "served now"
Previous = int | None | Literal["served now"]
"""The version ``on_delete="rollback"`` restores: one recorded in state, none, or (on a first
deploy or promotion) whatever the environment serves when the operation starts."""


_TAGS: Final = re.compile(r"\s*\[" + re.escape(MARKER_PREFIX) + r"[^\]]*\]")
_REPLACES: Final = re.compile(
    r"\[" + re.escape(MARKER_PREFIX) + r"(staging|production):replaces=([0-9]{1,12})\] "
    r"\[" + re.escape(MARKER_PREFIX) + r"\1:[^\]]*\]\s*$"
)


def nothing_as_zero(version: int | None) -> int:
    """The rollback target as state keeps it: 0 for "served nothing", since versions start at
    1 and the dynamic-provider host leaves a null output out of the state altogether."""
    return 0 if version is None else version


def marker(environment: str, digest: str) -> str:
    """The tag a deploy message carries so a later run can recognise its own deploy."""
    return f"[{MARKER_PREFIX}{environment}:{digest[:32]}]"


def replaces_tag(environment: str, version: int | None) -> str:
    """What a deploy message records it replaces, just before its content tag: the version a
    later run restores if the new one fails its checks, found in the service's own history
    by any machine (``replaced_version``). Empty when nothing was served."""
    return "" if version is None else f"[{MARKER_PREFIX}{environment}:replaces={int(version)}] "


def replaced_version(message: str | None, environment: str) -> int | None:
    """The version a deploy of ours to ``environment`` replaced, as its message records it;
    only where this provider puts it (right before the closing tag), never from user text."""
    if not message:
        return None
    found = _REPLACES.search(message)
    if found is None or found.group(1) != environment:
        return None
    return int(found.group(2))


def carries(message: str | None, tag: str) -> bool:
    """Whether a deploy or version message ends with ``tag``: where this provider puts it,
    after the user's text, which can never place one there (``untagged``)."""
    return message is not None and message.rstrip().endswith(tag)


def untagged(text: str) -> str:
    """``text`` without anything that looks like our markers, however nested (removing one
    must never join the pieces around it into another)."""
    while True:
        stripped = _TAGS.sub("", text)
        if stripped == text:
            return text.strip()
        text = stripped


@dataclass
class AppEnvironment:
    """One environment (``staging`` or ``production``) of one app."""

    api: MixpeekClient
    app_id: str
    name: Environment

    def app(self) -> AppResponse:
        return self.api.get_app(self.app_id)

    def records(self, app: AppResponse) -> list[VersionRecord]:
        """The version history, without file lists: the app's own copy when it sends one,
        else the versions list."""
        if app.versions is not None:
            return [VersionRecord.model_validate(v) for v in app.versions if isinstance(v, dict)]
        return self.api.list_versions(self.app_id).records()

    def deploy_id(self, app: AppResponse) -> str | None:
        return app.environment(self.name).deploy_id

    def served(self, app: AppResponse) -> VersionRecord | None:
        entry = app.environment(self.name)
        if not entry.deploy_id:
            return None
        records = [r for r in self.records(app) if r.version is not None]
        said = [r for r in records if r.serves(self.name)]
        if said:
            return said[0]
        if entry.asset_prefix:
            return next((r for r in records if r.asset_prefix == entry.asset_prefix), None)
        return None

    def served_version(self, app: AppResponse) -> int | None:
        record = self.served(app)
        return record.version if record else None

    def serving_tagged(self, app: AppResponse, tag: str) -> str | None:
        """The deploy the environment serves, if its version's message carries ``tag``."""
        record = self.served(app)
        if record is None or not carries(record.message, tag):
            return None
        return self.deploy_id(app)

    def version_of(self, app: AppResponse, deploy_id: str, tag: str) -> int | None:
        """The version a deploy produced: the one served if it is that deploy, else the newest
        in the history whose message carries the deploy's tag."""
        if self.deploy_id(app) == deploy_id:
            served = self.served_version(app)
            if served is not None:
                return served
        tagged = [
            r.version
            for r in self.records(app)
            if r.version is not None and carries(r.message, tag)
        ]
        return max(tagged) if tagged else None

    def files(self, version: int | None) -> dict[str, str] | None:
        """What a preview compares a bundle with: the version's file list as a manifest,
        read alone and only as far as ``manifests.MAX_FILES`` (None past it, or when it
        cannot be read)."""
        if version is None:
            return None
        try:
            record = self.api.get_version(self.app_id, version, files=manifests.MAX_FILES + 1)
        except MixpeekError:
            return None
        return manifests.from_service(record.asset_manifest) if record.manifest_complete else None

    def commit_of(self, app: AppResponse, version: int | None) -> str | None:
        """The commit a version was built from, as its record says."""
        found = next((r for r in self.records(app) if r.version == version), None)
        return found.git_commit_sha if found is not None and version is not None else None

    def url(self, app: AppResponse) -> str:
        """The server's URL for the environment when it sends one; otherwise derived from the
        app's canonical URL: production is it, staging is ``staging-<host>`` (documented)."""
        given = app.environment(self.name).extra_text("url")
        if given:
            return given
        base = app.url or f"https://{app.slug}.mxp.co"
        if self.name == "production":
            return base
        scheme, _, host = base.partition("://")
        return f"{scheme}://{self.name}-{host}"

    def restore(self, version: int) -> RestoreVersionResponse:
        return self.api.restore_version(self.app_id, version, self.name)


def unverified(state: AppDeployState | AppPromotionState) -> bool:
    """Whether an earlier run switched the environment and left the checks of ``verify``
    without a verdict: the next update verifies again, and may roll back."""
    return state.verify is not None and state.verified is False and state.live is not False


def drift(state: AppDeployState | AppPromotionState) -> list[str]:
    """The outputs whose value makes the next ``up`` act although no input changed: ``live``
    after someone repointed the environment, ``verified`` for a switch left unverified."""
    return (["live"] if state.live is False else []) + (["verified"] if unverified(state) else [])


def import_id(resource_id: str) -> tuple[str, Environment]:
    """The app and environment an import names as ``<app_id>/<environment>``; the app id
    follows the rule of the ``app_id`` input, so no id can step to another path."""
    app_id, _, environment = resource_id.partition("/")
    problem = identifier_problem(app_id)
    for name in ENVIRONMENTS:
        if problem is None and environment == name:
            return app_id, name
    reason = f" {problem};" if problem is not None and environment in ENVIRONMENTS else ""
    raise MixpeekError(
        f"The import id {resource_id[:200]!r} names no app environment:{reason} use "
        "<app_id>/staging or <app_id>/production."
    )


def imported(api: MixpeekClient, resource_id: str) -> tuple[AppEnvironment, AppResponse] | None:
    """The environment an import id names, with its app; None when there is no such app."""
    app_id, environment = import_id(resource_id)
    env = AppEnvironment(api, app_id, environment)
    try:
        return env, env.app()
    except NotFoundError:
        return None


def refresh(ctx: Context, state: St) -> St | None:
    """The state as the service has it now: None when the app is gone, ``live`` false (and
    one line naming what serves instead) when the environment serves another deploy."""
    env = AppEnvironment(ctx.api, state.app_id, state.environment)
    try:
        app = env.app()
    except NotFoundError:
        return None
    return _said(ctx, env, app, _seen(env, app, state), state)


def _seen(env: AppEnvironment, app: AppResponse, state: St) -> St:
    live = env.deploy_id(app) == state.deploy_id
    return state.model_copy(update={"live": live, "url": env.url(app)})


def _said(ctx: Context, env: AppEnvironment, app: AppResponse, now: St, was: St) -> St:
    """``now``, after one line naming what took the environment over, if something did."""
    if now.live is False and env.deploy_id(app) != was.deploy_id:
        ctx.say(f"{drift_said(env, app, was)}; the next `pulumi up` puts it back")
    return now


def drift_said(env: AppEnvironment, app: AppResponse, state: St) -> str:
    """What serves instead of the deploy the state records, and what that one was: each
    deploy with its version and commit, so an older build that took over late is named."""
    record = env.served(app)
    now = env.deploy_id(app)
    version = record.version if record is not None else None
    serving = f"deploy {now}{_of(version, env.commit_of(app, version))}" if now else "nothing"
    expected = f"deploy {state.deploy_id}{_of(state.version, env.commit_of(app, state.version))}"
    return (
        f"{env.name} of app {env.app_id} serves {serving}, not {expected}, which this stack expects"
    )


def _of(version: int | None, commit: str | None) -> str:
    parts = [f"version {version}"] if version is not None else []
    parts += [f"commit {commit[:7]}"] if commit else []
    return f" ({', '.join(parts)})" if parts else ""


def refresh_deploy(ctx: Context, state: AppDeployState) -> AppDeployState | None:
    """An app deploy's state as the service has it now, so that whatever was recorded (a
    deploy cut short, one that failed since, drift) converges: ``live``, then the deploy the
    environment serves if it serves this bundle through another deploy, and that deploy's
    ``status`` and ``version``; drift is named in one line."""
    env = AppEnvironment(ctx.api, state.app_id, state.environment)
    try:
        app = env.app()
    except NotFoundError:
        return None
    refreshed = _seen(env, app, state)
    if not state.bundle_sha256:
        return _said(ctx, env, app, refreshed, state)
    update: dict[str, object] = {}
    tag = marker(state.environment, state.bundle_sha256)
    served = env.serving_tagged(app, tag)
    record = _status_of(ctx.api, state.app_id, served) if served else None
    if served and served != state.deploy_id and record and carries(record.message, tag):
        # This bundle serves through another deploy of it (an earlier run's), as its own
        # record confirms: that is the deploy this resource stands for now.
        update = {"deploy_id": served, "live": True, "version": env.served_version(app)}
    else:
        record = _status_of(ctx.api, state.app_id, state.deploy_id) if state.deploy_id else None
    if record is not None:
        update["status"] = record.status
        if state.require_smoke_test and record.smoke_failed:
            update["live"] = False  # served, but not as the program asked: the next up acts
    return _said(ctx, env, app, refreshed.model_copy(update=update), state)


def deploy_record(
    api: MixpeekClient, app_id: str, deploy_id: str
) -> DeployStatusResponse | MixpeekError:
    """The deploy's record, or the error that made it unreadable (gone, refused, garbled),
    for callers that go on without it; auth errors are raised, since every other request would
    fail the same way."""
    try:
        return api.get_deploy(app_id, deploy_id)
    except (AuthenticationError, PermissionDeniedError):
        raise
    except (ApiStatusError, ResponseValidationError) as exc:
        return exc


def _status_of(api: MixpeekClient, app_id: str, deploy_id: str) -> DeployStatusResponse | None:
    """The deploy's record, or None: the status then stays as it was, since a version the
    deploy built may still serve."""
    record = deploy_record(api, app_id, deploy_id)
    return None if isinstance(record, MixpeekError) else record


def roll_back(ctx: Context, state: St, what: str) -> None:
    """``on_delete="rollback"``: restore the version served before, unless someone else
    deployed since (their deploy is never clobbered)."""
    if state.on_delete != "rollback":
        return
    if state.deploy_id is None:
        ctx.say("its state names no deploy, so nothing was rolled back at the service")
        return
    env = AppEnvironment(ctx.api, state.app_id, state.environment)
    try:
        app = env.app()
    except NotFoundError:
        return
    # 0: the environment served nothing before (a null would not survive the dynamic host).
    ours, previous = state.deploy_id, state.rollback_version or None
    if env.deploy_id(app) != ours:
        ctx.say(f"{env.name} no longer serves deploy {ours}; nothing to roll back")
    elif previous is None:
        ctx.say(f"{env.name} served nothing before this {what}; deploy {ours} stays live")
    else:
        try:
            env.restore(previous)
        except NotFoundError:
            ctx.say(f"version {previous} no longer exists; deploy {ours} stays live")
            return
        ctx.say(f"rolled {env.name} back to version {previous}")
