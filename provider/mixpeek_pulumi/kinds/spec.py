"""The inputs and state of each resource: typed, validated, declared once for both front doors.

Each field says what changing it does (``replace``, ``update`` at the service, ``none``: only
recorded, or ``computed`` by ``check``). The dynamic resources' output keys, their diffs and the
native provider's schema are all read off these models, so none of them can drift apart.
State holds the inputs, as in pulumi-command: ``update`` and ``delete`` get everything they need
from the old state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Final, Literal, Self, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from ..api.models import DeploymentType, Environment
from ..config import base_url_problem
from ..errors import StateError, register_secret, texts

Change = Literal["replace", "update", "none", "computed"]
RESERVED: Final = frozenset({"__provider"})
MAX_TIMEOUT_SECONDS: Final = 7 * 24 * 3600.0
MIN_POLL_SECONDS: Final = 0.05
MAX_POLL_SECONDS: Final = 3600.0

S = TypeVar("S", bound="State")


def _whole(value: Any) -> Any:
    # The wire carries every number as a double; a bool is never a number here.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    if isinstance(value, str):
        raise ValueError("must be a whole number, not text (convert it with int())")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds, not a boolean")
    if isinstance(value, int | float) and not math.isfinite(value):
        raise ValueError("must be a finite number of seconds")
    return value


def _ascii_id(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("must name an object, not '.' or '..'")
    return value


def _endpoint(value: str | None) -> str | None:
    problem = None if value is None else base_url_problem(value)
    if problem is not None:
        raise ValueError(f"cannot be the Mixpeek endpoint: {problem}")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole)]
Seconds = Annotated[float, BeforeValidator(_finite)]
# Ids go into URL paths: ASCII letters, digits, '_', '-' and '.', never a path step.
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$"),
    AfterValidator(_ascii_id),
]
Endpoint = Annotated[str | None, AfterValidator(_endpoint)]
IDENTIFIER_RULE: Final = "ASCII letters, digits, '_', '-' and '.', at most 128, never '.' or '..'"
_IDENTIFIER: Final = TypeAdapter(Identifier)


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id in a URL path (the rule every id input follows)."""
    try:
        _IDENTIFIER.validate_python(value)
    except ValidationError:
        return f"{value[:80]!r} is not an id ({IDENTIFIER_RULE})"
    return None


def _site_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("must start with / and have no spaces (for example /healthz)")
    return value


def _site(value: str | None) -> str | None:
    problem = None if value is None else site_url_problem(value)
    if problem is not None:
        raise ValueError(f"is not a site address the checks can ask: {problem}")
    return value


def site_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the base address of a site's checks."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it is not an http(s) URL with a host (for example https://www.example.com)"
    if parts.username is not None or parts.password is not None:
        return "it has a user name or password in it, which the checks never send"
    if parts.fragment:
        return "it has a #fragment, which is never sent to a site"
    if parts.query:
        return "it has a query string; put the query at the end of `path` instead"
    if not url.isascii() or any(c.isspace() for c in url.strip()):
        return "it has spaces or characters outside ASCII"
    return None


MIN_CHECK_SECONDS: Final = 0.5
"""No check of ``verify`` starts with less than this left of the checks' time."""


class Verify(BaseModel):
    """A check of the live site right after a switch: ``GET url + path`` until ``checks``
    answers in a row find the promoted version's own bytes, else the version served before is
    restored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, AfterValidator(_site_path)] = Field("/", min_length=1, max_length=2000)
    """The path requested, appended to ``url`` as it is. When it is a file of the version, its
    bytes are compared with the version's; otherwise the site's ``index.html`` is."""
    expect_status: WholeNumber = Field(200, ge=100, le=599)
    """The HTTP status every check must answer."""
    expect_text: str | None = Field(None, min_length=1, max_length=10_000)
    """Text the body must contain, if set."""
    checks: WholeNumber = Field(3, ge=1, le=100)
    """How many checks in a row must pass."""
    interval_seconds: Seconds = Field(2, ge=MIN_POLL_SECONDS, le=MAX_POLL_SECONDS)
    """The pause between checks."""
    timeout_seconds: Seconds = Field(60, gt=0, le=MAX_TIMEOUT_SECONDS)
    """How long the checks may take to pass, counted from the first check: a slow build never
    shortens it."""
    url: Annotated[str | None, AfterValidator(_site)] = None
    """The base URL to check instead of the environment's URL from the service (a private
    network, the emulator's ``/_sites/<app_id>/<environment>``); a path of its own is kept."""

    @model_validator(mode="after")
    def _schedule_fits(self) -> Self:
        # The pauses, and the least time the last check is started with, must fit, or every
        # switch ends unverified.
        least = (self.checks - 1) * self.interval_seconds + MIN_CHECK_SECONDS
        if least > self.timeout_seconds:
            raise ValueError(
                f"{self.checks} checks `interval_seconds` ({self.interval_seconds:g} s) apart "
                f"take at least {least:g} s (a check is started with {MIN_CHECK_SECONDS:g} s "
                f"left at least), which `timeout_seconds` ({self.timeout_seconds:g} s) does not "
                "leave, so they could never pass in time; raise `timeout_seconds` or lower "
                "`checks` or `interval_seconds`"
            )
        return self


def secret(default: Any = None, **kwargs: Any) -> Any:
    """A field of a nested object (a ``Part``) whose value is a secret (a password, each
    value of a map): kept out of every message and line once read, and marked for the schema."""
    return Field(default, json_schema_extra={"secret": True}, **kwargs)


def is_secret(field: Any) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("secret") is True


def secret_paths(model: type[BaseModel], prefix: str = "") -> tuple[str, ...]:
    """Where ``model`` keeps secrets, as dotted paths (``auth_config.password``): what a front
    door marks secret in the state whether or not the program did."""
    found: list[str] = []
    for name, info in model.model_fields.items():
        if is_secret(info):
            found.append(prefix + name)
            continue
        for arg in (info.annotation, *get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found.extend(secret_paths(arg, f"{prefix}{name}."))
    return tuple(found)


class Part(BaseModel):
    """A nested object of inputs: unknown keys are typos. Every value of a field marked
    ``secret`` is registered for redaction whenever it is read (``check``, the engine's inputs
    or state), so no error or line built after can show it, whichever front door read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _keep_secrets_out_of_messages(self) -> Self:
        for name, info in type(self).model_fields.items():
            if is_secret(info):
                for text in texts(getattr(self, name)):
                    register_secret(text)
        return self


def setting(default: Any = ..., *, change: Change, **kwargs: Any) -> Any:
    """A field with what changing it does recorded where the diff and the schema read it."""
    return Field(default, json_schema_extra={"change": change}, **kwargs)


class Inputs(BaseModel):
    """Resource inputs: unknown keys are typos and fail ``check``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource_name: str = setting("", change="none")
    """The resource's name in the program, for messages (set by the resource class)."""
    base_url: Endpoint = setting(None, change="replace")
    """The Mixpeek API endpoint for this resource; defaults to the provider's. Replaces."""

    @classmethod
    def parse(cls, props: Mapping[str, Any]) -> Self:
        """These inputs from engine properties (outputs and ``__provider`` left out)."""
        return cls.model_validate(
            {k: v for k, v in props.items() if k in cls.model_fields and v is not None}
        )


def _said(err: Any) -> str:
    if err.get("type") == "missing":
        return "is missing"
    return f"is {str(err.get('input'))[:40]!r}: {str(err.get('msg', 'invalid')).lower()}"


def change_of(field: Any) -> Change | None:
    extra = field.json_schema_extra
    return extra.get("change") if isinstance(extra, dict) else None


STATE_CONFIG: Final = ConfigDict(extra="ignore", frozen=True)


class State(BaseModel):
    """A resource's state: its inputs plus what the service told us. Each resource's state
    class derives from its inputs class too; keys that state written by an older version
    carries, and these models no longer have, are ignored."""

    model_config = STATE_CONFIG
    inputs_model: ClassVar[type[Inputs]]
    guaranteed: ClassVar[tuple[str, ...]] = ()
    """Outputs every successful create and update sets (typed as never absent in the SDKs);
    the rest may be null (a batch-only plugin has no route, an import knows no bundle path)."""

    @classmethod
    def load(cls: type[S], props: Mapping[str, Any]) -> S:
        """The state the engine keeps; ``StateError`` naming each field that does not load
        (hand-edited, or written by a version that knew other fields)."""
        try:
            return cls.model_validate({k: v for k, v in props.items() if k not in RESERVED})
        except ValidationError as exc:
            problems = [
                f"`{'.'.join(str(p) for p in err['loc']) or 'state'}` {_said(err)}"
                for err in exc.errors()[:3]
            ]
            raise StateError(
                f"its stack state cannot be read ({'; '.join(problems)}), as if edited by hand "
                "or written by another version; correct it with `pulumi stack export` and "
                "`pulumi stack import`, or drop it with `pulumi state delete` and bring it "
                "back with `pulumi import`"
            ) from None

    @classmethod
    def output_keys(cls) -> tuple[str, ...]:
        """What the resource class declares as outputs: everything the inputs do not set."""
        inputs = cls.inputs_model
        set_by_user = {n for n, f in inputs.model_fields.items() if change_of(f) != "computed"}
        return tuple(n for n in cls.model_fields if n not in set_by_user)

    def to_outputs(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def resource_id(self) -> str:
        """The id the engine records for the resource."""
        raise NotImplementedError

    def with_inputs(self, inputs: Inputs, *, exclude: frozenset[str] = frozenset()) -> Self:
        """This state with ``inputs`` declared anew; nested inputs stay models (a dump would
        leave ``verify`` a plain dict in a state nothing validates again)."""
        return self.model_copy(update={k: v for k, v in inputs if k not in exclude})

    def inputs(self) -> Any:
        return self.inputs_model.model_validate(
            {k: getattr(self, k) for k in self.inputs_model.model_fields}
        )


def _rollback_from_previous(data: Any) -> Any:
    # Before 0.2, ``previous_version`` was what on_delete="rollback" restores; a state written
    # then has no ``rollback_version``, so it keeps restoring what it always would have.
    if isinstance(data, dict) and "rollback_version" not in data:
        return {**data, "rollback_version": data.get("previous_version")}
    return data


# ------------------------------------------------------------------------------- AppDeploy


class AppDeployInputs(Inputs):
    """The inputs of AppDeploy, validated in ``check``."""

    app_id: Identifier = setting(change="replace")
    """The app to deploy to. Changing it replaces the resource."""
    bundle: str = setting(change="update", min_length=1)
    """A build folder or a .zip. Only its content matters: a new digest is an update (a new
    deploy); a rebuild with the same bytes is no change."""
    environment: Environment = setting("production", change="replace")
    """``staging`` or ``production``. Changing it replaces the resource."""
    message: str | None = setting(None, change="none", max_length=2000)
    """The deploy message; from git (``subject (sha)``) when unset. A change alone deploys
    nothing."""
    git_commit_sha: str | None = setting(None, change="none", max_length=200)
    """Sent with the deploy; detected from git when unset."""
    git_commit_message: str | None = setting(None, change="none", max_length=2000)
    """Sent with the deploy; detected from git when unset."""
    git_author: str | None = setting(None, change="none", max_length=500)
    """Sent with the deploy (``name <email>``); detected from git when unset."""
    exclude: list[str] = setting(default_factory=list, change="none")
    """Extra glob patterns to leave out; ``!pattern`` re-includes a default exclusion. What it
    changes in the bundle shows as a content change."""
    include_source_files: bool = setting(False, change="none", strict=True)
    """Also send text files as ``source_files`` for the service's version diffs."""
    timeout_seconds: Seconds = setting(1800, change="none", gt=0, le=MAX_TIMEOUT_SECONDS)
    """How long create and update wait for the deploy (one deadline for every wait and retry);
    the native provider's ``customTimeouts``, where set, take its place."""
    poll_interval_seconds: Seconds = setting(
        2, change="none", ge=MIN_POLL_SECONDS, le=MAX_POLL_SECONDS
    )
    """How often the deploy status is read while no log stream says it ended."""
    require_smoke_test: bool = setting(True, change="none", strict=True)
    """A complete deploy whose smoke test failed counts as a failure, and the version served
    before is restored."""
    on_delete: Literal["retain", "rollback"] = setting("retain", change="none")
    """``retain`` leaves the deploy live; ``rollback`` restores the version served before."""
    verify: Verify | None = setting(None, change="none")
    """Check the live site after the switch and restore the version served before if it
    fails (see README); a change applies to the next switch."""
    allow_older_commit: bool = setting(False, change="none", strict=True)
    """Deploy even when the environment serves a newer commit of the same history (a
    deliberate rollback); otherwise such a deploy is refused before anything is sent."""
    bundle_sha256: str | None = setting(None, change="computed")
    """The content digest of the bundle (computed by ``check``): what the diff compares."""


class AppDeployState(AppDeployInputs, State):
    """AppDeploy's state: the inputs and the deploy the environment serves."""

    model_config = STATE_CONFIG
    inputs_model = AppDeployInputs
    guaranteed = ("bundle_sha256", "deploy_id", "version", "status", "url", "live")

    bundle: str = ""
    """The build folder or .zip deployed; empty for an imported resource until the program
    names one."""
    deploy_id: str | None = None
    """The deploy this resource put live."""
    version: int | None = None
    """The version that deploy produced."""
    status: str | None = None
    """The deploy's terminal status, ``complete``."""
    bundle_s3_key: str | None = None
    """Where the uploaded bundle is kept."""
    bundle_size: int | None = None
    """The size of the uploaded archive in bytes."""
    file_count: int | None = None
    """How many files the bundle holds."""
    url: str | None = None
    """The environment's URL (the service's, or derived from the app's; see README)."""
    smoke_test: dict[str, Any] | None = None
    """The service's smoke-test result for the deploy."""
    queued_at: str | None = None
    """When the service queued the deploy."""
    live: bool | None = None
    """Whether the environment still serves this deploy (false after drift)."""
    deploy_message: str | None = None
    """The message the deploy carries, with its content tag."""
    previous_version: int | None = None
    """The version the environment served just before this resource's last deploy, or null."""
    rollback_version: int | None = None
    """The version ``on_delete="rollback"`` restores: what the environment served before this
    resource first deployed (0: nothing)."""
    verified: bool | None = None
    """Whether ``verify`` ran and passed after the last switch (false without ``verify``)."""
    bundle_files: dict[str, str] | None = None
    """What a preview compares the bundle's files with: each path the environment serves
    mapped to the first 16 hex digits of its sha256; none for bundles over 1,000 files."""

    _rollback_from_previous = model_validator(mode="before")(_rollback_from_previous)

    @property
    def resource_id(self) -> str:
        return f"{self.app_id}/{self.environment}"

    @property
    def written_before_file_lists(self) -> bool:
        """Written by a release that kept no file list (0.1.0): ``bundle_files`` and
        ``verified`` are both absent. Every create and update since writes both, and
        ``verified`` as a boolean, which the dynamic resources' state keeps where it drops a
        null ``bundle_files``."""
        return not {"bundle_files", "verified"} & self.model_fields_set


# ---------------------------------------------------------------------------- AppPromotion


class AppPromotionInputs(Inputs):
    """The inputs of AppPromotion."""

    app_id: Identifier = setting(change="replace")
    """The app. Changing it replaces the resource."""
    version: WholeNumber = setting(change="update", gt=0)
    """The version to serve, e.g. ``staging.version``. Changing it is an update (an instant
    restore, no rebuild)."""
    environment: Environment = setting("production", change="replace")
    """Where to serve it. Changing it replaces the resource."""
    source_deploy_id: Identifier | None = setting(None, change="update")
    """The deploy that built ``version`` (e.g. ``staging.deploy_id``), for the smoke-test gate."""
    require_smoke_test: bool = setting(True, change="update", strict=True)
    """Refuse a version whose deploy failed or whose smoke test failed, or whose deploy cannot
    be found (see README)."""
    on_delete: Literal["retain", "rollback"] = setting("retain", change="none")
    """``retain`` leaves the version live; ``rollback`` restores the one served before."""
    verify: Verify | None = setting(None, change="none")
    """Check the live site after the switch and restore the version served before if it
    fails (see README); a change applies to the next switch."""
    allow_older_commit: bool = setting(False, change="none", strict=True)
    """Promote even when the environment serves a newer commit of the same history (a
    deliberate rollback); otherwise such a promotion is refused before anything is sent."""


class AppPromotionState(AppPromotionInputs, State):
    """AppPromotion's state: the inputs and what the environment serves now."""

    model_config = STATE_CONFIG
    inputs_model = AppPromotionInputs
    guaranteed = ("deploy_id", "url", "live")

    deploy_id: str | None = None
    """The deploy the environment serves after the restore."""
    asset_prefix: str | None = None
    """Where the version's assets live."""
    previous_version: int | None = None
    """The version the environment served just before this resource's last promotion, or
    null."""
    rollback_version: int | None = None
    """The version ``on_delete="rollback"`` restores: what the environment served before this
    resource first promoted (0: nothing)."""
    verified: bool | None = None
    """Whether ``verify`` ran and passed after the last switch (false without ``verify``)."""

    _rollback_from_previous = model_validator(mode="before")(_rollback_from_previous)
    url: str | None = None
    """The environment's URL."""
    live: bool | None = None
    """Whether the environment still serves this version (false after drift)."""

    @property
    def resource_id(self) -> str:
        return f"{self.app_id}/{self.environment}"


# ------------------------------------------------------------------------ PluginDeployment

PLUGIN_NAME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{2,63}$")
PLUGIN_VERSION: Final = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


class PluginDeploymentInputs(Inputs):
    """The inputs of PluginDeployment."""

    namespace_id: Identifier = setting(change="replace")
    """The namespace. Changing it replaces the resource."""
    name: str = setting(change="replace", pattern=PLUGIN_NAME.pattern)
    """A letter, then 2 to 63 ASCII letters, digits or underscores. Changing it replaces."""
    version: str = setting(change="replace", pattern=PLUGIN_VERSION.pattern, max_length=32)
    """``X.Y.Z`` in ASCII digits. Versions are immutable: new code needs a new version, which
    replaces the resource (the new one serves before the old one is undeployed)."""
    source: str = setting(change="update", min_length=1)
    """A plugin folder or .zip with ``manifest.py`` and ``pipeline.py``; new code under the
    same version is refused."""
    description: str | None = setting(None, change="none", max_length=500)
    """Sent with the upload only."""
    deployment_type: DeploymentType = setting("realtime", change="update")
    """``realtime`` or ``batch_only``. Changing it is an update (a redeploy)."""
    timeout_seconds: Seconds = setting(1800, change="none", gt=0, le=MAX_TIMEOUT_SECONDS)
    """How long create and update wait for the rollout; the native provider's
    ``customTimeouts``, where set, take its place."""
    poll_interval_seconds: Seconds = setting(
        5, change="none", ge=MIN_POLL_SECONDS, le=MAX_POLL_SECONDS
    )
    """The first status poll interval; it backs off to 15 s."""
    on_delete: Literal["undeploy", "delete", "retain"] = setting("undeploy", change="none")
    """``undeploy`` (and wait), ``delete`` (also the plugin and its archive), or ``retain``."""
    code_sha256: str | None = setting(None, change="computed")
    """The digest of the plugin's files (computed by ``check``)."""


class PluginDeploymentState(PluginDeploymentInputs, State):
    """PluginDeployment's state: the inputs and the plugin's deployment."""

    model_config = STATE_CONFIG
    inputs_model = PluginDeploymentInputs
    guaranteed = ("code_sha256", "plugin_id", "feature_uri", "status", "deployed")

    source: str = ""
    """The plugin folder or .zip deployed; empty for an imported resource until the program
    names one."""

    plugin_id: str | None = None
    """The plugin's id, ``{name}_{version with . as _}``."""
    route_prefix: str | None = None
    """Where the plugin serves realtime inference."""
    feature_uri: str | None = None
    """``mixpeek://name@version``."""
    status: str | None = None
    """The deployment status the service reported last, spelled as documented (``QUEUED``,
    ``PENDING``, ``IN_PROGRESS``, ``DEPLOYED``, ``FAILED``, ``NOT_DEPLOYED``) whichever case the
    service uses."""
    deployed: bool | None = None
    """Whether the plugin is deployed (false after drift)."""
    realtime_enabled: bool | None = None
    """Whether realtime inference is on."""
    validation_status: str | None = None
    """The service's validation result, ``passed``."""
    deployed_at: str | None = None
    """When the service deployed it."""
    code_files: dict[str, str] | None = None
    """What a preview compares a new version's files with: each path of the deployed code
    mapped to the first 16 hex digits of its sha256; none for sources over 1,000 files."""

    @property
    def resource_id(self) -> str:
        return f"{self.namespace_id}/{self.plugin_id}"
