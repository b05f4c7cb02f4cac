"""The app environments both app resources act on: URLs, served versions, refresh, rollback."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ReadResult

from ..client import MixpeekClient
from ..errors import NotFoundError
from ..models import AppResponse, Environment, VersionRecord
from ._common import MixpeekProvider, as_int, echo, named_errors


def environment_url(app: AppResponse, environment: str) -> str:
    state = app.environment(environment)
    extra = state.model_extra or {}
    if isinstance(extra.get("url"), str):
        return str(extra["url"])
    base = app.url or f"https://{app.slug}.mxp.co"
    if environment == "production":
        return base
    scheme, _, host = base.partition("://")
    return f"{scheme}://{environment}-{host}"


def served_record(api: MixpeekClient, app: AppResponse, environment: str) -> VersionRecord | None:
    """The version the environment serves: matched by deploy id, else by asset prefix (the
    version history may omit deploy ids)."""
    state = app.environment(environment)
    if not state.deploy_id:
        return None
    for record in api.list_versions(app.app_id).versions:
        if record.deploy_id == state.deploy_id or (
            state.asset_prefix and record.asset_prefix == state.asset_prefix
        ):
            return record
    return None


def served_version(api: MixpeekClient, app: AppResponse, environment: str) -> int | None:
    state = app.environment(environment)
    if state.deploy_id is not None and state.version is not None:
        return state.version
    record = served_record(api, app, environment)
    return record.version if record else None


def serving_tagged(api: MixpeekClient, app: AppResponse, environment: str, tag: str) -> str | None:
    """The deploy the environment serves, if its version carries ``tag``."""
    record = served_record(api, app, environment)
    if record is None or not record.message or tag not in record.message:
        return None
    return app.environment(environment).deploy_id


def version_for(
    api: MixpeekClient, app: AppResponse, environment: str, deploy_id: str, tag: str
) -> int | None:
    """The version a deploy produced: the one served, else the newest in the history that
    names the deploy or carries its tag."""
    if app.environment(environment).deploy_id == deploy_id:
        served = served_version(api, app, environment)
        if served is not None:
            return served
    for record in api.list_versions(app.app_id).versions:
        if record.deploy_id == deploy_id or (record.message and tag in record.message):
            return record.version
    return None


class EnvironmentProvider(MixpeekProvider):
    """Refresh and destroy for resources that put a deploy into an app environment."""

    what = "deploy"

    @named_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        name = str(props.get("resource_name") or id_)
        with self.client(props.get("base_url"), name) as api:
            try:
                app = api.get_app(str(props["app_id"]))
            except NotFoundError:
                return ReadResult(None, {})
        env = str(props.get("environment") or "production")
        live = app.environment(env).deploy_id == props.get("deploy_id")
        return ReadResult(id_, {**props, "live": live, "url": environment_url(app, env)})

    @named_errors
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """``on_delete="rollback"``: restore the version served before, unless someone else
        deployed since (their deploy is never clobbered)."""
        if props.get("on_delete") != "rollback":
            return
        name = str(props.get("resource_name") or id_)
        say = echo(self.kind, name)
        env: Environment = "staging" if props.get("environment") == "staging" else "production"
        previous = as_int(props.get("previous_version"))
        ours = props.get("deploy_id")
        with self.client(props.get("base_url"), name) as api:
            try:
                app = api.get_app(str(props["app_id"]))
            except NotFoundError:
                return
            if app.environment(env).deploy_id != ours:
                say(f"{env} no longer serves deploy {ours}; nothing to roll back")
            elif previous is None:
                say(f"{env} served nothing before this {self.what}; deploy {ours} stays live")
            else:
                try:
                    api.restore_version(app.app_id, previous, env)
                except NotFoundError:
                    say(f"version {previous} no longer exists; deploy {ours} stays live")
                    return
                say(f"rolled {env} back to version {previous}")
