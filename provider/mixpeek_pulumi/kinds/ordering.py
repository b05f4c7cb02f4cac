"""The order of commits: no deploy or promotion takes an environment from a newer commit of the
same history unless the program says so (``allow_older_commit``).

CI jobs start and finish out of order, and a delayed job of an older commit would otherwise
put its build back over a newer one, silently. The commit each side ships is the version
record's ``git_commit_sha`` (what the deploy sent, from git or the inputs); how they stand is
asked of git in the work tree the bundle, or the program, lives in. Where git cannot tell (no
git, a shallow clone, unrelated histories) the switch goes on, and one line says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..api.models import AppResponse, VersionRecord
from ..errors import DeployFailedError, MixpeekError, first_line
from ..files import gitinfo
from ..run.context import Context
from .environments import AppEnvironment


@dataclass(frozen=True)
class Shipped:
    """The commit a switch would put live, what it is (for messages), and the work tree that
    holds its history."""

    commit: str | None
    what: str
    repo: Path


def gate(
    ctx: Context, env: AppEnvironment, app: AppResponse, ours: Shipped, *, allow: bool
) -> None:
    """Refuse (before anything is sent) to switch ``env`` to an older commit than the one it
    serves; say in one line why the commits could not be compared, when they could not."""
    served = env.served(app)
    theirs = served.git_commit_sha if served is not None else None
    if served is None or not theirs:
        return  # nothing served, or a version that names no commit: nothing to keep
    where = f"commit {theirs[:7]}, which {env.name} serves"
    if not ours.commit:
        ctx.say(f"{ours.what} names no commit, so it is not compared with {where}")
        return
    # The bundle's history, else the program's (a bundle built outside the clone).
    places = list(dict.fromkeys([ours.repo, Path.cwd()]))
    found = gitinfo.relation(places, ours.commit, theirs, ctx.deadline)
    if found.kind in ("same", "newer"):
        return
    mine = f"commit {ours.commit[:7]} of {ours.what}"
    if found.kind == "unknown":
        ctx.say(f"{mine} is not compared with {where}: {found.why}")
    elif found.kind == "diverged":
        ctx.say(f"{mine} and {where} are on different branches; going on")
    elif allow:
        ctx.say(f"{mine} is older than {where}; going on, as `allow_older_commit` says")
    else:
        raise refused(ctx, env, ours, theirs, served.version)


def refused(
    ctx: Context, env: AppEnvironment, ours: Shipped, theirs: str, version: int | None
) -> DeployFailedError:
    shown = f" (version {version})" if version is not None else ""
    return ctx.failed(
        f"refused to switch {env.name} of app {env.app_id} to commit {(ours.commit or '')[:7]} "
        f"({ours.what}): it is older than commit {theirs[:7]}, which {env.name} serves "
        f"now{shown}, so it would undo newer work, and nothing was sent; set "
        "`allow_older_commit` to true to roll back on purpose",
        subject=theirs[:12],
        status="superseded",
        reason=f"commit {(ours.commit or '')[:7]} is older than commit {theirs[:7]}",
    )


def overtaken(
    ctx: Context,
    env: AppEnvironment,
    prior: VersionRecord | None,
    ours: Shipped,
    deploy_id: str,
    *,
    allow: bool,
) -> None:
    """A build that went live after another run put a newer commit live (``prior``, seen
    while it ran) gives the environment back to that commit and fails, as a refusal before
    the upload would have: the service switches on completion, whoever started first."""
    theirs = prior.git_commit_sha if prior is not None else None
    if prior is None or prior.version is None or not theirs or not ours.commit or allow:
        return
    places = list(dict.fromkeys([ours.repo, Path.cwd()]))
    if gitinfo.relation(places, ours.commit, theirs, ctx.deadline).kind != "older":
        return
    try:
        env.restore(prior.version)
        now = f"version {prior.version} serves again"
    except MixpeekError as exc:
        now = f"restoring version {prior.version} failed ({first_line(exc)})"
    raise ctx.failed(
        f"deploy {deploy_id} of commit {ours.commit[:7]} ({ours.what}) completed after "
        f"{env.name} of app {env.app_id} had moved on to commit {theirs[:7]} (version "
        f"{prior.version}), newer work it would undo; {now}; set `allow_older_commit` to true "
        "to roll back on purpose",
        subject=deploy_id,
        status="superseded",
        reason=f"commit {ours.commit[:7]} is older than commit {theirs[:7]}",
    )
