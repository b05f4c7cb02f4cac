"""Plugin rollouts: check a plugin source, upload and validate it, deploy it and wait.

Plugin versions are immutable on the service, so new code under the same version is refused in
``check`` and a version bump replaces the resource. The engine creates the replacement first,
and a create returns only once it is DEPLOYED, so the old version is undeployed only after the
new route serves. An existing plugin of the same name and version is adopted when its code is
the same, compared by content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from ..api.models import (
    ConfirmPluginUploadRequest,
    CreatePluginUploadRequest,
    DeploymentType,
    PluginDeployResponse,
    PluginPresignedUrlResponse,
    PluginStatusResponse,
)
from ..errors import (
    ApiStatusError,
    BadRequestError,
    BundleError,
    ConfigError,
    ConflictError,
    DeployFailedError,
    MethodNotAllowedError,
    MixpeekError,
    NotFoundError,
    safe_name,
)
from ..files import archive as archives
from ..files import bundle as bundles
from ..files import manifest as manifests
from ..files.excludes import Excludes
from ..files.plugin_scan import check_plugin, has_realtime
from ..files.sources import PLUGIN_LIMITS, SourceFile
from ..run.context import Context
from ..run.progress import Heartbeat, Meter, MeteredReader
from ..run.waiting import Poller, await_terminal
from .base import Checked, Kind, Probe
from .diffs import Diff, Failure, diff_inputs
from .spec import PluginDeploymentInputs, PluginDeploymentState, identifier_problem
from .uploads import remote_digest, upload_fresh

PLUGIN_EXCLUDES: Final = ("__pycache__/", "*.pyc", ".pytest_cache/", ".venv/", "*.egg-info/")
MAX_POLL_INTERVAL: Final = 15.0
MAX_ARCHIVE_BYTES: Final = PLUGIN_LIMITS.max_bytes  # the API's documented limit
TERMINAL: Final = ("DEPLOYED", "FAILED", "NOT_DEPLOYED")
ROLLING: Final = ("QUEUED", "PENDING", "IN_PROGRESS")


def plugin_id_for(name: str, version: str) -> str:
    """The documented id scheme: ``{name}_{version with . as _}``."""
    return f"{name}_{version.replace('.', '_')}"


def collect(source: str) -> list[SourceFile]:
    return bundles.collect(Path(source), Excludes(PLUGIN_EXCLUDES), PLUGIN_LIMITS)


def check(
    inputs: PluginDeploymentInputs | None, unknown: set[str], olds: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Failure]]:
    """The code digest and the service's documented checks, run locally; new code under a
    version that already exists is refused, since versions are immutable."""
    if inputs is None or "source" in unknown:
        return {}, []
    try:
        files = collect(inputs.source)
        problems = check_plugin(files)
        digest = None if problems else manifests.of_files(files)[0]
    except BundleError as exc:
        return {}, [Failure("source", str(exc))]
    if problems:
        listed = "; ".join(problems)
        return {}, [
            Failure(
                "source",
                f"The plugin source at {safe_name(inputs.source)} would fail the service's "
                f"validation: {listed}.",
            )
        ]
    no_realtime = _no_realtime(inputs, files, unknown, olds, digest)
    if no_realtime is not None:
        return {}, [no_realtime]
    same_version = all(
        olds.get(k) == getattr(inputs, k) for k in ("namespace_id", "name", "version")
    )
    if same_version and olds.get("code_sha256") not in (None, digest):
        return {}, [
            Failure(
                "source",
                f"Plugin {inputs.name} {inputs.version} already exists with other code and "
                "plugin versions are immutable, so bump version to deploy the new code.",
            )
        ]
    return {"code_sha256": digest}, []


def diff(olds: PluginDeploymentState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
    """Declared inputs compared; the source by its code digest (which ``check`` guards), and a
    plugin found undeployed is a change (a redeploy)."""
    extra = ["deployed"] if olds.deployed is False else []
    found = diff_inputs(
        PluginDeploymentInputs, olds.model_dump(), news, unknown, skip=("source",), extra=extra
    )
    other_code = "source" not in unknown and news.get("code_sha256") != olds.code_sha256
    if not other_code or olds.code_files is None or not isinstance(news.get("source"), str):
        return found
    new = source_files(news["source"])
    if new is None:
        return found
    # A new version with other code: which files differ from the deployed one.
    return found.with_notes([manifests.summary("source", olds.code_files, new)])


def source_files(source: str) -> dict[str, str] | None:
    """The manifest of the plugin's source as it is now; None when it cannot be read. Plugin
    sources are small, so reading them again costs little."""
    try:
        return manifests.of_files(collect(source))[1]
    except (MixpeekError, OSError):
        return None


def _no_realtime(
    inputs: PluginDeploymentInputs,
    files: list[SourceFile],
    unknown: set[str],
    olds: Mapping[str, Any],
    digest: str | None,
) -> Failure | None:
    """A realtime deployment of a source without realtime.py, which the service deploys for
    batch processing only. Not while the deployment type is unknown (a preview), and not for
    the code a stack already has deployed realtime: what the service accepted stays."""
    if "deployment_type" in unknown or inputs.deployment_type != "realtime":
        return None
    kept = olds.get("code_sha256") == digest and olds.get("deployment_type") == "realtime"
    if kept or has_realtime(files):
        return None
    return Failure(
        "deployment_type",
        f"Plugin {inputs.name} {inputs.version} asks for a realtime deployment, but its source "
        f"at {safe_name(inputs.source)} has no realtime.py beside manifest.py, and the service "
        "deploys such a plugin for batch processing only; add realtime.py, or set "
        "deployment_type to batch_only.",
    )


def deployed(status: PluginStatusResponse, deployment_type: str) -> bool:
    """Batch-only plugins report NOT_DEPLOYED with ``deployed`` true; realtime ones DEPLOYED."""
    if deployment_type == "batch_only":
        return bool(status.deployed)
    return status.known_status == "DEPLOYED"


def serving(status: PluginStatusResponse, deployment_type: str) -> bool:
    if deployment_type == "batch_only":
        return deployed(status, deployment_type) and status.known_status == "NOT_DEPLOYED"
    return deployed(status, deployment_type) and bool(status.realtime_enabled)


class PluginDeployment(Kind[PluginDeploymentInputs, PluginDeploymentState]):
    """PluginDeployment: a custom plugin uploaded, validated and deployed; its verbs upload,
    deploy, refresh and remove the plugins of one resource."""

    name = "PluginDeployment"
    summary = (
        "A Mixpeek custom plugin uploaded, validated and deployed for realtime "
        "inference under its `routePrefix`."
    )
    path = "source"
    path_change = (
        "New code under the same `version` is refused, since plugin versions are immutable: bump "
        "`version`, which replaces the resource. A new path with the same code changes nothing."
    )
    details = (
        "`pulumi preview` already runs the service's checks of the plugin's code. A new version "
        "is deployed before the old one is undeployed, so a route always serves. Destroy "
        "undeploys (`onDelete: undeploy`), also deletes (`delete`) or leaves it (`retain`). "
        "Import with the id `<namespaceId>/<pluginId>`."
    )
    inputs = PluginDeploymentInputs
    state = PluginDeploymentState

    def computed(
        self, inputs: PluginDeploymentInputs | None, unknown: set[str], olds: Mapping[str, Any]
    ) -> Checked:
        return check(inputs, unknown, olds)

    def probe(self, props: Mapping[str, Any]) -> Probe | None:
        namespace = props.get("namespace_id")
        if not isinstance(namespace, str) or not namespace:
            return None  # plugin hosts serve no app routes: wait for the namespace
        return lambda api: api.list_plugins(namespace)

    def diff(self, olds: PluginDeploymentState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return diff(olds, news, unknown)

    def create(self, ctx: Context, inputs: PluginDeploymentInputs) -> PluginDeploymentState:
        plugin_id, digest = self._upload(ctx, inputs)
        return self._state(ctx, inputs, self._deploy(ctx, inputs, plugin_id, digest), digest)

    def update(
        self, ctx: Context, olds: PluginDeploymentState, inputs: PluginDeploymentInputs
    ) -> PluginDeploymentState:
        """A new deployment type or a plugin found undeployed is a redeploy; a plugin deleted
        behind our back is uploaded again; anything else is only recorded."""
        redeploy = (
            olds.deployment_type != inputs.deployment_type
            or olds.deployed is False
            or (olds.status or "").upper() in ROLLING
        )
        if not redeploy:
            return olds.with_inputs(inputs, exclude=frozenset({"code_sha256"}))
        plugin_id = olds.plugin_id or plugin_id_for(inputs.name, inputs.version)
        digest = olds.code_sha256 or ""
        try:
            status = self._deploy(ctx, inputs, plugin_id, digest)
        except NotFoundError:
            plugin_id, digest = self._upload(ctx, inputs)
            status = self._deploy(ctx, inputs, plugin_id, digest)
        return self._state(ctx, inputs, status, digest)

    def read(self, ctx: Context, state: PluginDeploymentState) -> PluginDeploymentState | None:
        try:
            status = ctx.api.get_plugin_status(state.namespace_id, str(state.plugin_id))
        except NotFoundError:
            return None
        return state.model_copy(
            update={
                "status": status.status,
                "deployed": deployed(status, state.deployment_type),
                "realtime_enabled": status.realtime_enabled,
                "route_prefix": status.route_prefix,
                "deployed_at": status.deployed_at,
            }
        )

    def import_(self, ctx: Context, resource_id: str) -> PluginDeploymentState | None:
        """What ``pulumi import <namespace_id>/<plugin_id>`` reads: the plugin as it is, with the
        digest of its code so an unchanged source shows no change."""
        namespace, _, plugin_id = resource_id.partition("/")
        problem = identifier_problem(namespace) or identifier_problem(plugin_id)
        if problem is not None:
            raise MixpeekError(
                f"The import id {resource_id[:200]!r} names no plugin: {problem}; use "
                "<namespace_id>/<plugin_id>."
            )
        try:
            detail = ctx.api.get_plugin(namespace, plugin_id, with_download_url=True)
            status = ctx.api.get_plugin_status(namespace, plugin_id)
        except NotFoundError:
            return None
        kind: DeploymentType = (
            "realtime" if status.realtime_enabled or status.route_prefix else "batch_only"
        )
        url = detail.presigned_download_url
        # No source: its path is the one input an import cannot know.
        return PluginDeploymentState(
            namespace_id=namespace,
            name=detail.plugin.name,
            version=detail.plugin.version,
            description=detail.plugin.description,
            deployment_type=kind,
            code_sha256=self._remote_digest(ctx, url) if url else None,
            plugin_id=plugin_id,
            route_prefix=status.route_prefix,
            feature_uri=status.feature_uri,
            status=status.status,
            deployed=deployed(status, kind),
            realtime_enabled=status.realtime_enabled,
            validation_status=detail.plugin.validation_status,
            deployed_at=status.deployed_at,
        )

    def delete(self, ctx: Context, state: PluginDeploymentState) -> None:
        """``on_delete``: undeploy and wait, or also delete the plugin, or retain it."""
        if state.on_delete == "retain":
            return
        if state.plugin_id is None:
            ctx.say("its state names no plugin, so nothing was removed at the service")
            return
        namespace, plugin_id = state.namespace_id, state.plugin_id
        try:
            ctx.api.undeploy_plugin(namespace, plugin_id)
            poller = Poller(
                fetch=lambda: ctx.api.get_plugin_status(namespace, plugin_id),
                is_terminal=lambda s: not s.deployed and s.known_status != "DEPLOYED",
                deadline=ctx.deadline,
                interval=1.0,
                max_interval=MAX_POLL_INTERVAL,
            )
            await_terminal(
                poller,
                lambda last: ctx.timed_out(
                    f"the wait for plugin {plugin_id} to be undeployed",
                    subject=plugin_id,
                    status=last.status if last is not None else "DEPLOYED",
                ),
            )
            ctx.say(f"undeployed {plugin_id}")
            if state.on_delete == "delete":
                ctx.api.delete_plugin(namespace, plugin_id)
                ctx.say(f"deleted {plugin_id} and its archive")
        except NotFoundError:
            return

    # ------------------------------------------------------------------------- upload

    def _upload(self, ctx: Context, inputs: PluginDeploymentInputs) -> tuple[str, str]:
        """Upload and confirm, or adopt an existing plugin with the same code; returns the
        plugin id and the code digest. The archive is removed as soon as it is uploaded."""
        files = collect(inputs.source)
        packing = Meter(ctx.say, "packing", sum(f.size for f in files), len(files))
        with archives.write_archive(
            files,
            max_bytes=MAX_ARCHIVE_BYTES,
            source=inputs.source,
            noun=PLUGIN_LIMITS.noun,
            progress=packing.add,
        ) as archive:
            packing.finish()
            uploading = Meter(ctx.say, "uploading", archive.size, len(files))
            digest = archive.digest.sha256
            request = CreatePluginUploadRequest(
                name=inputs.name,
                version=inputs.version,
                description=inputs.description,
                file_size_bytes=archive.size,
            )
            try:
                slot, stored = upload_fresh(
                    lambda: self._mint(ctx, inputs, request),
                    lambda s: ctx.api.put_object(
                        s.presigned_url,
                        MeteredReader(archive.file, uploading),
                        size=archive.size,
                        content_type="application/zip",
                    ),
                )
            except ConflictError as exc:
                return self._take_over(ctx, inputs, exc, digest, archive.sha256), digest
            uploading.finish(archive.size)
        confirm = ConfirmPluginUploadRequest(etag=stored.etag, file_size_bytes=archive.size)
        return self._confirm(ctx, inputs, slot, confirm), digest

    def _mint(
        self, ctx: Context, inputs: PluginDeploymentInputs, request: CreatePluginUploadRequest
    ) -> PluginPresignedUrlResponse:
        try:
            return ctx.api.create_plugin_upload(inputs.namespace_id, request)
        except (NotFoundError, MethodNotAllowedError) as exc:
            raise _unsupported(exc, ctx.api.base_url, inputs.namespace_id) from None

    def _confirm(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        slot: PluginPresignedUrlResponse,
        request: ConfirmPluginUploadRequest,
    ) -> str:
        label = f"plugin {inputs.name} {inputs.version}"
        try:
            confirmed = ctx.api.confirm_plugin_upload(inputs.namespace_id, slot.upload_id, request)
        except BadRequestError as exc:
            raise self._validation_failed(ctx, label, exc) from None
        if confirmed.validation_status == "failed" or not confirmed.plugin_id:
            errors = "; ".join(confirmed.validation_errors or []) or confirmed.message or ""
            raise ctx.failed(
                f"{label} failed validation: {errors or 'no reason given'}",
                subject=confirmed.plugin_id or slot.upload_id,
                status="validation_failed",
                reason=errors,
            )
        return confirmed.plugin_id

    def _take_over(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        conflict: ConflictError,
        digest: str,
        archive: str,
    ) -> str:
        """The same name and version exist: adopt them if the code is ours (by the archive's
        hash, else by the content of the archive the service keeps), refuse otherwise."""
        details_id = conflict.details.get("plugin_id")
        plugin_id = str(details_id) if details_id else plugin_id_for(inputs.name, inputs.version)
        detail = ctx.api.get_plugin(inputs.namespace_id, plugin_id, with_download_url=True)
        url = detail.presigned_download_url
        same = detail.plugin.code_hash == archive or bool(
            url and self._remote_digest(ctx, url) == digest
        )
        if not same:
            raise ctx.failed(
                f"plugin {inputs.name} {inputs.version} already exists in namespace "
                f"{inputs.namespace_id} as {plugin_id} with different code; plugin versions "
                "are immutable, so bump version to deploy this code",
                subject=plugin_id,
                status="conflict",
                reason="different code under the same version",
            )
        ctx.say(f"adopting existing {plugin_id}: same name, version and code")
        return plugin_id

    def _remote_digest(self, ctx: Context, url: str) -> str | None:
        return remote_digest(ctx.api, url, Excludes(PLUGIN_EXCLUDES), PLUGIN_LIMITS)

    def _validation_failed(
        self, ctx: Context, label: str, exc: BadRequestError
    ) -> DeployFailedError:
        listed = exc.details.get("validation_errors") or []
        problems = [str(p) for p in listed] if isinstance(listed, list) else []
        reason = "; ".join(problems) or exc.server_message
        return ctx.failed(
            f"{label} was refused by the service's validation: {reason}",
            subject=str(exc.details.get("plugin_id") or label),
            status="validation_failed",
            reason=reason,
        )

    # ------------------------------------------------------------------------- deploy

    def _deploy(
        self, ctx: Context, inputs: PluginDeploymentInputs, plugin_id: str, digest: str
    ) -> PluginStatusResponse:
        namespace = inputs.namespace_id
        current = ctx.api.get_plugin_status(namespace, plugin_id)
        if current.known_status in ROLLING:
            # A rollout already under way (ours, cut short by a timeout or Ctrl-C, perhaps on
            # another machine) is waited for, not requested a second time.
            ctx.say(f"re-attaching to the rollout of {plugin_id} under way ({current.status})")
            current = self._wait(ctx, inputs, plugin_id, digest)
            if current.known_status == "FAILED":
                return self._outcome(
                    ctx, inputs, plugin_id, current
                )  # raises that rollout's reason
        if serving(current, inputs.deployment_type):
            return current
        response = ctx.api.deploy_plugin(namespace, plugin_id, inputs.deployment_type)
        ctx.say(f"deploy of {plugin_id} requested ({inputs.deployment_type}): {response.status}")
        chosen = (response.deployment_type or "").lower()
        if inputs.deployment_type == "realtime" and chosen == "batch_only":
            raise self._batch_only(ctx, inputs, plugin_id, response)
        return self._outcome(ctx, inputs, plugin_id, self._wait(ctx, inputs, plugin_id, digest))

    def _batch_only(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        plugin_id: str,
        response: PluginDeployResponse,
    ) -> DeployFailedError:
        """A realtime deploy the service answered with a batch-only one (spec 0.81's
        batch_only_requires_enterprise: realtime needs a namespace on dedicated infrastructure;
        a source without realtime.py never gets here, ``check`` refuses it)."""
        reason = response.message or "the service gave no reason"
        status = response.status or "batch_only"
        return ctx.failed(
            f"plugin {plugin_id} in namespace {inputs.namespace_id} was deployed for batch "
            f"processing only, not realtime (status {status}): {reason}; realtime needs a "
            "namespace on dedicated (Enterprise) infrastructure, so use one or set "
            "deployment_type to batch_only (the plugin stays uploaded and the next up adopts "
            "it)",
            subject=plugin_id,
            status=status,
            reason=reason,
        )

    def _wait(
        self, ctx: Context, inputs: PluginDeploymentInputs, plugin_id: str, digest: str
    ) -> PluginStatusResponse:
        """The plugin's status once terminal, or a timeout naming the last one read."""
        namespace = inputs.namespace_id
        beat = Heartbeat(ctx.say, lambda: f"waiting for the rollout of {plugin_id}")
        poller = Poller(
            fetch=lambda: ctx.api.get_plugin_status(namespace, plugin_id),
            is_terminal=lambda s: s.known_status in TERMINAL,
            deadline=ctx.deadline,
            interval=inputs.poll_interval_seconds,
            max_interval=max(MAX_POLL_INTERVAL, inputs.poll_interval_seconds),
            on_status=_on_change(lambda s: beat.say(f"{plugin_id}: {s.status}")),
            on_problem=beat.say,
        )
        with beat:
            return await_terminal(
                poller,
                lambda last: ctx.timed_out(
                    f"the rollout of plugin {plugin_id} in namespace {namespace}",
                    subject=plugin_id,
                    status=last.status if last is not None else "unknown",
                    # What exists: a validated plugin whose rollout is under way.
                    partial=self._partial(ctx, inputs, plugin_id, digest, last),
                ),
            )

    def _outcome(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        plugin_id: str,
        final: PluginStatusResponse,
    ) -> PluginStatusResponse:
        """A terminal status that serves as asked, or the one-sentence failure it is."""
        status = final.known_status
        if status == "DEPLOYED" or (
            status == "NOT_DEPLOYED" and inputs.deployment_type == "batch_only"
        ):
            return final
        reason = final.error or final.message or "the service gave no reason"
        if status == "NOT_DEPLOYED":
            reason = f"it reports NOT_DEPLOYED after a realtime deploy request ({reason})"
        raise ctx.failed(
            f"plugin {plugin_id} in namespace {inputs.namespace_id} ended with status "
            f"{final.status}: {reason}",
            subject=plugin_id,
            status=final.status,
            reason=reason,
        )

    def _state(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        status: PluginStatusResponse,
        digest: str,
    ) -> PluginDeploymentState:
        return PluginDeploymentState(
            **inputs.model_dump(exclude={"code_sha256"}),
            code_files=source_files(inputs.source),
            plugin_id=status.plugin_id,
            route_prefix=status.route_prefix,
            feature_uri=status.feature_uri,
            status=status.status,
            deployed=deployed(status, inputs.deployment_type),
            realtime_enabled=status.realtime_enabled,
            validation_status="passed",
            code_sha256=digest,
            deployed_at=status.deployed_at,
        )

    def _partial(
        self,
        ctx: Context,
        inputs: PluginDeploymentInputs,
        plugin_id: str,
        digest: str,
        last: PluginStatusResponse | None,
    ) -> PluginDeploymentState:
        return PluginDeploymentState(
            **inputs.model_dump(exclude={"code_sha256"}),
            code_sha256=digest or None,
            plugin_id=plugin_id,
            status=last.status if last is not None else "unknown",
            validation_status="passed",
        )


def _on_change(
    report: Callable[[PluginStatusResponse], None],
) -> Callable[[PluginStatusResponse], None]:
    """Report a status only when it differs from the last one reported."""
    last: list[str] = []

    def maybe(status: PluginStatusResponse) -> None:
        if last != [status.status]:
            last[:] = [status.status]
            report(status)

    return maybe


def _unsupported(
    exc: ApiStatusError, base_url: str, namespace: str
) -> ConfigError | ApiStatusError:
    if exc.details.get("resource") == "namespace":
        return exc
    return ConfigError(
        f"The Mixpeek host {base_url} has no plugin API (POST {exc.path} answered HTTP "
        f"{exc.status_code}); plugins run on dedicated Mixpeek hosts, so set `mixpeek:baseUrl` "
        f"to yours (namespace {namespace})."
    )
