"""PluginDeployment: a plugin source folder uploaded, validated and deployed until it serves.

Plugin versions are immutable on the service, so new code under the same version is refused in
``check`` and a version bump replaces the resource. The engine creates the replacement first,
and create returns only once it is DEPLOYED, so the old version is undeployed only after the new
route serves.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final, Literal

import httpx
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)
from pydantic import Field

from .. import bundle as bundles
from ..client import MixpeekClient
from ..errors import (
    ApiStatusError,
    BadRequestError,
    BundleError,
    ConfigError,
    ConflictError,
    DeployFailedError,
    DeployTimeoutError,
    MethodNotAllowedError,
    NotFoundError,
    StorageError,
)
from ..models import (
    ConfirmPluginUploadRequest,
    CreatePluginUploadRequest,
    DeploymentType,
    PluginStatusResponse,
)
from ..plugin_scan import check_plugin
from ..waiting import Poller, WaitTimeout
from ._common import (
    Inputs,
    MixpeekProvider,
    changed_keys,
    echo,
    is_unknown,
    named_errors,
    normalized,
    resource_props,
    validate,
)

PLUGIN_EXCLUDES: Final = ("__pycache__/", "*.pyc", ".pytest_cache/", ".venv/", "*.egg-info/")
MAX_POLL_INTERVAL: Final = 15.0


class PluginDeploymentInputs(Inputs):
    namespace_id: str = Field(min_length=1)
    """The namespace. Changing it replaces the resource."""
    name: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{2,63}$")
    """A letter, then 2 to 63 letters, digits or underscores. Changing it replaces."""
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    """``X.Y.Z``. Versions are immutable: new code needs a new version, which replaces."""
    source: str = Field(min_length=1)
    """A plugin folder or .zip with manifest.py and pipeline.py."""
    description: str | None = Field(default=None, max_length=500)
    deployment_type: DeploymentType = "realtime"
    """``realtime`` or ``batch_only``. Changing it updates (a redeploy)."""
    timeout_seconds: float = Field(default=1800, gt=0)
    poll_interval_seconds: float = Field(default=5, gt=0)
    on_delete: Literal["undeploy", "delete", "retain"] = "undeploy"
    code_sha256: str | None = None
    """Computed by ``check``: the digest of the plugin's files."""


REPLACE_KEYS: Final = ("namespace_id", "name", "version", "base_url")
SETTING_KEYS: Final = (
    "description",
    "timeout_seconds",
    "poll_interval_seconds",
    "on_delete",
    "resource_name",
)
OUTPUT_KEYS: Final = (
    "plugin_id",
    "route_prefix",
    "feature_uri",
    "status",
    "deployed",
    "realtime_enabled",
    "validation_status",
    "code_sha256",
    "deployed_at",
)


def plugin_id_for(name: str, version: str) -> str:
    """The documented id scheme: ``{name}_{version with . as _}``."""
    return f"{name}_{version.replace('.', '_')}"


@dataclass
class _Run:
    name: str
    inputs: PluginDeploymentInputs

    @property
    def who(self) -> str:
        return f"PluginDeployment '{self.name}'"

    @property
    def label(self) -> str:
        return f"plugin {self.inputs.name} {self.inputs.version}"


class PluginDeploymentProvider(MixpeekProvider):
    """Creates, updates, refreshes and deletes PluginDeployment resources."""

    kind = "PluginDeployment"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = validate(PluginDeploymentInputs, news)
        checked = dict(news)
        checked.pop("code_sha256", None)
        if inputs is None or is_unknown(news.get("source")):
            return CheckResult(checked, failures)
        try:
            files = _collect(inputs.source)
        except BundleError as exc:
            return CheckResult(checked, [*failures, CheckFailure("source", str(exc))])
        problems = check_plugin(files)
        if problems:
            listed = "; ".join(problems)
            failures.append(
                CheckFailure(
                    "source",
                    f"The plugin source at {inputs.source} would fail the service's validation: "
                    f"{listed}.",
                )
            )
            return CheckResult(checked, failures)
        digest = bundles.digest(files).sha256
        checked["code_sha256"] = digest
        same_version = all(olds.get(k) == news.get(k) for k in ("namespace_id", "name", "version"))
        if same_version and olds.get("code_sha256") not in (None, digest):
            failures.append(
                CheckFailure(
                    "source",
                    f"Plugin {inputs.name} {inputs.version} already exists with other code and "
                    "plugin versions are immutable, so bump version to deploy the new code.",
                )
            )
        return CheckResult(checked, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(PluginDeploymentInputs, olds, news, REPLACE_KEYS)
        settings = changed_keys(PluginDeploymentInputs, olds, news, SETTING_KEYS)
        redeploy = changed_keys(PluginDeploymentInputs, olds, news, ("deployment_type",))
        drifted = olds.get("deployed") is False
        return DiffResult(
            changes=bool(replaces or settings or redeploy or drifted),
            replaces=replaces,
            delete_before_replace=False,
        )

    @named_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = PluginDeploymentInputs.model_validate(normalized(PluginDeploymentInputs, props))
        run = _Run(inputs.resource_name, inputs)
        with self.client(inputs.base_url, run.name) as api:
            plugin_id, digest = self._upload(api, run)
            status = self._deploy_and_wait(api, run, plugin_id)
        return CreateResult(f"{inputs.namespace_id}/{plugin_id}", _outputs(inputs, status, digest))

    @named_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = PluginDeploymentInputs.model_validate(normalized(PluginDeploymentInputs, news))
        run = _Run(inputs.resource_name, inputs)
        plugin_id = str(olds.get("plugin_id") or plugin_id_for(inputs.name, inputs.version))
        redeploy = (
            olds.get("deployment_type") != inputs.deployment_type or olds.get("deployed") is False
        )
        digest = str(olds.get("code_sha256") or "")
        if not redeploy:
            kept = {k: olds.get(k) for k in OUTPUT_KEYS}
            return UpdateResult({**inputs.model_dump(mode="json"), **kept})
        with self.client(inputs.base_url, run.name) as api:
            try:
                status = self._deploy_and_wait(api, run, plugin_id)
            except NotFoundError:
                # Deleted out of band: upload it again, then deploy.
                plugin_id, digest = self._upload(api, run)
                status = self._deploy_and_wait(api, run, plugin_id)
        return UpdateResult(_outputs(inputs, status, digest))

    @named_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        name = str(props.get("resource_name") or id_)
        with self.client(props.get("base_url"), name) as api:
            try:
                status = api.get_plugin_status(str(props["namespace_id"]), str(props["plugin_id"]))
            except NotFoundError:
                return ReadResult(None, {})
        deployed = _deployed(status, str(props.get("deployment_type")))
        return ReadResult(
            id_,
            {
                **props,
                "status": status.status,
                "deployed": deployed,
                "realtime_enabled": status.realtime_enabled,
                "route_prefix": status.route_prefix,
                "deployed_at": status.deployed_at,
            },
        )

    @named_errors
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        policy = props.get("on_delete") or "undeploy"
        if policy == "retain":
            return
        name = str(props.get("resource_name") or id_)
        namespace, plugin_id = str(props["namespace_id"]), str(props["plugin_id"])
        say = echo(self.kind, name)
        timeout = float(props.get("timeout_seconds") or 1800)
        with self.client(props.get("base_url"), name) as api:
            try:
                api.undeploy_plugin(namespace, plugin_id)
                Poller(
                    fetch=lambda: api.get_plugin_status(namespace, plugin_id),
                    is_terminal=lambda s: not s.deployed and s.known_status != "DEPLOYED",
                    timeout=timeout,
                    interval=1.0,
                    max_interval=MAX_POLL_INTERVAL,
                ).run()
                say(f"undeployed {plugin_id}")
                if policy == "delete":
                    api.delete_plugin(namespace, plugin_id)
                    say(f"deleted {plugin_id} and its archive")
            except NotFoundError:
                return
            except WaitTimeout:
                raise DeployTimeoutError(
                    f"PluginDeployment '{name}': plugin {plugin_id} was still deployed "
                    f"{timeout:g}s after the undeploy request",
                    resource=name,
                    deploy_id=plugin_id,
                    status="DEPLOYED",
                    reason="undeploy timeout",
                ) from None

    # --------------------------------------------------------------------------- helpers

    def _upload(self, api: MixpeekClient, run: _Run) -> tuple[str, str]:
        """Upload and confirm, or adopt an existing plugin with the same code."""
        inputs = run.inputs
        files = _collect(inputs.source)
        archive = bundles.write_archive(files)
        try:
            request = CreatePluginUploadRequest(
                name=inputs.name,
                version=inputs.version,
                description=inputs.description,
                file_size_bytes=archive.size,
            )
            for attempt in range(2):
                try:
                    slot = api.create_plugin_upload(inputs.namespace_id, request)
                except ConflictError as exc:
                    return self._adopt(api, run, exc, archive), archive.digest.sha256
                except (NotFoundError, MethodNotAllowedError) as exc:
                    raise _unsupported(exc, api.base_url, inputs.namespace_id) from None
                try:
                    stored = api.put_object(
                        slot.presigned_url, archive.path, content_type="application/zip"
                    )
                except StorageError as exc:
                    if exc.expired and attempt == 0:
                        continue
                    raise
                break
            try:
                confirmed = api.confirm_plugin_upload(
                    inputs.namespace_id,
                    slot.upload_id,
                    ConfirmPluginUploadRequest(etag=stored.etag, file_size_bytes=archive.size),
                )
            except BadRequestError as exc:
                raise _validation_failed(run, exc) from None
            if confirmed.validation_status == "failed" or not confirmed.plugin_id:
                errors = "; ".join(confirmed.validation_errors or []) or confirmed.message or ""
                raise DeployFailedError(
                    f"{run.who}: {run.label} failed validation: {errors or 'no reason given'}",
                    resource=run.name,
                    deploy_id=confirmed.plugin_id or slot.upload_id,
                    status="validation_failed",
                    reason=errors,
                )
            return confirmed.plugin_id, archive.digest.sha256
        finally:
            archive.path.unlink(missing_ok=True)

    def _adopt(
        self, api: MixpeekClient, run: _Run, conflict: ConflictError, archive: bundles.Archive
    ) -> str:
        inputs = run.inputs
        details_id = conflict.details.get("plugin_id")
        plugin_id = str(details_id) if details_id else plugin_id_for(inputs.name, inputs.version)
        detail = api.get_plugin(inputs.namespace_id, plugin_id, with_download_url=True)
        same = detail.plugin.code_hash == archive.sha256
        if not same and detail.presigned_download_url:
            same = _remote_digest(detail.presigned_download_url) == archive.digest.sha256
        if not same:
            raise DeployFailedError(
                f"{run.who}: {run.label} already exists in namespace {inputs.namespace_id} as "
                f"{plugin_id} with different code; plugin versions are immutable, so bump "
                "version to deploy this code",
                resource=run.name,
                deploy_id=plugin_id,
                status="conflict",
                reason="different code under the same version",
            )
        echo(self.kind, run.name)(f"adopting existing {plugin_id}: same name, version and code")
        return plugin_id

    def _deploy_and_wait(
        self, api: MixpeekClient, run: _Run, plugin_id: str
    ) -> PluginStatusResponse:
        inputs = run.inputs
        say = echo(self.kind, run.name)
        current = api.get_plugin_status(inputs.namespace_id, plugin_id)
        if _is_serving(current, inputs.deployment_type):
            return current
        response = api.deploy_plugin(inputs.namespace_id, plugin_id, inputs.deployment_type)
        say(f"deploy of {plugin_id} requested ({inputs.deployment_type}): {response.status}")
        batch = inputs.deployment_type == "batch_only"
        poller = Poller(
            fetch=lambda: api.get_plugin_status(inputs.namespace_id, plugin_id),
            is_terminal=lambda s: s.known_status in ("DEPLOYED", "FAILED", "NOT_DEPLOYED"),
            timeout=inputs.timeout_seconds,
            interval=inputs.poll_interval_seconds,
            max_interval=max(MAX_POLL_INTERVAL, inputs.poll_interval_seconds),
            on_status=_on_change(lambda s: say(f"{plugin_id}: {s.status}")),
            on_problem=say,
        )
        try:
            final = poller.run()
        except WaitTimeout as exc:
            last = exc.last.status if exc.last is not None else "unknown"
            raise DeployTimeoutError(
                f"{run.who}: plugin {plugin_id} in namespace {inputs.namespace_id} was not "
                f"deployed within timeout_seconds={inputs.timeout_seconds:g} (last status {last})",
                resource=run.name,
                deploy_id=plugin_id,
                status=last,
                reason="timeout",
            ) from None
        status = final.known_status
        if status == "DEPLOYED" or (status == "NOT_DEPLOYED" and batch):
            return final
        reason = final.error or final.message or "the service gave no reason"
        if status == "NOT_DEPLOYED":
            reason = f"it reports NOT_DEPLOYED after a realtime deploy request ({reason})"
        raise DeployFailedError(
            f"{run.who}: plugin {plugin_id} in namespace {inputs.namespace_id} ended with status "
            f"{final.status}: {reason}",
            resource=run.name,
            deploy_id=plugin_id,
            status=final.status,
            reason=reason,
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


def _deployed(status: PluginStatusResponse, deployment_type: str) -> bool:
    """Batch-only plugins report NOT_DEPLOYED with ``deployed`` true; realtime ones DEPLOYED."""
    if deployment_type == "batch_only":
        return bool(status.deployed)
    return status.known_status == "DEPLOYED"


def _is_serving(status: PluginStatusResponse, deployment_type: str) -> bool:
    if deployment_type == "batch_only":
        return _deployed(status, deployment_type) and status.known_status == "NOT_DEPLOYED"
    return _deployed(status, deployment_type) and status.realtime_enabled


def _collect(source: str) -> list[bundles.SourceFile]:
    return bundles.collect(Path(source), bundles.Excludes(PLUGIN_EXCLUDES))


def _remote_digest(url: str) -> str | None:
    """The content digest of an archive behind a presigned GET (no API key is sent)."""
    with TemporaryDirectory(prefix="mixpeek-plugin-") as tmp:
        target = Path(tmp) / "remote.zip"
        try:
            with httpx.stream("GET", url, timeout=60) as response:
                if response.is_error:
                    return None
                with target.open("wb") as handle:
                    for block in response.iter_bytes():
                        handle.write(block)
            return bundles.digest(_collect(str(target))).sha256
        except (httpx.HTTPError, BundleError, zipfile.BadZipFile):
            return None


def _validation_failed(run: _Run, exc: BadRequestError) -> DeployFailedError:
    listed = exc.details.get("validation_errors") or []
    problems = [str(p) for p in listed] if isinstance(listed, list) else []
    reason = "; ".join(problems) or exc.server_message
    return DeployFailedError(
        f"{run.who}: {run.label} was refused by the service's validation: {reason}",
        resource=run.name,
        deploy_id=str(exc.details.get("plugin_id") or run.label),
        status="validation_failed",
        reason=reason,
    )


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


def _outputs(
    inputs: PluginDeploymentInputs, status: PluginStatusResponse, digest: str
) -> dict[str, Any]:
    return {
        **inputs.model_dump(mode="json"),
        "plugin_id": status.plugin_id,
        "route_prefix": status.route_prefix,
        "feature_uri": status.feature_uri,
        "status": status.status,
        "deployed": _deployed(status, inputs.deployment_type),
        "realtime_enabled": status.realtime_enabled,
        "validation_status": "passed",
        "code_sha256": digest,
        "deployed_at": status.deployed_at,
    }


# ---------------------------------------------------------------------------------- public


@dataclass(frozen=True, kw_only=True)
class PluginDeploymentArgs:
    namespace_id: pulumi.Input[str]
    name: pulumi.Input[str]
    version: pulumi.Input[str]
    source: pulumi.Input[str]
    description: pulumi.Input[str] | None = None
    deployment_type: pulumi.Input[str] | None = None
    timeout_seconds: pulumi.Input[float] | None = None
    poll_interval_seconds: pulumi.Input[float] | None = None
    on_delete: pulumi.Input[str] | None = None
    base_url: pulumi.Input[str] | None = None


class PluginDeployment(Resource, module="mixpeek", name="PluginDeployment"):
    """A Mixpeek plugin, validated and deployed; serving under ``route_prefix`` once up returns."""

    plugin_id: pulumi.Output[str]
    route_prefix: pulumi.Output[str]
    feature_uri: pulumi.Output[str]
    status: pulumi.Output[str]
    deployed: pulumi.Output[bool]
    realtime_enabled: pulumi.Output[bool]
    validation_status: pulumi.Output[str]
    code_sha256: pulumi.Output[str]
    deployed_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: PluginDeploymentArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or PluginDeploymentArgs(**kwargs)
        props = resource_props(args, OUTPUT_KEYS, resource_name, paths=("source",))
        super().__init__(PluginDeploymentProvider(), resource_name, props, opts)
