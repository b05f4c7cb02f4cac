"""App deploys: check and diff a bundle, then put it live in an environment and wait.

``AppDeploy.deploy`` packages the bundle deterministically, adopts a deploy of the same
content that an earlier run left (journal or live tag; ``app_reconcile``), else uploads through
a presigned URL and triggers the deploy, recovers a deploy whose answer was lost, follows the
build log while polling, rolls back a failed smoke test, and returns the new state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from ..api.client import MixpeekClient
from ..api.logs import LogFollower
from ..api.models import (
    DEPLOY_TERMINAL,
    AppResponse,
    DeployRequest,
    DeployStatusResponse,
)
from ..deadline import Deadline
from ..errors import (
    ApiConnectionError,
    ApiStatusError,
    BundleError,
    DeployFailedError,
    MixpeekError,
    ResponseValidationError,
    first_line,
)
from ..files import bundle as bundles
from ..files import gitinfo
from ..files import manifest as manifests
from ..files import shipment as shipments
from ..files.contents import source_texts
from ..files.excludes import Excludes
from ..files.layout import entry_prefix
from ..files.sources import APP_LIMITS, SourceFile
from ..run.context import Context
from ..run.progress import Heartbeat, Meter, MeteredReader
from ..run.waiting import Poller, WaitTimeout, await_terminal
from . import environments
from .app_reconcile import Hint, forget, reconcile, restore_failed, settle_others, still_served
from .app_run import RELAXED_POLL, DeployRun, Watch
from .base import Checked, Kind
from .diffs import Diff, Failure, diff_inputs
from .environments import (
    SERVED_NOW,
    AppEnvironment,
    Previous,
    drift,
    imported,
    marker,
    nothing_as_zero,
    replaced_version,
    replaces_tag,
    untagged,
)
from .ordering import Shipped, gate, overtaken
from .spec import AppDeployInputs, AppDeployState
from .uploads import remote_digest, upload_fresh
from .verify import Switch, verify_switch, verify_unchanged

DEFAULT_MESSAGE: Final = "Deployed with mixpeek-pulumi"
BUNDLE_NAME: Final = "bundle.zip"
SETTLE_SECONDS: Final = 60.0
"""The bound of what follows a complete build before its checks: seeing it served."""


def collect(inputs: AppDeployInputs) -> list[SourceFile]:
    return bundles.collect(Path(inputs.bundle), Excludes(inputs.exclude))


def check_bundle(inputs: AppDeployInputs) -> str:
    """The bundle's content digest, or a ``BundleError`` for what the service would refuse."""
    files = collect(inputs)
    if not files:
        raise BundleError(inputs.bundle, "no files are left after the exclusions")
    if entry_prefix(files) is None:
        raise BundleError(
            inputs.bundle,
            "it has no index.html at its root or inside a single top-level folder, "
            "which the Mixpeek build requires",
        )
    return manifests.of_files(files)[0]


def check(
    inputs: AppDeployInputs | None, unknown: set[str]
) -> tuple[dict[str, Any], list[Failure]]:
    """What ``check`` computes (the content digest) and the bundle's own failures, once the
    inputs are valid and the bundle is known; nothing is sent anywhere."""
    if inputs is None or "bundle" in unknown:
        return {}, []
    try:
        return {"bundle_sha256": check_bundle(inputs)}, []
    except BundleError as exc:
        return {}, [Failure("bundle", str(exc))]
    except OSError as exc:
        return {}, [Failure("bundle", f"The bundle cannot be read: {exc}.")]


def diff(olds: AppDeployState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
    """Settings are compared as declared; the bundle by content digest, so a rebuild of the
    same bytes is no change; an environment that drifted away, and a switch left unverified,
    are changes too.

    A content change is named by the digest, ``bundle_sha256``: the CLI shows each named
    property's old and new input, and the bundle's path, the same before and after, would
    read as ``"./dist" => "./dist"``. A path not known yet is the change itself."""
    content = "bundle" in unknown or news.get("bundle_sha256") != olds.bundle_sha256
    changed = "bundle" if "bundle" in unknown else "bundle_sha256"
    extra = ([changed] if content else []) + drift(olds)
    found = diff_inputs(
        AppDeployInputs, olds.model_dump(), news, unknown, skip=("bundle",), extra=extra
    )
    if not content or "bundle" in unknown:
        return found
    return found.with_notes([_files_note(olds, news)])


def _files_note(olds: AppDeployState, news: Mapping[str, Any]) -> str:
    """Which files of the bundle differ from what is live, without a network call: the
    state's manifest against the bundle's, read again (only when its digest changed); or,
    when either list is missing, why."""
    new, count = None, None
    if olds.bundle_files is not None and isinstance(news.get("bundle"), str):
        try:
            excludes = Excludes(news.get("exclude") or [])
            files = bundles.collect(Path(news["bundle"]), excludes)
            count = len(files)
            # Over the cap there is no list to compare: no need to read every byte for it.
            new = manifests.of_files(files)[1] if count <= manifests.MAX_FILES else None
        except (MixpeekError, OSError, ValueError):
            new = None
    if olds.bundle_files is not None and new is not None:
        return manifests.summary("bundle", olds.bundle_files, new)
    return f"bundle: its content changed (no file list to compare: {_no_list(olds, count)})"


def _no_list(olds: AppDeployState, count: int | None) -> str:
    """Why a preview has no two lists of files to compare."""
    most = f"{manifests.MAX_FILES:,}"
    if olds.bundle_files is None:
        if olds.written_before_file_lists:
            return (
                "the state was written by an earlier release of mixpeek-pulumi, which kept "
                "none; the next `pulumi up` records one"
            )
        if olds.file_count is not None and olds.file_count > manifests.MAX_FILES:
            return (
                f"the deployed bundle has {olds.file_count:,} files, and the state keeps a "
                f"list only for bundles of up to {most}"
            )
        return (
            "none was kept for the deployed version, as the service gave no sha256 hashes of "
            "its files; the next `pulumi up` records one"
        )
    if count is not None and count > manifests.MAX_FILES:
        return f"the bundle now has {count:,} files, and lists are kept only for up to {most}"
    return "the bundle's files cannot be listed now"


@dataclass(frozen=True)
class _Before:
    """What an environment served when an operation started (``served``), and the version
    ``on_delete="rollback"`` restores (``restores``)."""

    restores: int | None
    served: int | None


class AppDeploy(Kind[AppDeployInputs, AppDeployState]):
    """AppDeploy: a build folder or .zip made live in an app environment."""

    name = "AppDeploy"
    summary = "A Mixpeek App deploy of a build folder or .zip, live once `pulumi up` returns."
    path = "bundle"
    path_change = (
        "A change of the bundle's content updates the resource in place (a new deploy and "
        "version); a new path, or a rebuild with the same bytes, changes nothing."
    )
    details = (
        "Create and update package the bundle (a deterministic zip that leaves secrets such as "
        "`.env`, keys and `.git/` out), upload it, trigger the deploy, stream the build log under "
        "the resource, and return once the service reports the deploy complete and the "
        "environment serving it. Destroy leaves the deploy live (`onDelete: retain`) or restores "
        "the version served before (`rollback`). Import with the id `<appId>/<environment>`."
    )
    inputs = AppDeployInputs
    state = AppDeployState

    def computed(
        self, inputs: AppDeployInputs | None, unknown: set[str], olds: Mapping[str, Any]
    ) -> Checked:
        return check(inputs, unknown)

    def diff(self, olds: AppDeployState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return diff(olds, news, unknown)

    def create(self, ctx: Context, inputs: AppDeployInputs) -> AppDeployState:
        return self.deploy(ctx, inputs, rollback=SERVED_NOW)

    def read(self, ctx: Context, state: AppDeployState) -> AppDeployState | None:
        return environments.refresh_deploy(ctx, state)

    def delete(self, ctx: Context, state: AppDeployState) -> None:
        environments.roll_back(ctx, state, "deploy")

    def deploy(
        self,
        ctx: Context,
        inputs: AppDeployInputs,
        *,
        rollback: Previous,
        hints: tuple[Hint, ...] = (),
        others: tuple[Hint, ...] = (),
    ) -> AppDeployState:
        """Make the environment serve ``inputs.bundle``: adopt what the service already serves
        or builds of it, else upload and deploy, then verify the live site when
        ``inputs.verify`` asks to; ``rollback`` is the version ``on_delete="rollback"``
        restores (what is served now, on a first deploy); ``hints`` are deploys of this
        bundle and ``others`` deploys of other content that earlier runs left. Raises ``DeployFailedError`` or
        ``DeployTimeoutError`` with the deploy id, the status and the reason."""
        env = AppEnvironment(ctx.api, inputs.app_id, inputs.environment)
        app = env.app()
        served_before = env.served_version(app)
        restores = nothing_as_zero(served_before) if rollback == SERVED_NOW else rollback
        run, deploy_id = self._adopt_or_start(ctx, inputs, env, app, hints, others, served_before)
        return self._finish(ctx, run, deploy_id, _Before(restores, served_before))

    def _finish(
        self, ctx: Context, run: DeployRun, deploy_id: str, before: _Before
    ) -> AppDeployState:
        """Wait for the deploy and judge it; at the deadline the error carries what exists.
        A complete deploy counts only once the environment is seen serving it; what follows
        the build has bounds of its own, so a build that used most of the deadline leaves
        the checks all of theirs (the service puts a complete build live regardless)."""
        final, tail = self._wait(ctx, run, deploy_id, before)
        if final.known_status == "failed":
            forget(ctx, run)
            raise self._failed(ctx, run, final, tail)
        if run.inputs.require_smoke_test and final.smoke_failed:
            forget(ctx, run)
            raise self._smoke_failed(ctx, run, final, tail, before.served)
        settle = Deadline.after(SETTLE_SECONDS, ctx.deadline.clock, ctx.deadline.cancel)
        with ctx.bound(settle) as settling:
            run = replace(run, env=AppEnvironment(settling.api, run.env.app_id, run.env.name))
            # Remembered until seen served and verified: the next run restores it instead of
            # building it again (and verifies it again).
            app, served_id = self._served_after(settling, run, final)
            # Another run may have put a newer commit live while this build ran.
            overtaken(
                ctx,
                run.env,
                run.watch.last,
                run.shipped,
                served_id,
                allow=run.inputs.allow_older_commit,
            )
            switch = self._switch(settling, run, app, served_id, before)

            def pending() -> AppDeployState:
                return self._state(settling, run, final, before, app, switch, verified=False)

            verified = verify_switch(
                settling,
                run.inputs.verify,
                switch,
                pending=pending,
                shipped=run.manifest,
            )
            forget(ctx, run)
            return self._state(settling, run, final, before, app, switch, verified=verified)

    def _switch(
        self, ctx: Context, run: DeployRun, app: AppResponse, served_id: str, before: _Before
    ) -> Switch:
        """What this run did to the environment, and the version to restore if the checks
        fail: what it served when the run started, or, for a copy an earlier run put live
        (and maybe never verified), the version that copy's own message says it replaced."""
        version = run.env.version_of(app, served_id, run.tag)
        target = before.served
        prior = run.watch.last
        if prior is not None and prior.version not in (None, version):
            target = prior.version  # switched by another run while this build ran
        switched = version != target
        if not switched:
            record = run.env.served(app)
            replaced = replaced_version(record.message if record else None, run.env.name)
            if replaced is not None and replaced != version:
                target, switched = replaced, True
        return Switch(run.env, version, served_id, target, switched, run.env.url(app))

    def _partial(
        self, ctx: Context, run: DeployRun, deploy_id: str, before: _Before, status: str
    ) -> AppDeployState:
        """The state of a deploy still under way: enough for a later run to re-attach."""
        return AppDeployState(
            **run.inputs.model_dump(exclude={"bundle_sha256"}),
            bundle_sha256=run.digest,
            deploy_id=deploy_id,
            status=status,
            bundle_s3_key=run.s3_key,
            bundle_size=run.archive_size or None,
            file_count=run.file_count or None,
            previous_version=before.served,
            rollback_version=before.restores,
        )

    def _attempt(
        self,
        ctx: Context,
        inputs: AppDeployInputs,
        env: AppEnvironment,
        digest: str,
        size: int,
        count: int,
        git: gitinfo.GitInfo,
        s3_key: str | None = None,
    ) -> DeployRun:
        """One deploy of ``digest``: its tag for the deploy message and its journal key."""
        key = (ctx.api.base_url, inputs.app_id, inputs.environment, digest)
        return DeployRun(
            inputs, env, digest, marker(inputs.environment, digest), key, size, count, s3_key, git
        )

    def _commit(self, ctx: Context, inputs: AppDeployInputs) -> gitinfo.GitInfo:
        """The commit the bundle comes from: the inputs' ``git_*`` where set, else git's."""
        found = gitinfo.GitInfo()
        if inputs.bundle:
            found = gitinfo.detect(Path(inputs.bundle), ctx.deadline)
        return gitinfo.GitInfo(
            inputs.git_commit_sha or found.sha,
            inputs.git_commit_message or found.subject,
            inputs.git_author or found.author,
        )

    def import_(self, ctx: Context, resource_id: str) -> AppDeployState | None:
        """What ``pulumi import <app_id>/<environment>`` reads: the deploy the environment
        serves, with the digest of its bundle so an unchanged build shows no change. None
        when the environment serves nothing."""
        found = imported(ctx.api, resource_id)
        if found is None:
            return None
        env, app = found
        app_id = env.app_id
        deploy_id = env.deploy_id(app)
        record = env.served(app)
        if deploy_id is None or record is None or record.version is None:
            return None
        status = ctx.api.get_deploy(app_id, deploy_id)
        # No bundle: its path is the one input an import cannot know.
        return AppDeployState(
            app_id=app_id,
            environment=env.name,
            bundle_sha256=remote_digest(
                ctx.api,
                ctx.api.download_version(app_id, record.version).download_url,
                Excludes(),
                APP_LIMITS,
            ),
            bundle_files=env.files(record.version),
            deploy_id=deploy_id,
            version=record.version,
            status=status.status,
            bundle_s3_key=status.bundle_s3_key,
            url=env.url(app),
            smoke_test=status.smoke_test.model_dump(mode="json") if status.smoke_test else None,
            queued_at=status.queued_at,
            live=True,
            deploy_message=status.message,
            previous_version=None,
        )

    # ----------------------------------------------------------------------- the steps

    def _adopt_or_start(
        self,
        ctx: Context,
        inputs: AppDeployInputs,
        env: AppEnvironment,
        app: AppResponse,
        hints: tuple[Hint, ...],
        others: tuple[Hint, ...],
        served: int | None,
    ) -> tuple[DeployRun, str]:
        """Refuse an older commit than the one served, package the bundle, let what earlier
        runs left building end, then adopt what the service has of this bundle, or upload and
        trigger; the archive is gone when this returns, whatever happened."""
        git = self._commit(ctx, inputs)
        # Before the upload starts (packing streams into it): a refusal sends nothing.
        shipped = Shipped(git.sha, "this bundle", Path(inputs.bundle))
        gate(ctx, env, app, shipped, allow=inputs.allow_older_commit)
        with self._packed(ctx, inputs) as (archive, files):
            digest = archive.digest.sha256
            run = self._attempt(
                ctx, inputs, env, digest, archive.size, archive.digest.file_count, git
            )
            run.replaces, run.watch = served, Watch(env)
            entries = archive.entries
            run.manifest = manifests.of_hashes(
                [e.file for e in entries], [e.sha256 for e in entries]
            )
            settle_others(ctx, run, others)
            adopted = reconcile(ctx, run, app, hints)
            if adopted is not None:
                return run, adopted
            run.s3_key = self._upload(ctx, run, archive)
            request = self._request(ctx, run, files)
        return run, self._trigger(ctx, run, request)

    @contextmanager
    def _packed(
        self, ctx: Context, inputs: AppDeployInputs
    ) -> Iterator[tuple[shipments.Shipment, list[SourceFile]]]:
        """The bundle laid out as a zip and already streaming into its upload (``_upload``
        waits for it), hashed in full before this yields; leaving stops an upload that an
        adopted deploy made needless."""
        files = collect(inputs)
        meter = Meter(ctx.say, "packing", sum(f.size for f in files), len(files))
        folder = inputs.bundle if Path(inputs.bundle).is_dir() else None
        with shipments.Shipment(
            files, folder=folder, source=inputs.bundle, progress=meter.add
        ) as shipment:
            shipment.start(lambda body: upload(ctx.api, ctx.say, inputs.app_id, body))
            shipment.digest  # noqa: B018 - waits until every byte is hashed
            meter.finish()
            yield shipment, files

    def _upload(self, ctx: Context, run: DeployRun, shipment: shipments.Shipment) -> str:
        key: str = shipment.sent()
        return key

    def _request(self, ctx: Context, run: DeployRun, files: list[SourceFile]) -> DeployRequest:
        inputs, git = run.inputs, run.git
        sha, subject = git.sha, git.subject
        base = inputs.message or (f"{subject} ({sha[:7]})" if subject and sha else DEFAULT_MESSAGE)
        # The tag ends the message, and only ours: one inside the user's text never counts.
        base = untagged(base) or DEFAULT_MESSAGE
        replaces = replaces_tag(run.env.name, run.replaces)
        return DeployRequest(
            message=f"{base} {replaces}{run.tag}",
            environment=inputs.environment,
            source="cli_upload",
            bundle_s3_key=run.s3_key,
            source_files=source_texts(files) if inputs.include_source_files else None,
            git_commit_sha=sha,
            git_commit_message=subject,
            git_author=git.author,
        )

    def _trigger(self, ctx: Context, run: DeployRun, request: DeployRequest) -> str:
        try:
            deploy_id = ctx.api.deploy(run.inputs.app_id, request).deploy_id
        except (ApiConnectionError, ResponseValidationError) as exc:
            if isinstance(exc, ApiConnectionError) and not exc.sent:
                raise
            deploy_id = self._recover(ctx, run, exc)
        if ctx.journal is not None:
            ctx.journal.record(run.key, deploy_id)
        ctx.say(f"deploy {deploy_id} queued for {run.inputs.environment}")
        return deploy_id

    def _recover(
        self, ctx: Context, run: DeployRun, lost: ApiConnectionError | ResponseValidationError
    ) -> str:
        """The deploy request may have been stored though its answer was lost: wait for a
        deploy of this bundle to go live, until the deadline."""
        inputs = run.inputs
        first = first_line(lost)
        ctx.say(
            f"the answer to the deploy request was lost ({first}); waiting for the deploy to show"
        )
        poller: Poller[str | None] = Poller(
            fetch=lambda: run.env.serving_tagged(run.env.app(), run.tag),
            is_terminal=lambda found: found is not None,
            deadline=ctx.deadline,
            interval=inputs.poll_interval_seconds,
        )
        found = await_terminal(
            poller,
            lambda _last: ctx.timed_out(
                f"the deploy request to {inputs.environment} of app {inputs.app_id} lost its "
                f"answer ({first}), and the wait for a deploy of this bundle to go live",
                subject="unknown",
                status="unknown",
            ),
        )
        assert found is not None
        return found

    def _wait(
        self, ctx: Context, run: DeployRun, deploy_id: str, before: _Before
    ) -> tuple[DeployStatusResponse, list[str]]:
        """Poll until terminal while the log stream echoes the build and wakes the poll the
        moment it says the deploy ended; at the deadline (or a Cancel) the error carries the
        log's tail and what exists, for a later run to re-attach."""
        inputs = run.inputs
        wake = threading.Event()
        beat = Heartbeat(ctx.say, lambda: f"waiting for deploy {deploy_id} to end")
        follower = LogFollower(ctx.api, inputs.app_id, deploy_id, sink=beat.say, wake=wake)
        follower.start()
        poller = Poller(
            fetch=lambda: ctx.api.get_deploy(inputs.app_id, deploy_id),
            is_terminal=lambda s: s.known_status in DEPLOY_TERMINAL,
            deadline=ctx.deadline,
            interval=inputs.poll_interval_seconds,
            wake=wake,
            on_status=lambda s: run.watch.look(s.known_status not in DEPLOY_TERMINAL),
            on_problem=ctx.say,
            # The stream's end wakes the loop, so while it runs a slow poll only confirms.
            max_interval=max(RELAXED_POLL, inputs.poll_interval_seconds),
            relaxed=follower.is_alive,
        )
        try:
            with beat:
                final = poller.run()
            # Status can turn terminal a moment before the stream's last lines arrive.
            follower.finished.wait(timeout=0.5)
        except WaitTimeout as exc:
            status = exc.last.status if exc.last is not None else "unknown"
            raise ctx.timed_out(
                f"deploy {deploy_id} to {inputs.environment} of app {inputs.app_id}",
                subject=deploy_id,
                status=status,
                then="the next `pulumi up` re-attaches to it instead of deploying again",
                log_tail=follower.lines(),
                partial=self._partial(ctx, run, deploy_id, before, status),
            ) from None
        finally:
            follower.stop()
        if follower.finished.is_set():
            follower.join(timeout=1)  # the last lines are in; the tail is complete
        return final, follower.lines()

    def _failed(
        self, ctx: Context, run: DeployRun, final: DeployStatusResponse, tail: list[str]
    ) -> DeployFailedError:
        reason = final.error or "the service gave no reason"
        return ctx.failed(
            f"deploy {final.deploy_id} to {run.inputs.environment} of app "
            f"{run.inputs.app_id} ended with status {final.status}: {reason}",
            subject=final.deploy_id,
            status=final.status,
            reason=reason,
            log_tail=tail,
        )

    def _smoke_failed(
        self,
        ctx: Context,
        run: DeployRun,
        final: DeployStatusResponse,
        tail: list[str],
        served_before: int | None,
    ) -> DeployFailedError:
        smoke = final.smoke_test
        errors = "; ".join(smoke.errors) if smoke and smoke.errors else "no details"
        env = run.inputs.environment
        outcome = f"{env} still serves it"
        if served_before is not None:
            try:
                run.env.restore(served_before)
                outcome = f"{env} was restored to version {served_before}"
            except MixpeekError as exc:
                outcome = (
                    f"restoring version {served_before} failed too ({str(exc).splitlines()[0]})"
                )
        return ctx.failed(
            f"deploy {final.deploy_id} to {env} of app {run.inputs.app_id} "
            f"completed but its smoke test failed ({errors}); {outcome}",
            subject=final.deploy_id,
            status="smoke_test_failed",
            reason=errors,
            log_tail=tail,
        )

    def _served_after(
        self, ctx: Context, run: DeployRun, final: DeployStatusResponse
    ) -> tuple[AppResponse, str]:
        """The app once the environment is seen serving the complete deploy, and the deploy
        it serves. A deploy the environment does not serve (someone deployed in between) has
        its version restored, since the program declares this bundle; if even that does not
        stick, the deploy fails rather than report content that is not live."""
        env, deploy_id = run.env, final.deploy_id
        app = env.app()
        if env.deploy_id(app) == deploy_id:
            return app, deploy_id
        other = env.deploy_id(app) or "nothing"
        version = env.version_of(app, deploy_id, run.tag)
        if version is not None:
            # Whoever deployed meanwhile may have shipped a newer commit: never undo it.
            gate(ctx, env, app, run.shipped, allow=run.inputs.allow_older_commit)
            try:
                restored = env.restore(version)
            except (ApiStatusError, ApiConnectionError, ResponseValidationError) as exc:
                raise restore_failed(ctx, run, deploy_id, version, exc) from None
            app = env.app()
            if env.deploy_id(app) == restored.deploy_id:
                ctx.say(
                    f"deploy {deploy_id} completed while {env.name} served {other}: restored "
                    f"its version {version}"
                )
                return app, restored.deploy_id
        tried = "restoring its version did not take" if version else "its version is unknown"
        raise ctx.failed(
            f"deploy {deploy_id} to {env.name} of app {env.app_id} completed, "
            f"but {env.name} serves {env.deploy_id(app) or 'nothing'} instead and {tried}; "
            "run `pulumi up` again, or check who else deploys there",
            subject=deploy_id,
            status="not_served",
            reason=f"{env.name} serves {env.deploy_id(app) or 'nothing'}",
        )

    def _state(
        self,
        ctx: Context,
        run: DeployRun,
        final: DeployStatusResponse,
        before: _Before,
        app: AppResponse,
        switch: Switch,
        *,
        verified: bool,
    ) -> AppDeployState:
        smoke = final.smoke_test
        live_files = run.env.files(switch.version)
        return AppDeployState(
            **run.inputs.model_dump(exclude={"bundle_sha256"}),
            bundle_sha256=run.digest,
            bundle_files=live_files or run.manifest,
            deploy_id=switch.deploy_id,
            version=switch.version,
            status=final.status,
            bundle_s3_key=final.bundle_s3_key or run.s3_key,
            bundle_size=run.archive_size,
            file_count=run.file_count,
            url=run.env.url(app),
            smoke_test=smoke.model_dump(mode="json") if smoke else None,
            queued_at=final.queued_at,
            live=True,
            deploy_message=final.message,
            previous_version=switch.before,
            rollback_version=before.restores,
            verified=verified,
        )

    def update(self, ctx: Context, olds: AppDeployState, inputs: AppDeployInputs) -> AppDeployState:
        """Settings alone are recorded, once the service confirms the environment serves the
        recorded deploy (drift with the same content is repaired by a restore); anything else,
        a deploy a create left under way included, is reconciled by ``deploy`` with the
        recorded deploy as a hint."""
        same_content = olds.bundle_sha256 == inputs.bundle_sha256
        if same_content and olds.status == "complete":
            kept = still_served(ctx, olds)
            if kept is not None:
                settings = kept.with_inputs(inputs, exclude=frozenset({"bundle_sha256"}))
                return verify_unchanged(ctx, olds, settings)
        recorded = (Hint(olds.deploy_id, "the stack state"),) if olds.deploy_id else ()
        hints, others = (recorded, ()) if same_content else ((), recorded)
        state = self.deploy(ctx, inputs, rollback=olds.rollback_version, hints=hints, others=others)
        self._say_version_diff(ctx, state.app_id, olds.version, state.version)
        return state

    def _say_version_diff(
        self, ctx: Context, app_id: str, old: int | None, new: int | None
    ) -> None:
        """The service's own diff of the version replaced and the new one, in one line."""
        if old is None or new is None or old == new:
            return
        try:
            found = ctx.api.diff_versions(app_id, old, new)
        except MixpeekError as exc:
            ctx.say(
                f"version {old} to {new}: the service's diff cannot be read ({first_line(exc)})"
            )
            return
        counts = {k: 0 for k in ("modified", "added", "removed", "unchanged")}
        counts |= {k: v for k, v in (found.summary or {}).items() if k in counts}
        marks = {"modified": "", "added": "+", "removed": "-"}
        names = [
            f"{marks[f.status]}{manifests.shown(f.path)}" for f in found.files if f.status in marks
        ]
        shown = ", ".join(names[: manifests.NAMES_SHOWN])
        more = len(names) - manifests.NAMES_SHOWN
        said = ", ".join(f"{v} {k}" for k, v in counts.items())
        tail = (f": {shown}" if shown else "") + (f", and {more} more" if more > 0 else "")
        ctx.say(f"version {old} to {new}, as the service diffs them: {said}{tail}")


def upload(
    api: MixpeekClient, say: Callable[[str], None], app_id: str, body: shipments.Body
) -> str:
    """PUT the zip ``body`` streams through a fresh presigned URL; its storage key. The exact
    ``Content-Length`` is known before the first byte; ``Content-MD5`` is not sent, since it
    would need the whole zip first (it is optional for a presigned PUT; docs/api-fidelity.md)."""
    size = body.shipment.size
    meter = Meter(say, "uploading", size, len(body.shipment.files))

    def put(slot: Any) -> object:
        return api.put_object(
            slot.upload_url,
            MeteredReader(body, meter),
            size=body.shipment.size,
            content_type="application/zip",
        )

    slot, _ = upload_fresh(lambda: api.get_upload_url(app_id, BUNDLE_NAME), put)
    meter.finish(body.shipment.size)
    key: str = slot.bundle_s3_key
    return key
