"""AppDeploy: a build folder or .zip turned into a live Mixpeek App deploy, waited for.

Create and update package the bundle deterministically, upload it through a presigned URL,
trigger the deploy, follow its log stream and return once the service reports a terminal
status. The diff is by content digest, so a rebuild of identical files is no change. A create
that timed out or lost its response is adopted by the next run instead of deploying twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    UpdateResult,
)
from pydantic import Field

from .. import bundle as bundles
from .. import gitinfo, journal
from ..client import MixpeekClient
from ..errors import (
    ApiConnectionError,
    BundleError,
    DeployFailedError,
    DeployTimeoutError,
    MixpeekError,
    NotFoundError,
    ResponseValidationError,
    StorageError,
)
from ..logs import LogFollower
from ..models import (
    DEPLOY_TERMINAL,
    AppResponse,
    DeployRequest,
    DeployStatusResponse,
    Environment,
)
from ..waiting import Poller, WaitTimeout
from ._common import (
    Inputs,
    as_int,
    changed_keys,
    echo,
    is_unknown,
    named_errors,
    normalized,
    resource_props,
    validate,
)
from ._environment import (
    EnvironmentProvider,
    environment_url,
    served_version,
    serving_tagged,
    version_for,
)

DEFAULT_MESSAGE: Final = "Deployed with mixpeek-pulumi"
MARKER_PREFIX: Final = "mixpeek-pulumi:"
UPLOAD_URL_ATTEMPTS: Final = 3
RELAXED_POLL: Final = 10.0


class AppDeployInputs(Inputs):
    """The inputs of AppDeploy, validated in ``check``."""

    app_id: str = Field(min_length=1)
    """The app to deploy to. Changing it replaces the resource."""
    bundle: str = Field(min_length=1)
    """A build folder or a .zip. Only its content matters: a new digest updates (a new deploy)."""
    environment: Environment = "production"
    """``staging`` or ``production``. Changing it replaces the resource."""
    message: str | None = None
    """The deploy message; derived from git when unset. A change alone starts no deploy."""
    git_commit_sha: str | None = None
    git_commit_message: str | None = None
    git_author: str | None = None
    exclude: list[str] = Field(default_factory=list)
    """Extra glob patterns to leave out; ``!pattern`` re-includes a default exclusion."""
    include_source_files: bool = False
    """Also send text files as ``source_files`` for the server's version diffs."""
    timeout_seconds: float = Field(default=1800, gt=0)
    poll_interval_seconds: float = Field(default=2, gt=0)
    require_smoke_test: bool = True
    """A complete deploy whose smoke test failed counts as a failure (the previous version is
    restored)."""
    on_delete: Literal["retain", "rollback"] = "retain"
    """``retain`` leaves the deploy live; ``rollback`` restores the version served before."""
    bundle_sha256: str | None = None
    """Computed by ``check``: the content digest the diff compares."""


REPLACE_KEYS: Final = ("app_id", "environment", "base_url")
SETTING_KEYS: Final = (
    "message",
    "git_commit_sha",
    "git_commit_message",
    "git_author",
    "exclude",
    "include_source_files",
    "timeout_seconds",
    "poll_interval_seconds",
    "require_smoke_test",
    "on_delete",
    "resource_name",
)
OUTPUT_KEYS: Final = (
    "deploy_id",
    "version",
    "status",
    "bundle_s3_key",
    "bundle_sha256",
    "bundle_size",
    "file_count",
    "url",
    "smoke_test",
    "queued_at",
    "live",
    "deploy_message",
    "previous_version",
)


def marker(environment: str, digest: str) -> str:
    """The tag a deploy message carries so a later run can recognise its own deploy."""
    return f"[{MARKER_PREFIX}{environment}:{digest[:32]}]"


@dataclass
class _Run:
    """One deploy attempt's context, for messages."""

    name: str
    inputs: AppDeployInputs

    @property
    def who(self) -> str:
        return f"AppDeploy '{self.name}'"


class AppDeployProvider(EnvironmentProvider):
    """Creates, updates, refreshes and deletes AppDeploy resources."""

    kind = "AppDeploy"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = validate(AppDeployInputs, news)
        checked = dict(news)
        checked.pop("bundle_sha256", None)
        if inputs is not None and not is_unknown(news.get("bundle")):
            try:
                files = bundles.collect(Path(inputs.bundle), bundles.Excludes(inputs.exclude))
                if not files:
                    raise BundleError(inputs.bundle, "no files are left after the exclusions")
                if bundles.entry_prefix(files) is None:
                    raise BundleError(
                        inputs.bundle,
                        "it has no index.html at its root or inside a single top-level folder, "
                        "which the Mixpeek build requires",
                    )
                checked["bundle_sha256"] = bundles.digest(files).sha256
            except BundleError as exc:
                failures.append(CheckFailure("bundle", str(exc)))
            except OSError as exc:
                failures.append(CheckFailure("bundle", f"The bundle cannot be read: {exc}."))
        return CheckResult(checked, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(AppDeployInputs, olds, news, REPLACE_KEYS)
        settings = changed_keys(AppDeployInputs, olds, news, SETTING_KEYS)
        content = is_unknown(news.get("bundle")) or news.get("bundle_sha256") != olds.get(
            "bundle_sha256"
        )
        drifted = olds.get("live") is False
        return DiffResult(
            changes=bool(replaces or settings or content or drifted),
            replaces=replaces,
            delete_before_replace=False,
        )

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = AppDeployInputs.model_validate(normalized(AppDeployInputs, props))
        outs = self._deploy(_Run(inputs.resource_name, inputs), previous=None, first=True)
        return CreateResult(f"{inputs.app_id}/{inputs.environment}", outs)

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = AppDeployInputs.model_validate(normalized(AppDeployInputs, news))
        run = _Run(inputs.resource_name, inputs)
        same_content = olds.get("bundle_sha256") == news.get("bundle_sha256")
        if same_content and olds.get("live") is not False:
            # Only settings changed: record them, deploy nothing.
            kept = {k: olds.get(k) for k in OUTPUT_KEYS}
            return UpdateResult({**_inputs_out(inputs), **kept})
        previous = as_int(olds.get("previous_version"))
        if same_content and as_int(olds.get("version")) is not None:
            restored = self._restore_declared(run, olds)
            if restored is not None:
                return UpdateResult(restored)
        return UpdateResult(self._deploy(run, previous=previous, first=False))

    # ------------------------------------------------------------------------------ deploy

    def _deploy(self, run: _Run, *, previous: int | None, first: bool) -> dict[str, Any]:
        inputs = run.inputs
        say = echo(self.kind, run.name)
        files = bundles.collect(Path(inputs.bundle), bundles.Excludes(inputs.exclude))
        archive = bundles.write_archive(files)
        try:
            digest = archive.digest.sha256
            tag = marker(inputs.environment, digest)
            with self.client(inputs.base_url, run.name) as api:
                app = api.get_app(inputs.app_id)
                served_before = served_version(api, app, inputs.environment)
                if first:
                    previous = served_before
                key = (api.base_url, inputs.app_id, inputs.environment, digest)
                deploy_id = self._adoptable(api, app, run, key, tag)
                s3_key: str | None = None
                if deploy_id is None:
                    s3_key = self._upload(api, inputs.app_id, archive)
                    request = self._request(inputs, files, s3_key, tag)
                    try:
                        deploy_id = api.deploy(inputs.app_id, request).deploy_id
                    except (ApiConnectionError, ResponseValidationError) as exc:
                        if isinstance(exc, ApiConnectionError) and not exc.sent:
                            raise
                        deploy_id = self._recover(api, run, tag, exc)
                    journal.record(key, deploy_id)
                    say(f"deploy {deploy_id} queued for {inputs.environment}")
                final, tail = self._wait(api, run, deploy_id)
                if final.known_status == "failed":
                    journal.forget(key)
                    raise self._failed(run, final, tail)
                app = api.get_app(inputs.app_id)
                smoke = final.smoke_test
                if inputs.require_smoke_test and smoke is not None and not smoke.passed:
                    journal.forget(key)
                    raise self._smoke_failed(api, run, final, tail, served_before)
                journal.forget(key)
                version = version_for(api, app, inputs.environment, deploy_id, tag)
                return {
                    **_inputs_out(inputs),
                    "bundle_sha256": digest,
                    "deploy_id": deploy_id,
                    "version": version,
                    "status": final.status,
                    "bundle_s3_key": final.bundle_s3_key or s3_key,
                    "bundle_size": archive.size,
                    "file_count": archive.digest.file_count,
                    "url": environment_url(app, inputs.environment),
                    "smoke_test": smoke.model_dump(mode="json") if smoke else None,
                    "queued_at": final.queued_at,
                    "live": app.environment(inputs.environment).deploy_id == deploy_id,
                    "deploy_message": final.message,
                    "previous_version": previous,
                }
        finally:
            archive.path.unlink(missing_ok=True)

    def _request(
        self, inputs: AppDeployInputs, files: list[bundles.SourceFile], s3_key: str, tag: str
    ) -> DeployRequest:
        git = gitinfo.detect(Path(inputs.bundle))
        sha = inputs.git_commit_sha or git.sha
        subject = inputs.git_commit_message or git.subject
        base = inputs.message or (f"{subject} ({sha[:7]})" if subject and sha else DEFAULT_MESSAGE)
        return DeployRequest(
            message=f"{base} {tag}",
            environment=inputs.environment,
            source="cli_upload",
            bundle_s3_key=s3_key,
            source_files=bundles.source_texts(files) if inputs.include_source_files else None,
            git_commit_sha=sha,
            git_commit_message=subject,
            git_author=inputs.git_author or git.author,
        )

    def _upload(self, api: MixpeekClient, app_id: str, archive: bundles.Archive) -> str:
        last: StorageError | None = None
        for _ in range(UPLOAD_URL_ATTEMPTS):
            slot = api.get_upload_url(app_id, "bundle.zip")
            try:
                api.put_object(
                    slot.upload_url,
                    archive.path,
                    content_type="application/zip",
                    content_md5=archive.md5_base64,
                )
            except StorageError as exc:
                if not exc.expired:
                    raise
                last = exc  # a URL that expired before the PUT: ask for a fresh one
                continue
            return slot.bundle_s3_key
        assert last is not None
        raise last

    def _adoptable(
        self, api: MixpeekClient, app: AppResponse, run: _Run, key: tuple[str, ...], tag: str
    ) -> str | None:
        """A deploy of this very bundle to this environment made by an earlier, failed run."""
        say = echo(self.kind, run.name)
        recorded = journal.lookup(key)
        if recorded is not None:
            try:
                status = api.get_deploy(app.app_id, recorded)
            except NotFoundError:
                status = None
            if status is not None and status.known_status != "failed":
                say(
                    f"re-attaching to deploy {recorded}, started by an earlier run with this bundle"
                )
                return recorded
            journal.forget(key)
        served = serving_tagged(api, app, run.inputs.environment, tag)
        if served is None:
            return None
        smoke = api.get_deploy(app.app_id, served).smoke_test
        if run.inputs.require_smoke_test and smoke is not None and not smoke.passed:
            return None  # the live copy failed its smoke test: build it again
        say(f"adopting deploy {served}: it already serves this bundle")
        return served

    def _recover(
        self,
        api: MixpeekClient,
        run: _Run,
        tag: str,
        lost: ApiConnectionError | ResponseValidationError,
    ) -> str:
        """The deploy request may have been stored though its answer was lost: wait for it."""
        inputs = run.inputs
        first = str(lost).splitlines()[0].rstrip(".")
        echo(self.kind, run.name)(
            f"the answer to the deploy request was lost ({first}); waiting for the deploy to show"
        )
        poller = Poller(
            fetch=lambda: serving_tagged(api, api.get_app(inputs.app_id), inputs.environment, tag),
            is_terminal=lambda found: found is not None,
            timeout=inputs.timeout_seconds,
            interval=inputs.poll_interval_seconds,
        )
        try:
            found = poller.run()
        except WaitTimeout:
            raise DeployTimeoutError(
                f"{run.who}: the deploy request to {inputs.environment} of app {inputs.app_id} "
                f"lost its answer ({first}) and no deploy of this bundle went live within "
                f"timeout_seconds={inputs.timeout_seconds:g}",
                resource=run.name,
                deploy_id="unknown",
                status="unknown",
                reason=first,
            ) from None
        assert found is not None
        return found

    def _wait(
        self, api: MixpeekClient, run: _Run, deploy_id: str
    ) -> tuple[DeployStatusResponse, list[str]]:
        inputs = run.inputs
        wake = threading.Event()
        follower = LogFollower(
            api, inputs.app_id, deploy_id, sink=echo(self.kind, run.name), wake=wake
        )
        follower.start()
        poller = Poller(
            fetch=lambda: api.get_deploy(inputs.app_id, deploy_id),
            is_terminal=lambda s: s.known_status in DEPLOY_TERMINAL,
            timeout=inputs.timeout_seconds,
            interval=inputs.poll_interval_seconds,
            wake=wake,
            on_problem=echo(self.kind, run.name),
            # The stream's end wakes the loop, so while it runs a slow poll only confirms.
            max_interval=max(RELAXED_POLL, inputs.poll_interval_seconds),
            relaxed=follower.is_alive,
        )
        try:
            final = poller.run()
            # Status can turn terminal a moment before the stream's last lines arrive.
            follower.finished.wait(timeout=0.5)
        except WaitTimeout as exc:
            last = exc.last.status if exc.last is not None else "unknown"
            raise DeployTimeoutError(
                f"{run.who}: deploy {deploy_id} to {inputs.environment} of app {inputs.app_id} "
                f"did not finish within timeout_seconds={inputs.timeout_seconds:g} (last status "
                f"{last}); the next `pulumi up` re-attaches to it instead of deploying again",
                resource=run.name,
                deploy_id=deploy_id,
                status=last,
                reason="timeout",
                log_tail=follower.lines(),
            ) from None
        finally:
            follower.stop()
        if follower.finished.is_set():
            follower.join(timeout=1)  # the last lines are in; the tail is complete
        return final, follower.lines()

    def _failed(self, run: _Run, final: DeployStatusResponse, tail: list[str]) -> DeployFailedError:
        reason = final.error or "the service gave no reason"
        return DeployFailedError(
            f"{run.who}: deploy {final.deploy_id} to {run.inputs.environment} of app "
            f"{run.inputs.app_id} ended with status {final.status}: {reason}",
            resource=run.name,
            deploy_id=final.deploy_id,
            status=final.status,
            reason=reason,
            log_tail=tail,
        )

    def _smoke_failed(
        self,
        api: MixpeekClient,
        run: _Run,
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
                api.restore_version(run.inputs.app_id, served_before, env)
                outcome = f"{env} was restored to version {served_before}"
            except MixpeekError as exc:
                outcome = (
                    f"restoring version {served_before} failed too ({str(exc).splitlines()[0]})"
                )
        return DeployFailedError(
            f"{run.who}: deploy {final.deploy_id} to {env} of app {run.inputs.app_id} completed "
            f"but its smoke test failed ({errors}); {outcome}",
            resource=run.name,
            deploy_id=final.deploy_id,
            status="smoke_test_failed",
            reason=errors,
            log_tail=tail,
        )

    def _restore_declared(self, run: _Run, olds: dict[str, Any]) -> dict[str, Any] | None:
        """Someone repointed the environment by hand: put the declared version back, instantly."""
        inputs = run.inputs
        with self.client(inputs.base_url, run.name) as api:
            try:
                restored = api.restore_version(
                    inputs.app_id, int(olds["version"]), inputs.environment
                )
            except NotFoundError:
                return None
            app = api.get_app(inputs.app_id)
        echo(self.kind, run.name)(f"restored version {restored.version} to {inputs.environment}")
        return {
            **{k: olds.get(k) for k in OUTPUT_KEYS},
            **_inputs_out(inputs),
            "bundle_sha256": olds.get("bundle_sha256"),
            "deploy_id": restored.deploy_id,
            "live": app.environment(inputs.environment).deploy_id == restored.deploy_id,
            "url": environment_url(app, inputs.environment),
        }


def _inputs_out(inputs: AppDeployInputs) -> dict[str, Any]:
    return inputs.model_dump(mode="json", exclude={"bundle_sha256"})


# ---------------------------------------------------------------------------------- public


@dataclass(frozen=True, kw_only=True)
class AppDeployArgs:
    """The inputs of an AppDeploy; see ``AppDeployInputs`` for what each one does."""

    app_id: pulumi.Input[str]
    bundle: pulumi.Input[str]
    environment: pulumi.Input[str] | None = None
    message: pulumi.Input[str] | None = None
    git_commit_sha: pulumi.Input[str] | None = None
    git_commit_message: pulumi.Input[str] | None = None
    git_author: pulumi.Input[str] | None = None
    exclude: pulumi.Input[list[str]] | None = None
    include_source_files: pulumi.Input[bool] | None = None
    timeout_seconds: pulumi.Input[float] | None = None
    poll_interval_seconds: pulumi.Input[float] | None = None
    require_smoke_test: pulumi.Input[bool] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


class AppDeploy(Resource, module="mixpeek", name="AppDeploy"):
    """A Mixpeek App deploy of a build folder or .zip, live once ``pulumi up`` returns."""

    app_id: pulumi.Output[str]
    environment: pulumi.Output[str]
    deploy_id: pulumi.Output[str]
    version: pulumi.Output[int]
    status: pulumi.Output[str]
    bundle_s3_key: pulumi.Output[str]
    bundle_sha256: pulumi.Output[str]
    bundle_size: pulumi.Output[int]
    file_count: pulumi.Output[int]
    url: pulumi.Output[str]
    smoke_test: pulumi.Output[dict[str, Any]]
    queued_at: pulumi.Output[str]
    live: pulumi.Output[bool]
    previous_version: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        args: AppDeployArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or AppDeployArgs(**kwargs)
        props = resource_props(args, OUTPUT_KEYS, resource_name, paths=("bundle",))
        super().__init__(AppDeployProvider(), resource_name, props, opts)
