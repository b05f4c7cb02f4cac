"""An app environment read from answers in the official shape, and from odd ones: the server's
own values win, and an odd entry breaks only the resources of its own environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.errors import ResponseValidationError
from mixpeek_pulumi.kinds.environments import AppEnvironment, refresh
from mixpeek_pulumi.kinds.spec import AppDeployState
from mixpeek_pulumi.run.context import Context
from tests.scripted_server import Reply, scripted_server

APP: dict[str, Any] = {
    "app_id": "app_1",
    "slug": "shop",
    "url": "https://shop.mxp.co",
    "environments": {
        "staging": {
            "deploy_id": "dep_2",
            "asset_prefix": "apps/app_1/v2/",
            "url": "https://pr.example",
        },
        "production": "not an object",
    },
    "versions": [
        {"version": 2, "asset_prefix": "apps/app_1/v2/", "message": "two"},
        {"asset_prefix": "apps/app_1/v1/", "message": "a record without its number"},
    ],
}


@pytest.fixture
def api() -> Iterator[MixpeekClient]:
    with scripted_server() as server:
        server.default[("GET", "/v1/apps/app_1")] = Reply(200, APP)
        with MixpeekClient(api_key="sk_test_envs_123456", base_url=server.url) as client:
            yield client


def state(environment: str) -> AppDeployState:
    return AppDeployState(app_id="app_1", bundle="/b", environment=environment, deploy_id="dep_2")


def test_the_served_version_and_the_servers_own_url(api: MixpeekClient) -> None:
    env = AppEnvironment(api, "app_1", "staging")
    app = env.app()
    assert env.served_version(app) == 2  # matched by asset prefix: records name no deploy
    now = refresh(Context("AppDeploy", "site", api, lambda _line: None), state("staging"))
    assert now is not None
    assert (now.live, now.url) == (True, "https://pr.example")


def test_an_odd_entry_is_an_error_naming_the_field_for_its_environment_only(
    api: MixpeekClient,
) -> None:
    with pytest.raises(ResponseValidationError) as info:
        refresh(Context("AppDeploy", "site", api, lambda _line: None), state("production"))
    assert str(info.value) == (
        "Mixpeek API answered GET /v1/apps/app_1 with HTTP 200 but the body is not what the API "
        "documents: environments.production is a str, not an object."
    )


def test_urls_are_derived_from_the_apps_url_when_the_server_sends_none() -> None:
    with scripted_server() as server:
        body = {**APP, "environments": {"staging": {"deploy_id": "d", "asset_prefix": "p"}}}
        server.default[("GET", "/v1/apps/app_1")] = Reply(200, body)
        with MixpeekClient(api_key="sk_test_envs_123456", base_url=server.url) as api:
            app = AppEnvironment(api, "app_1", "staging").app()
            assert AppEnvironment(api, "app_1", "staging").url(app) == "https://staging-shop.mxp.co"
            assert AppEnvironment(api, "app_1", "production").url(app) == "https://shop.mxp.co"
