"""Reconciling an app deploy with what the service already has, so that a run never builds
again what an earlier run left: a copy of this bundle the environment serves is adopted; a
remembered deploy (the stack state or the journal) is only a hint, acted on as far as the
service confirms it; deploys of other content left building are waited for first; and an
environment someone repointed gets its declared version back without a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..api.models import DEPLOY_TERMINAL, AppResponse, DeployStatusResponse
from ..errors import (
    ApiConnectionError,
    ApiStatusError,
    DeployFailedError,
    MixpeekError,
    NotFoundError,
    ResponseValidationError,
    first_line,
)
from ..run.context import Context
from ..run.waiting import Poller, await_terminal
from . import environments
from .app_run import RELAXED_POLL, DeployRun
from .environments import AppEnvironment, carries, deploy_record
from .ordering import Shipped, gate
from .spec import AppDeployState

IN_FLIGHT: Final = ("queued", "building")


@dataclass(frozen=True)
class Hint:
    """A deploy id remembered from an earlier run: only a hint until the service confirms it."""

    deploy_id: str
    source: str
    """Where it was remembered, for the log: the stack state or the journal's file."""


def reconcile(
    ctx: Context, run: DeployRun, app: AppResponse, hints: tuple[Hint, ...]
) -> str | None:
    """The deploy of this bundle to wait for instead of deploying again, decided by the
    service: the one the environment serves now, else a remembered one the service says
    is still building (or completed, whose version is then restored). None: deploy anew."""
    served = _served_copy(ctx, run, app)
    if served is not None:
        return served
    for hint in (*hints, *_journaled(ctx, run)):
        found = _use_hint(ctx, run, app, hint)
        if found is not None:
            return found
    return None


def _served_copy(ctx: Context, run: DeployRun, app: AppResponse) -> str | None:
    served = run.env.serving_tagged(app, run.tag)
    if served is None:
        return None
    if run.inputs.require_smoke_test and _smoke_failed_at(ctx, app.app_id, served):
        return None  # the live copy failed its smoke test: build it again
    ctx.say(f"adopting deploy {served}: it already serves this bundle")
    return served


def _smoke_failed_at(ctx: Context, app_id: str, deploy_id: str) -> bool:
    """Whether the service says that deploy failed its smoke test; a record it no longer
    keeps (410, 404) says nothing against a copy that serves."""
    record = deploy_record(ctx.api, app_id, deploy_id)
    if isinstance(record, MixpeekError):
        ctx.say(
            f"deploy {deploy_id} serves this bundle; its record cannot be read "
            f"({first_line(record)})"
        )
        return False
    return record.smoke_failed


def settle_others(ctx: Context, run: DeployRun, others: tuple[Hint, ...]) -> None:
    """Deploys of other content to this environment that an earlier run left building
    could complete after this one and take the environment from it: each is waited for
    first, so that what this run reports stays served. Journal entries of those that
    failed or are gone are pruned; a completed one stays, to be restored if the program
    goes back to its content."""
    journal = ctx.journal
    siblings = journal.siblings(run.key) if journal is not None else []
    for hint in others:
        _let_end(ctx, run, hint)
    for entry in siblings:
        hint = Hint(entry.deploy_id, f"the journal ({entry.path})")
        if not _let_end(ctx, run, hint) and journal is not None:
            journal.forget(entry.key)


def _let_end(ctx: Context, run: DeployRun, hint: Hint) -> bool:
    """Wait until the hinted deploy ends; whether it completed (False: failed or gone)."""
    status = deploy_record(ctx.api, run.inputs.app_id, hint.deploy_id)
    if isinstance(status, MixpeekError):
        return False  # gone or unreadable: nothing the service will finish
    if status.environment not in (None, run.inputs.environment):
        return False
    if status.known_status in DEPLOY_TERMINAL:
        return status.known_status == "complete"
    ctx.say(
        f"waiting for deploy {hint.deploy_id} ({status.status}) of other content, left "
        f"building by an earlier run ({hint.source}), to end first, so that it cannot "
        "take the environment from this deploy afterwards"
    )
    poller = Poller(
        fetch=lambda: ctx.api.get_deploy(run.inputs.app_id, hint.deploy_id),
        is_terminal=lambda s: s.known_status in DEPLOY_TERMINAL,
        deadline=ctx.deadline,
        interval=run.inputs.poll_interval_seconds,
        max_interval=max(RELAXED_POLL, run.inputs.poll_interval_seconds),
    )
    final = await_terminal(
        poller,
        lambda last: ctx.timed_out(
            f"deploy {hint.deploy_id} of other content, left building by an earlier run,",
            subject=hint.deploy_id,
            status=last.status if last else "unknown",
            then=f"it must end before this deploy to {run.inputs.environment} starts, so "
            "the next `pulumi up` waits for it again",
        ),
    )
    return final.known_status == "complete"


def _journaled(ctx: Context, run: DeployRun) -> tuple[Hint, ...]:
    journal = ctx.journal
    entry = journal.lookup(run.key) if journal is not None else None
    return () if entry is None else (Hint(entry.deploy_id, f"the journal ({entry.path})"),)


def _use_hint(ctx: Context, run: DeployRun, app: AppResponse, hint: Hint) -> str | None:
    """Act on ``hint`` only as far as the service confirms it; otherwise drop it, in one
    log line."""
    status = _hint_status(ctx, run, hint)
    if status is None:
        return None
    if status.known_status in IN_FLIGHT or status.known_status is None:
        # A status this release does not know is one the build has not left yet.
        ctx.say(
            f"re-attaching to deploy {hint.deploy_id} ({status.status}), started by an "
            "earlier run with this bundle"
        )
        return hint.deploy_id
    if status.known_status == "complete" and not (
        run.inputs.require_smoke_test and status.smoke_failed
    ):
        return _restore_hinted(ctx, run, app, hint)
    why = f"it ended with status {status.status}"
    _drop(ctx, run, hint, f"{why} ({status.error})" if status.error else why)
    return None


def _hint_status(ctx: Context, run: DeployRun, hint: Hint) -> DeployStatusResponse | None:
    """What the service says of the hinted deploy, if it is a deploy of this bundle to this
    environment; None (the hint dropped) when it is gone, unreadable or someone else's."""
    status = deploy_record(ctx.api, run.inputs.app_id, hint.deploy_id)
    if isinstance(status, MixpeekError):
        _drop(ctx, run, hint, f"reading it failed ({first_line(status)})")
        return None
    if status.environment not in (None, run.inputs.environment):
        _drop(ctx, run, hint, f"it is a deploy to {status.environment}")
        return None
    if not carries(status.message, run.tag):
        _drop(ctx, run, hint, "it is a deploy of other content")
        return None
    return status


def _restore_hinted(ctx: Context, run: DeployRun, app: AppResponse, hint: Hint) -> str | None:
    """A completed deploy of this bundle that the environment no longer serves: serve its
    version again, with no rebuild."""
    env = run.env
    if env.deploy_id(app) == hint.deploy_id:
        return hint.deploy_id
    version = env.version_of(app, hint.deploy_id, run.tag)
    if version is None:
        _drop(ctx, run, hint, "it completed, but its version is not in the app's history")
        return None
    try:
        restored = env.restore(version)
    except NotFoundError:
        _drop(ctx, run, hint, f"it completed, but its version {version} no longer exists")
        return None
    except (ApiStatusError, ApiConnectionError, ResponseValidationError) as exc:
        raise restore_failed(ctx, run, hint.deploy_id, version, exc) from None
    ctx.say(
        f"deploy {hint.deploy_id} of this bundle completed in an earlier run, but "
        f"{env.name} serves another version now: restored its version {version} "
        "instead of building again"
    )
    return restored.deploy_id


def restore_failed(
    ctx: Context, run: DeployRun, deploy_id: str, version: int, exc: MixpeekError
) -> DeployFailedError:
    return ctx.failed(
        f"deploy {deploy_id} of this bundle completed, but restoring its version {version} "
        f"to {run.inputs.environment} of app {run.inputs.app_id} failed ({first_line(exc)}); "
        "the next `pulumi up` restores it again, with no rebuild",
        subject=deploy_id,
        status="restore_failed",
        reason=first_line(exc),
    )


def _drop(ctx: Context, run: DeployRun, hint: Hint, why: str) -> None:
    ctx.say(f"not using deploy {hint.deploy_id} from {hint.source}: {why}")
    if hint.source.startswith("the journal"):
        forget(ctx, run)


def forget(ctx: Context, run: DeployRun) -> None:
    if ctx.journal is not None:
        ctx.journal.forget(run.key)


def still_served(ctx: Context, state: AppDeployState) -> AppDeployState | None:
    """``state`` as it is, if the environment still serves its deploy; else with its
    version restored. None when neither holds."""
    env = AppEnvironment(ctx.api, state.app_id, state.environment)
    app = env.app()
    if state.deploy_id is not None and env.deploy_id(app) == state.deploy_id:
        return state.model_copy(update={"live": True, "url": env.url(app)})
    return restore_declared(ctx, state, env, app)


def restore_declared(
    ctx: Context, state: AppDeployState, env: AppEnvironment, app: AppResponse
) -> AppDeployState | None:
    """Someone repointed the environment (by hand, or an older build that completed late
    took it over): put the declared version back at once, without a rebuild, unless what
    serves is a newer commit. None when that version no longer exists, or the restore did
    not take (deploy again instead)."""
    if state.version is None:
        return None
    said = environments.drift_said(env, app, state)
    ours = Shipped(env.commit_of(app, state.version), f"version {state.version}", _repo(state))
    gate(ctx, env, app, ours, allow=state.allow_older_commit)
    try:
        restored = env.restore(state.version)
    except NotFoundError:
        return None
    except (ApiStatusError, ApiConnectionError, ResponseValidationError) as exc:
        raise ctx.failed(
            f"{state.environment} of app {state.app_id} no longer serves deploy "
            f"{state.deploy_id}, and restoring its version {state.version} failed "
            f"({first_line(exc)}); the next `pulumi up` tries again",
            subject=state.deploy_id or "unknown",
            status="restore_failed",
            reason=first_line(exc),
        ) from None
    app = env.app()
    if env.deploy_id(app) != restored.deploy_id:
        return None
    ctx.say(f"{said}: restored version {restored.version}")
    return state.model_copy(
        update={"deploy_id": restored.deploy_id, "live": True, "url": env.url(app)}
    )


def _repo(state: AppDeployState) -> Path:
    """Where the history of a deployed bundle is: its folder, or the program's."""
    return Path(state.bundle) if state.bundle else Path.cwd()
