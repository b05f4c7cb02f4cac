"""Apps as code: the app itself (its slug, its chrome, who may see it, how it is built and
watched), created, updated in one published PATCH, read back for drift and deleted.

What the service keeps for itself is never sent and never drifts: ``build_config.asset_prefix``
(promotion writes it), ``auth_config.clerk_org_id`` (provisioned) and ``password_hash``. What it
masks, the password and the build secrets' values, is compared by what was sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from ..api.client import MixpeekClient
from ..api.models import (
    AppResponse,
    AuthConfigInput,
    CreateAppRequest,
    MonitoringConfig,
    PageMeta,
    UpdateAppRequest,
)
from ..api.models import BuildConfig as BuildConfigRequest
from ..errors import BadRequestError, DeployFailedError, MixpeekError, NotFoundError, first_line
from ..run.context import Context
from .base import Checked, Kind, Recall
from .diffs import Diff, diff_inputs
from .spec import (
    STATE_CONFIG,
    Inputs,
    Part,
    State,
    identifier_problem,
    secret,
    setting,
)

SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")
SLUG_RULE: Final = (
    "3 to 60 lowercase ASCII letters, digits and hyphens, starting and ending with a letter or "
    "digit (it becomes <slug>.mxp.co)"
)
VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SLUG_TAKEN: Final = "slug_taken"
"""The error code of a slug another app has (the SDK lists no 409 for it: a 400)."""
MASKED: Final = "***"
"""How the service shows each value of ``build_config.secrets``."""
AuthMode = Literal["public", "clerk", "password", "api_key", "jwt", "sso_oidc", "sso_saml"]
P = TypeVar("P", bound=Part)


def _slug(value: str) -> str:
    if not 3 <= len(value) <= 60 or not value.isascii() or not SLUG.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a slug: {SLUG_RULE}")
    return value


def _variables(value: dict[str, str] | None) -> dict[str, str] | None:
    bad = [k for k in value or {} if not k.isascii() or not VARIABLE.fullmatch(k)]
    if bad:
        shown = ", ".join(repr(k[:60]) for k in bad[:3])
        raise ValueError(
            f"{shown} {'is not a variable name' if len(bad) == 1 else 'are not variable names'}"
            " (ASCII letters, digits and '_', not starting with a digit)"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Variables = Annotated[dict[str, str] | None, AfterValidator(_variables)]


class AppMeta(Part):
    """The app's chrome: the browser tab's title, its logo and favicon."""

    title: str = Field(min_length=1)
    """The title shown in the browser tab and the page header."""
    description: str | None = None
    """A short description shown under the title."""
    logo_url: str | None = None
    """The logo shown in the page header."""
    favicon_url: str | None = None
    """The browser tab's icon."""
    indexable: bool | None = Field(None, strict=True)
    """Let search engines and AI crawlers index the app (the service's default: no)."""


class AuthConfig(Part):
    """Who may open the app."""

    mode: AuthMode = "public"
    """``public`` (no sign-in), ``clerk`` (managed sign-in), ``password`` (one shared
    password), or the advanced ``api_key``, ``jwt``, ``sso_oidc``, ``sso_saml``."""
    clerk_allowed_providers: list[str] | None = None
    """With ``clerk``: the sign-in providers offered (google, github, email)."""
    password: str | None = secret(None, min_length=1)
    """With ``password``: the password visitors enter. Write-only: the service keeps its hash
    and never shows it, so it is compared with what was sent last."""
    saml_idp_metadata_url: str | None = None
    saml_sp_entity_id: str | None = None
    saml_acs_url: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_name: str | None = None
    """The name of the client secret in the secrets vault (never the secret itself)."""
    oidc_scopes: list[str] | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None


class ApiAllow(Part):
    """One widening of the app's ``/api`` proxy allowlist."""

    pattern: str = Field(min_length=1)
    """The path the app may proxy, such as ``/v1/retrievers/*/execute``."""
    methods: list[str] | None = None
    """The HTTP methods allowed, such as ``["GET", "POST"]``."""


class AppBuildConfig(Part):
    """How the app is built. ``asset_prefix`` is the service's and never sent."""

    entry: str = "src/layout.jsx"
    """The build's entry point."""
    framework: Literal["react"] = "react"
    """The framework: ``react``."""
    tailwind: bool = Field(True, strict=True)
    """Build with Tailwind CSS."""
    env_vars: Variables = None
    """Build-time variables; every one but ``MIXPEEK_API_KEY`` reaches the browser, so put
    secrets in ``secrets``."""
    secrets: Variables = secret(None)
    """Server-only values for the app's ``/functions/*`` handlers; the service shows them as
    ``***``, so each is compared with what was sent last."""
    api_allow: list[ApiAllow] | None = None
    """Rules that widen the fleet's ``/api`` proxy allowlist for this app."""


class AppMonitoring(Part):
    """Opt-in monitoring (to Mixpeek's own Sentry and PostHog, never the app's)."""

    enabled: bool = Field(True, strict=True)
    error_boundary_enabled: bool = Field(True, strict=True)
    sentry_enabled: bool = Field(True, strict=True)
    posthog_enabled: bool = Field(True, strict=True)
    custom_error_message: str | None = None
    auto_fix_enabled: bool = Field(True, strict=True)


class AppInputs(Inputs):
    """The inputs of App."""

    slug: Slug = setting(change="update")
    """The app's globally unique name, its address ``<slug>.mxp.co``: 3 to 60 lowercase
    letters, digits and hyphens. Changing it is an update (checked to be free first)."""
    meta: AppMeta = setting(change="update")
    """The app's title, description, logo and favicon."""
    auth_config: AuthConfig | None = setting(None, change="update")
    """Who may open the app; the service's default (public) when unset."""
    build_config: AppBuildConfig | None = setting(None, change="update")
    """How the app is built."""
    monitoring_config: AppMonitoring | None = setting(None, change="update")
    """Opt-in monitoring."""
    is_active: bool = setting(True, change="update", strict=True)
    """False takes the app down: its URLs answer 404."""


class AppState(AppInputs, State):
    """App's state: the inputs as the service has them, and the app's id, URL and version."""

    model_config = STATE_CONFIG
    inputs_model = AppInputs
    guaranteed = ("app_id", "url", "version")

    app_id: str | None = None
    """The app's id (its import id)."""
    url: str | None = None
    """The app's published URL, ``https://<slug>.mxp.co``."""
    version: int | None = None
    """The app's version as the service counts it."""

    @property
    def resource_id(self) -> str:
        return self.app_id or ""


CONFIGS: Final[dict[str, type[Part]]] = {
    "auth_config": AuthConfig,
    "build_config": AppBuildConfig,
    "monitoring_config": AppMonitoring,
}


class App(Kind[AppInputs, AppState]):
    """App: the app itself, its settings declared in the program."""

    name = "App"
    summary = (
        "A Mixpeek App: its slug (its address), title and chrome, who may open it, how it is "
        "built and monitored."
    )
    details = (
        "Create sends `POST /v1/apps`; an update sends every setting in one `PATCH` with "
        "`publish: true` (a new slug is checked to be free first); delete removes the app, "
        "its domains and its slug. Refresh reports drift of every declared setting; the "
        "password and the build secrets, which the service never shows, are compared with "
        "what was sent. `build_config.asset_prefix` is the service's: never sent. Import with "
        "the app's id. To keep the app when the resource goes, use Pulumi's own options: "
        "`protect` refuses its delete, and `retainOnDelete` (`retain_on_delete`) leaves it at "
        "the service when it leaves the stack."
    )
    inputs = AppInputs
    state = AppState

    def computed(
        self, inputs: AppInputs | None, unknown: set[str], olds: Mapping[str, Any]
    ) -> Checked:
        """An update keeps the app's id: carried in the checked inputs, so a preview knows it
        (the engine previews an update's outputs from them)."""
        app_id = olds.get("app_id")
        return ({"app_id": app_id} if isinstance(app_id, str) and app_id else {}), []

    def recall(self, olds: Mapping[str, Any], computed: Mapping[str, Any]) -> Recall | None:
        """The id of an app whose old inputs do not carry it yet (the create's check could
        not know it), found by its old slug."""
        slug = olds.get("slug")
        if "app_id" in computed or not isinstance(slug, str):
            return None

        def read(api: MixpeekClient) -> dict[str, Any]:
            found = api.app_id_of_slug(slug)
            return {} if found is None else {"app_id": found}

        return read

    def diff(self, olds: AppState, news: Mapping[str, Any], unknown: set[str]) -> Diff:
        return diff_inputs(AppInputs, olds.model_dump(), news, unknown)

    def create(self, ctx: Context, inputs: AppInputs) -> AppState:
        request = CreateAppRequest(
            slug=inputs.slug,
            meta=PageMeta.model_validate(inputs.meta.model_dump()),
            is_active=inputs.is_active,
            **_configs(inputs),
        )
        try:
            app = ctx.api.create_app(request)
        except BadRequestError as exc:
            if exc.code != SLUG_TAKEN:
                raise
            raise _slug_taken(ctx, inputs.slug, _holder(ctx, inputs.slug)) from None
        _warned(ctx, app)
        ctx.say(f"created app {app.app_id} at {_url(app)}")
        return _state(inputs, app)

    def update(self, ctx: Context, olds: AppState, inputs: AppInputs) -> AppState:
        app_id = olds.app_id or ""
        if inputs.slug != olds.slug:
            try:
                ctx.api.check_slug(app_id, inputs.slug)
            except BadRequestError as exc:
                if exc.code != SLUG_TAKEN:
                    raise
                outcome = "nothing was changed; choose another slug"
                raise _slug_taken(ctx, inputs.slug, outcome) from None
        cleared = {k: None for k in CONFIGS if getattr(olds, k) is not None}
        request = UpdateAppRequest(
            slug=inputs.slug,
            meta=PageMeta.model_validate(inputs.meta.model_dump()),
            is_active=inputs.is_active,
            publish=True,
            **{**cleared, **_configs(inputs)},
        )
        app = ctx.api.update_app(app_id, request)
        _warned(ctx, app)
        ctx.say(f"updated and published app {app.app_id}")
        return _state(inputs, app)

    def read(self, ctx: Context, state: AppState) -> AppState | None:
        try:
            app = ctx.api.get_app(state.app_id or "")
        except NotFoundError:
            return None
        now = _observed(ctx, app, state)
        drifted = [k for k in AppInputs.model_fields if getattr(now, k) != getattr(state, k)]
        if drifted:
            ctx.say(f"the service's app differs from the last update in {', '.join(drifted)}")
        return now

    def delete(self, ctx: Context, state: AppState) -> None:
        try:
            ctx.api.delete_app(state.app_id or "")
        except NotFoundError:
            ctx.say(f"app {state.app_id} was already gone")

    def import_(self, ctx: Context, resource_id: str) -> AppState | None:
        """What ``pulumi import <app_id>`` reads: the app's settings as the service has them,
        with no password and each build secret shown as ``***`` (the program's replace them
        at the next update)."""
        problem = identifier_problem(resource_id)
        if problem is not None:
            raise MixpeekError(f"The import id {problem}: use the app's id, such as app_abc123.")
        try:
            app = ctx.api.get_app(resource_id)
        except NotFoundError:
            return None
        return _observed(ctx, app, None)


def _configs(inputs: AppInputs) -> dict[str, Any]:
    """The optional configurations the inputs set, as the requests name them."""
    found: dict[str, Any] = {}
    if inputs.auth_config is not None:
        found["auth_config"] = AuthConfigInput.model_validate(inputs.auth_config.model_dump())
    if inputs.build_config is not None:
        found["build_config"] = BuildConfigRequest.model_validate(inputs.build_config.model_dump())
    if inputs.monitoring_config is not None:
        dumped = inputs.monitoring_config.model_dump()
        found["monitoring_config"] = MonitoringConfig.model_validate(dumped)
    return found


def _holder(ctx: Context, slug: str) -> str:
    """What a create refused for a taken slug says: the organization's own app of that slug
    (a create whose answer was lost, another program) and how to adopt it, when it has one."""
    try:
        app_id = ctx.api.app_id_of_slug(slug)
    except MixpeekError:
        app_id = None
    if app_id is None:
        return "no app was created; choose another slug"
    return (
        f"no app was created: this organization's app {app_id} has it (an earlier run whose "
        f"answer was lost, or another program); adopt it with `pulumi import` and the id "
        f"{app_id}, or choose another slug"
    )


def _slug_taken(ctx: Context, slug: str, outcome: str) -> DeployFailedError:
    return ctx.failed(
        f"the slug {slug} is taken (slugs are unique across all organizations), so {outcome}",
        subject=slug,
        status="slug_taken",
        reason="slug taken",
    )


def _warned(ctx: Context, app: AppResponse) -> None:
    for warning in app.warnings or []:
        ctx.say(f"the service warns: {warning.splitlines()[0] if warning else warning}")


def _url(app: AppResponse) -> str:
    return app.url or f"https://{app.slug}.mxp.co"


def _state(inputs: AppInputs, app: AppResponse) -> AppState:
    return AppState(**dict(inputs), app_id=app.app_id, url=_url(app), version=app.version)


def _observed(ctx: Context, app: AppResponse, state: AppState | None) -> AppState:
    """The app as the service has it, in the inputs' terms: what it masks taken from what was
    sent (``state``), what it keeps for itself left out, defaults it filled in for a setting
    the program left unset read as unset."""
    settings: dict[str, Any] = {}
    for name, model in CONFIGS.items():
        sent = getattr(state, name) if state is not None else None
        settings[name] = _seen(ctx, name, model, getattr(app, name), sent)
    meta = _seen(ctx, "meta", AppMeta, app.meta, state.meta if state else None)
    now = {
        "slug": app.slug,
        "meta": meta or AppMeta(title=app.slug),
        "is_active": app.is_active if app.is_active is not None else True,
        "app_id": app.app_id,
        "url": _url(app),
        "version": app.version,
        **settings,
    }
    return AppState(**{**(dict(state) if state is not None else {}), **now})


def _seen(ctx: Context, name: str, model: type[P], seen: Any, sent: P | None) -> P | None:
    if not isinstance(seen, dict):
        return None
    known = {k: v for k, v in seen.items() if k in model.model_fields and v is not None}
    if isinstance(sent, AuthConfig) and sent.password is not None:
        known["password"] = sent.password
    if isinstance(known.get("secrets"), dict):
        ours = sent.secrets if isinstance(sent, AppBuildConfig) and sent.secrets else {}
        known["secrets"] = {
            k: ours[k] if k in ours and v in (MASKED, ours[k]) else v
            for k, v in known["secrets"].items()
        }
    try:
        found = model.model_validate(known)
    except ValidationError as exc:
        ctx.say(f"{name} as the service has it cannot be read ({first_line(exc)}); kept as sent")
        return sent
    if sent is None and name in CONFIGS and found == model.model_validate({}):
        return None  # the service's defaults, filled in for a setting the program left unset
    return found


class AppLookup(Inputs):
    """The inputs of getApp: the app by its id or by its slug, one of the two."""

    app_id: str | None = setting(None, change="none")
    """The app's id, such as ``app_abc123``."""
    slug: str | None = setting(None, change="none")
    """The app's slug, its address ``<slug>.mxp.co``."""

    def problem(self) -> str | None:
        """Why these inputs find no app, in words; None when they name one."""
        if (self.app_id is None) == (self.slug is None):
            return "give `app_id` or `slug`, one of the two"
        if self.app_id is not None:
            found = identifier_problem(self.app_id)
            return None if found is None else f"`app_id` {found}"
        try:
            _slug(self.slug or "")
        except ValueError as exc:
            return f"`slug` {exc}"
        return None


class AppFound(BaseModel):
    """What getApp returns: the app's id, slug, URL and what each environment serves."""

    model_config = STATE_CONFIG
    app_id: str
    """The app's id."""
    slug: str
    """The app's slug."""
    url: str
    """The app's published URL, ``https://<slug>.mxp.co``."""
    environments: dict[str, Any]
    """Each environment (``staging``, ``production``) and what it serves, as the service
    reports it: the deploy's id and its asset prefix, under the service's own key names."""


def lookup_app(ctx: Context, args: AppLookup) -> AppFound:
    """The app ``args`` names, read from the service; raises ``MixpeekError`` in a sentence
    when there is none."""
    problem = args.problem()
    if problem is not None:
        raise MixpeekError(f"getApp: {problem}.")
    app_id = args.app_id
    if app_id is None:
        app_id = ctx.api.app_id_of_slug(args.slug or "")
        if app_id is None:
            raise MixpeekError(f"getApp: this organization has no app with the slug {args.slug}.")
    try:
        app = ctx.api.get_app(app_id)
    except NotFoundError:
        raise MixpeekError(f"getApp: this organization has no app {app_id}.") from None
    return AppFound(
        app_id=app.app_id, slug=app.slug, url=_url(app), environments=dict(app.environments)
    )
