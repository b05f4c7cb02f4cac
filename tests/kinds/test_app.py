"""App in process: create, one published PATCH per update under the same id, drift read back
(the masked fields by what was sent, the service's ``asset_prefix`` never), delete, import,
and the inputs ``check`` refuses before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from mixpeek_pulumi.api.models import BuildConfig, UpdateAppRequest
from mixpeek_pulumi.errors import MixpeekError
from mixpeek_pulumi.kinds.app import AppInputs, AppState
from mixpeek_pulumi.kinds.spec import secret_paths
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.kinds.harness import CheckFailed

PASSWORD = "correct-horse-battery-staple-81"
SECRET = "serp_live_4be1c7d2a9"


def settings(slug: str = "acme-search", **more: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "meta": {"title": "Acme search", "description": "Find things"},
        "auth_config": {"mode": "password", "password": PASSWORD},
        "build_config": {
            "env_vars": {"PUBLIC_COLOR": "blue"},
            "secrets": {"SERPAPI_KEY": SECRET},
            "api_allow": [{"pattern": "/v1/retrievers/*/execute", "methods": ["POST"]}],
        },
        "monitoring_config": {"sentry_enabled": False},
        **more,
    }


def writes(emulator: EmulatorHandle) -> int:
    return sum(emulator.count(m, "/v1/apps*") for m in ("POST", "PATCH", "DELETE"))


def test_create_sends_the_settings_and_keeps_the_masked_ones_out_of_drift(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app = resource("App", "site")
    out = app.up(**settings())
    record = emulator.records().apps[out["app_id"]]
    assert (record.slug, record.title, record.meta) == (
        "acme-search",
        "Acme search",
        {"description": "Find things"},
    )
    assert record.settings["auth_config"]["password"] == PASSWORD
    assert record.settings["build_config"]["secrets"] == {"SERPAPI_KEY": SECRET}
    assert record.settings["monitoring_config"]["sentry_enabled"] is False
    assert out["url"] == "https://acme-search.mxp.co"
    assert out["version"] == 0

    before = dict(out)
    assert app.refresh() == before  # masked values compared by what was sent: no drift
    assert "differs" not in app.said()
    assert PASSWORD not in app.said() and SECRET not in app.said()


def test_an_update_is_one_published_patch_of_the_same_app_and_keeps_asset_prefix(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app = resource("App", "site")
    first = app.up(**settings())
    record = emulator.records().apps[first["app_id"]]
    record.settings["build_config"]["asset_prefix"] = "apps/x/v3/"  # as promotion writes it
    patches = emulator.count("PATCH", "/v1/apps/*")

    changed = settings(meta={"title": "Acme search 2"}, monitoring_config=None)
    out = app.up(**changed)

    assert out["app_id"] == first["app_id"]
    assert emulator.count("PATCH", "/v1/apps/*") == patches + 1
    assert emulator.count("POST", "/v1/apps") == 1
    record = emulator.records().apps[first["app_id"]]
    assert record.title == "Acme search 2"
    assert record.unpublished is False  # publish: true
    assert "monitoring_config" not in record.settings  # a removed setting is cleared
    assert record.settings["build_config"]["asset_prefix"] == "apps/x/v3/"
    assert app.refresh() == out  # asset_prefix is the service's: never drift


def test_a_new_slug_is_checked_first_and_a_taken_one_changes_nothing(
    resource: Make, emulator: EmulatorHandle
) -> None:
    emulator.create_app("taken-slug")
    app = resource("App", "site")
    first = app.up(**settings())
    sent = writes(emulator)
    with pytest.raises(MixpeekError) as info:
        app.up(**settings("taken-slug", meta={"title": "Renamed"}))
    assert str(info.value).splitlines()[0] == (
        "App 'site': the slug taken-slug is taken (slugs are unique across all organizations), "
        "so nothing was changed; choose another slug."
    )
    assert writes(emulator) == sent + 1  # the dry run only
    assert emulator.records().apps[first["app_id"]].title == "Acme search"

    out = app.up(**settings("acme-renamed"))
    assert out["app_id"] == first["app_id"]
    assert out["url"] == "https://acme-renamed.mxp.co"


def test_refresh_reports_drift_of_each_declared_setting(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app = resource("App", "site")
    out = app.up(**settings())
    with emulator.api() as c:
        c.patch(
            f"/v1/apps/{out['app_id']}",
            json={
                "slug": "moved-away",
                "meta": {"title": "Theirs"},
                "is_active": False,
                "build_config": {"secrets": {"SERPAPI_KEY": "other", "NEW_KEY": "x"}},
                "publish": True,
            },
        ).raise_for_status()
    now = app.refresh()
    assert now is not None
    assert now["slug"] == "moved-away"
    assert now["meta"]["title"] == "Theirs"
    assert now["is_active"] is False
    assert now["build_config"]["secrets"] == {"SERPAPI_KEY": SECRET, "NEW_KEY": "***"}
    assert now["build_config"]["env_vars"] is None
    assert now["auth_config"]["password"] == PASSWORD
    assert "differs from the last update in slug, meta, build_config, is_active" in app.said()
    diff = app.kind_.diff(app.kind_.state.load(now), app.check(**settings()), set())
    assert set(diff.changes) == {"slug", "meta", "build_config", "is_active"}
    assert not diff.replaces


def test_delete_removes_the_app_and_a_refresh_then_finds_it_gone(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app = resource("App", "site")
    out = app.up(**settings())
    saved = dict(out)
    app.destroy()
    assert out["app_id"] not in emulator.records().apps
    app.state = saved
    assert app.refresh() is None
    app.state = saved
    app.destroy()  # already gone: no error
    assert "already gone" in app.said()


def test_import_reads_the_app_by_its_id(resource: Make, emulator: EmulatorHandle) -> None:
    created = resource("App", "site").up(**settings())
    app = resource("App", "adopted")
    found = app.imported(created["app_id"])
    assert found is not None
    assert (found["app_id"], found["slug"], found["url"]) == (
        created["app_id"],
        "acme-search",
        "https://acme-search.mxp.co",
    )
    assert found["auth_config"]["mode"] == "password"
    assert found["auth_config"]["password"] is None
    assert found["build_config"]["secrets"] == {"SERPAPI_KEY": "***"}
    assert app.imported("app_missing") is None
    with pytest.raises(MixpeekError, match="import id"):
        app.imported("../etc")


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"slug": "Acme_Search"}, "slug", "'Acme_Search' is not a slug: 3 to 60 lowercase"),
        ({"slug": "ab"}, "slug", "is not a slug"),
        ({"auth_config": {"mode": "magic"}}, "auth_config.mode", "must be one of 'public'"),
        (
            {"build_config": {"env_vars": {"1BAD-NAME": "x"}}},
            "build_config.env_vars",
            "'1BAD-NAME' is not a variable name",
        ),
        ({"meta": {"description": "no title"}}, "meta.title", "is required"),
    ],
)
def test_check_refuses_bad_input_in_a_sentence_before_anything_is_sent(
    resource: Make, emulator: EmulatorHandle, change: dict[str, Any], field: str, says: str
) -> None:
    app = resource("App", "site")
    sent = writes(emulator)
    with pytest.raises(CheckFailed) as info:
        app.up(**{**settings(), **change})
    (failure,) = info.value.failures
    assert failure.field == field
    assert says in failure.reason
    assert failure.reason.endswith(".")
    assert writes(emulator) == sent


def test_secrets_never_reach_an_error_or_a_line(resource: Make, emulator: EmulatorHandle) -> None:
    app = resource("App", "site")
    app.up(**settings())
    emulator.fault(
        method="PATCH",
        path="/v1/apps/*",
        status=400,
        body={"error": {"message": f"bad password {PASSWORD} or secret {SECRET}"}},
    )
    with pytest.raises(MixpeekError) as info:
        app.up(**settings(meta={"title": "Again"}))
    text = str(info.value)
    assert PASSWORD not in text and SECRET not in text
    assert "[REDACTED]" in text
    assert PASSWORD not in app.said() and SECRET not in app.said()


def test_the_models_say_where_the_secrets_are_for_the_front_doors() -> None:
    assert secret_paths(AppInputs) == ("auth_config.password", "build_config.secrets")
    assert secret_paths(AppState) == ("auth_config.password", "build_config.secrets")


def test_an_update_sends_a_removed_setting_as_null_and_others_left_out() -> None:
    request = UpdateAppRequest(slug="a-b", auth_config=None, publish=True)
    assert request.to_json() == {"slug": "a-b", "auth_config": None, "publish": True}
    assert "asset_prefix" not in BuildConfig.model_fields


def test_a_promotion_s_asset_prefix_alone_is_no_build_config(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app = resource("App", "site")
    out = app.up(slug="plain-app", meta={"title": "Plain"})
    emulator.records().apps[out["app_id"]].settings["build_config"] = {"asset_prefix": "p/"}
    assert app.refresh() == out


def test_a_create_refused_for_a_slug_the_organization_holds_names_the_app_to_import(
    resource: Make, emulator: EmulatorHandle
) -> None:
    held = emulator.create_app("acme-search")  # a create whose answer was lost, say
    with pytest.raises(MixpeekError) as info:
        resource("App", "site").up(**settings())
    assert str(info.value).splitlines()[0] == (
        "App 'site': the slug acme-search is taken (slugs are unique across all "
        f"organizations), so no app was created: this organization's app {held} has it (an "
        "earlier run whose answer was lost, or another program); adopt it with `pulumi import` "
        f"and the id {held}, or choose another slug."
    )
