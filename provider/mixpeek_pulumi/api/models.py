"""Pydantic wire models of the Mixpeek App and Plugin APIs, with their status Literals.

Requests forbid undeclared keys, because the real API refuses them with 422 ``extra_forbid``;
responses ignore unknown keys, because the server adds fields without notice. Statuses are kept
as the server's string and exposed as a ``Literal`` through ``known_status`` so an unknown value
never breaks parsing (waiters keep waiting on it).
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..errors import ResponseValidationError

Environment = Literal["staging", "production"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = get_args(Environment)

DeployStatus = Literal["queued", "building", "complete", "failed"]
DEPLOY_STATUSES: Final[frozenset[str]] = frozenset(get_args(DeployStatus))
DEPLOY_TERMINAL: Final[frozenset[DeployStatus]] = frozenset({"complete", "failed"})

PluginStatus = Literal["QUEUED", "PENDING", "IN_PROGRESS", "DEPLOYED", "FAILED", "NOT_DEPLOYED"]
PLUGIN_STATUSES: Final[frozenset[str]] = frozenset(get_args(PluginStatus))

DeploymentType = Literal["realtime", "batch_only"]


def deploy_status(value: str) -> DeployStatus | None:
    """The documented deploy status ``value`` names, or None for a status we do not know."""
    lowered = value.lower()
    for known in get_args(DeployStatus):
        if lowered == known:
            return known  # type: ignore[no-any-return]
    return None


def plugin_status(value: str) -> PluginStatus | None:
    """The documented plugin status, compared case-insensitively (the docs use both cases)."""
    upper = value.upper().replace("-", "_").replace(" ", "_")
    for known in get_args(PluginStatus):
        if upper == known:
            return known  # type: ignore[no-any-return]
    return None


class Request(BaseModel):
    """A request body: only declared keys are ever sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Response(BaseModel):
    """A response body: unknown keys are tolerated."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ---------------------------------------------------------------------------------------- apps


class UploadUrlRequest(Request):
    filename: str
    content_type: str = "application/zip"


class UploadUrlResponse(Response):
    upload_url: str
    bundle_s3_key: str
    expires_in: int | None = 3600


class DeployRequest(Request):
    message: str
    environment: Environment = "production"
    source: Literal["cli_upload", "git"] = "cli_upload"
    bundle_s3_key: str | None = None
    source_files: dict[str, str] | None = None
    git_commit_sha: str | None = None
    git_commit_message: str | None = None
    git_author: str | None = None


class DeployResponse(Response):
    app_id: str
    deploy_id: str
    status: str
    environment: str
    message: str | None = None


class SmokeTestResult(Response):
    passed: bool
    url: str
    errors: list[str] | None = None
    duration_ms: int | None = 0
    tested_at: str | None = None


class DeployStatusResponse(Response):
    deploy_id: str
    status: str
    environment: str | None = None
    source: str | None = None
    bundle_s3_key: str | None = None
    message: str | None = None
    queued_at: str | None = None
    queued_by: str | None = None
    error: str | None = None
    smoke_test: SmokeTestResult | None = None

    @property
    def known_status(self) -> DeployStatus | None:
        return deploy_status(self.status)

    @property
    def smoke_failed(self) -> bool:
        """The service ran the smoke test and it failed (no test reported is not a failure)."""
        return self.smoke_test is not None and not self.smoke_test.passed


class EnvironmentState(Response):
    """One entry of the untyped ``AppResponse.environments``: the SDK documents ``deploy_id``
    and ``asset_prefix``; anything else the server adds is kept, and read only if well-typed."""

    model_config = ConfigDict(extra="allow", frozen=True)

    deploy_id: str | None = None
    asset_prefix: str | None = None

    def extra_text(self, key: str) -> str | None:
        value = (self.model_extra or {}).get(key)
        return value if isinstance(value, str) and value else None


class VersionRecord(Response):
    """An entry of the version history; every field is optional in the official model."""

    version: int | None = None
    s3_version_id: str | None = None
    asset_prefix: str | None = None
    deployed_by: str | None = None
    deployed_at: str | None = None
    environment: str | None = None
    build_duration_ms: int | None = None
    message: str | None = None
    git_commit_sha: str | None = None
    git_commit_message: str | None = None
    git_author: str | None = None
    is_active: dict[str, bool] | None = None
    asset_manifest: dict[str, Any] | None = None
    """Each path the version serves: ``{s3_key, hash, size}`` (as much of it as was read)."""
    _manifest_size: int | None = PrivateAttr(default=None)
    """How many files the list had, when only part of it was read."""

    @property
    def manifest_complete(self) -> bool:
        """Whether ``asset_manifest`` holds the version's whole file list."""
        return self.asset_manifest is not None and self._manifest_size is None

    def serves(self, environment: str) -> bool | None:
        """What the record itself says about ``environment``; None when it says nothing."""
        return None if self.is_active is None else self.is_active.get(environment)


class PageMeta(Request):
    """The official ``PageMeta``: the app's visible chrome; only ``title`` is required."""

    title: str
    description: str | None = None
    logo_url: str | None = None
    favicon_url: str | None = None
    indexable: bool | None = None


class AuthConfigInput(Request):
    """The official ``AuthConfigInput`` without what the service keeps for itself
    (``clerk_org_id``, auto-provisioned; ``password_hash``, internal) and ``api_keys``.
    ``password`` is write-only: never returned."""

    mode: str | None = None
    clerk_allowed_providers: list[str] | None = None
    password: str | None = None
    saml_idp_metadata_url: str | None = None
    saml_sp_entity_id: str | None = None
    saml_acs_url: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_name: str | None = None
    oidc_scopes: list[str] | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None


class ApiAllowRule(Request):
    """The official ``ApiAllowRule``: one widening of the app's ``/api`` proxy allowlist."""

    pattern: str
    methods: list[str] | None = None


class BuildConfig(Request):
    """The official ``BuildConfig`` without ``asset_prefix``, which is the service's own
    (promotion writes it): it is never sent, so no update drops it. ``secrets`` values are
    shown as ``***`` in answers."""

    entry: str | None = None
    framework: str | None = None
    tailwind: bool | None = None
    env_vars: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    api_allow: list[ApiAllowRule] | None = None


class MonitoringConfig(Request):
    """The official ``MonitoringConfig``."""

    enabled: bool | None = None
    error_boundary_enabled: bool | None = None
    sentry_enabled: bool | None = None
    posthog_enabled: bool | None = None
    custom_error_message: str | None = None
    auto_fix_enabled: bool | None = None


class CreateAppRequest(Request):
    """The official ``CreateAppRequest`` without the deprecated page-builder fields."""

    slug: str
    meta: PageMeta
    auth_config: AuthConfigInput | None = None
    build_config: BuildConfig | None = None
    monitoring_config: MonitoringConfig | None = None
    is_active: bool | None = None


CLEARABLE: Final = frozenset({"auth_config", "build_config", "monitoring_config"})
"""The fields of an update that a null clears (null leaves ``slug``, ``meta``, ``is_active``)."""


class UpdateAppRequest(Request):
    """The official ``UpdateAppRequest``: each field given replaces the app's whole; with
    ``publish`` the change is applied and published at once, not kept as a draft. A clearable
    field set to None on purpose is sent as null, which clears it; any other None is left out."""

    slug: str | None = None
    meta: PageMeta | None = None
    auth_config: AuthConfigInput | None = None
    build_config: BuildConfig | None = None
    monitoring_config: MonitoringConfig | None = None
    is_active: bool | None = None
    publish: bool | None = None

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        for name in sorted(CLEARABLE & self.model_fields_set):
            if getattr(self, name) is None:
                body[name] = None
        return body


class AppResponse(Response):
    """The fields of the official ``AppResponse`` the provider reads; the rest is ignored.
    The configurations are kept as sent (untyped), so that an odd one never breaks a read of
    the app's deploys; the kind that manages them reads them into its own models."""

    app_id: str
    slug: str
    url: str | None = None
    version: int | None = None
    environments: dict[str, Any] = Field(default_factory=dict)
    versions: list[Any] | None = None
    meta: dict[str, Any] | None = None
    is_active: bool | None = None
    auth_config: dict[str, Any] | None = None
    build_config: dict[str, Any] | None = None
    monitoring_config: dict[str, Any] | None = None
    has_unpublished_changes: bool | None = None
    warnings: list[str] | None = None
    _source: tuple[str, str] = PrivateAttr(default=("GET", "/v1/apps/{app_id}"))

    def environment(self, name: str) -> EnvironmentState:
        """The entry for ``name``, checked only when asked for, so that an odd entry for one
        environment never breaks the resources of another.

        Raises ``ResponseValidationError`` naming ``environments.<name>`` when it is malformed.
        """
        entry = self.environments.get(name)
        if entry is None:
            return EnvironmentState()
        problem = f"environments.{name} is a {type(entry).__name__}, not an object"
        if isinstance(entry, dict):
            try:
                return EnvironmentState.model_validate(entry)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                problem = f"environments.{name}.{where}: {first['msg']}"
        method, path = self._source
        raise ResponseValidationError(method=method, path=path, status_code=200, problem=problem)


class DeleteResponse(Response):
    """The official ``GenericDeleteResponse``."""

    success: bool | None = None
    message: str | None = None


class AddDomainRequest(Request):
    """The official ``AddDomainRequest``."""

    domain: str
    is_primary: bool = False


class DomainResponse(Response):
    """The official ``DomainResponse``: ``status`` is ``pending``, ``verifying``,
    ``provisioning_tls`` or ``active`` (``CustomDomainConfig``), kept as sent."""

    domain: str
    status: str
    is_primary: bool
    verification_token: str | None = None
    cname_target: str | None = None
    verified_at: str | None = None


class ListDomainsResponse(Response):
    """The official ``ListDomainsResponse``."""

    domains: list[DomainResponse]
    total: int | None = None

    def find(self, domain: str) -> DomainResponse | None:
        """The entry for ``domain``, whichever its case (DNS names ignore case)."""
        wanted = domain.lower()
        return next((d for d in self.domains if d.domain.lower() == wanted), None)


class ListAppsResponse(Response):
    """The official ``ListAppsResponse``; only its page is read (a key check)."""

    results: list[Any]
    total_count: int | None = None


class VersionListResponse(Response):
    versions: list[Any]
    total: int | None = None

    def records(self) -> list[VersionRecord]:
        """The items that read as version records; the list is untyped in the official model."""
        found = []
        for item in self.versions:
            if isinstance(item, dict):
                try:
                    found.append(VersionRecord.model_validate(item))
                except ValidationError:
                    continue
        return found


class VersionDetailResponse(VersionRecord):
    source_files: dict[str, str] | None = None


class FileDiff(Response):
    path: str
    status: str
    """``added``, ``removed``, ``modified`` or ``unchanged``."""


class VersionDiffResponse(Response):
    """The official ``VersionDiffResponse``: what changed, file by file, between versions."""

    from_version: int | None = None
    to_version: int | None = None
    files: list[FileDiff] = []
    summary: dict[str, int] | None = None


class DownloadUrlResponse(Response):
    download_url: str
    version: int
    asset_prefix: str
    expires_in: int | None = 3600


class RestoreVersionRequest(Request):
    environment: Environment = "production"


class RestoreVersionResponse(Response):
    app_id: str
    version: int
    deploy_id: str
    environment: str
    asset_prefix: str


# ------------------------------------------------------------------------------------- plugins


class CreatePluginUploadRequest(Request):
    name: str
    version: str
    description: str | None = None
    file_size_bytes: int | None = None
    presigned_url_expiration: int | None = None


class PluginPresignedUrlResponse(Response):
    upload_id: str
    presigned_url: str
    s3_key: str
    expires_at: str
    namespace_id: str
    name: str
    version: str


class ConfirmPluginUploadRequest(Request):
    etag: str | None = None
    file_size_bytes: int | None = None


class ConfirmPluginUploadResponse(Response):
    success: bool
    upload_id: str
    plugin_id: str | None = None
    validation_status: Literal["pending", "passed", "failed"]
    validation_errors: list[str] | None = None
    deployment_status: str
    feature_uri: str | None = None
    s3_archive_url: str | None = None
    message: str | None = None


class PluginDeployResponse(Response):
    """Free-form in the spec; these are the documented keys."""

    status: str | None = None
    message: str | None = None
    deployment_type: str | None = None
    deployment_name: str | None = None
    route_prefix: str | None = None
    estimated_completion_seconds: int | None = None
    realtime_available: bool | None = None


class PluginStatusResponse(Response):
    plugin_id: str
    namespace_id: str
    status: str
    """In the documented spelling (``DEPLOYED``) whichever case the service sends (the spec's
    examples say ``deployed``), so outputs and state never change with the spelling; an unknown
    status is kept as sent."""
    name: str | None = None
    version: str | None = None
    realtime_enabled: bool = False
    message: str | None = None
    queued_at: str | None = None
    estimated_completion_seconds: int | None = None
    deployed: bool | None = None
    route_prefix: str | None = None
    feature_uri: str | None = None
    deployed_at: str | None = None
    error: str | None = None

    @field_validator("status")
    @classmethod
    def _documented_spelling(cls, value: str) -> str:
        return plugin_status(value) or value

    @property
    def known_status(self) -> PluginStatus | None:
        return plugin_status(self.status)


class DeploymentInfo(Response):
    feature_uri: str | None = None
    deployed_at: str | None = None


class PluginDocument(Response):
    plugin_id: str
    name: str
    version: str
    s3_archive_url: str | None = None
    code_hash: str | None = None
    validation_status: str | None = None
    validation_errors: list[str] | None = None
    namespace_id: str | None = None
    description: str | None = None
    deployed: bool = False
    deployment_info: DeploymentInfo | None = None
    deployed_at: str | None = None


class PluginListResponse(Response):
    """The namespace's plugins; free-form in the spec, and only asked for as a key check."""


class PluginDetailResponse(Response):
    plugin: PluginDocument
    presigned_download_url: str | None = None


class PluginDeleteResponse(Response):
    plugin_id: str
    message: str | None = None
    deployment_removed: bool = False


class PluginUndeployResponse(Response):
    """Free-form in the spec."""

    status: str | None = None
    message: str | None = None


class ErrorDetail(Response):
    message: str = ""
    type: str | None = None
    code: str | None = None
    details: dict[str, Any] | None = None


class ErrorResponse(Response):
    """The API's error body (``HTTPValidationError`` and older nestings are read by the client)."""

    status: int | None = None
    error: ErrorDetail
