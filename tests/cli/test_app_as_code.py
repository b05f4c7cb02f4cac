"""The whole app as code under the real Pulumi CLI and engine: App, AppDomain and
AppDomainVerification declared beside the AppDeploy and AppPromotion that take the App's id, in
Pulumi YAML (native provider) and Python (dynamic resources); a title change published in one
PATCH; drift found by refresh and put back by up; import of an App and an AppDomain; a domain
whose DNS never verifies; and no secret value in plain anywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from scripts.pulumi_cli import Cli
from tests.cli.conftest import example, open_native_stack, open_stack
from tests.cli.test_native_provider import assert_no_key
from tests.emulator_fixture import EmulatorHandle

pytestmark = pytest.mark.cli

PASSWORD = "correct-horse-battery"
BUILD_SECRET = "sk-build-1f2e3d"
DOMAIN = "search.acme.com"
RECORD = "_mixpeek-verify.search.acme.com"


def site_on_its_host(emulator: EmulatorHandle, slug: str) -> str:
    """Production of ``slug`` at the root of a host of its own, as the service serves it."""
    return f"http://{slug}.localhost:{httpx.URL(emulator.url).port}"


def test_yaml_app_goes_up_publishes_a_title_change_and_puts_drift_back(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stack = open_native_stack(cli, emulator, example("native-app-domain", tmp_path), tmp_path)
    stack.set_config("password", PASSWORD, secret=True)
    stack.set_config("verifyPollSeconds", "1")
    stack.set_config("productionSite", site_on_its_host(emulator, "acme-search"))

    up = stack.up()
    assert up.ok, up.output
    assert up.summary == {"create": 6}  # and the stack
    out = stack.outputs()
    app_id = out["appId"]
    app = emulator.records().apps[app_id]
    assert (app.slug, app.title) == ("acme-search", "Acme Search")
    assert (out["txtName"], out["domainStatus"], out["verified"]) == (RECORD, "active", True)
    assert app.environments["production"]["deploy_id"] == app.environments["staging"]["deploy_id"]
    assert stack.preview(expect_no_changes=True).ok

    patches = emulator.count("PATCH", f"/v1/apps/{app_id}")
    stack.set_config("title", "Acme Search 2")
    changed = stack.up()
    assert changed.ok, changed.output
    assert changed.summary == {"same": 5, "update": 1}
    assert emulator.count("PATCH", f"/v1/apps/{app_id}") == patches + 1
    assert stack.outputs()["appId"] == app_id
    app = emulator.records().apps[app_id]
    assert (app.title, app.unpublished) == ("Acme Search 2", False)  # published with it

    with emulator.api() as api:
        api.patch(
            f"/v1/apps/{app_id}", json={"meta": {"title": "Renamed by hand"}, "publish": True}
        )
    refreshed = stack.refresh()
    assert refreshed.ok, refreshed.output
    assert refreshed.summary.get("update") == 1, refreshed.output
    assert stack.resources()["search-app"]["outputs"]["meta"]["title"] == "Renamed by hand"
    restored = stack.up()
    assert restored.ok, restored.output
    assert emulator.records().apps[app_id].title == "Acme Search 2"
    assert stack.preview(expect_no_changes=True).ok

    # The program's build secret is plain text in Pulumi.yaml: the App kept it secret anyway.
    for value in (PASSWORD, "sk-demo", emulator.api_key):
        assert_no_key(stack, value, tmp_path / "backend")


def test_python_app_goes_up_and_then_has_nothing_to_do(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stack = open_stack(cli, emulator, example("app-domain", tmp_path), tmp_path)
    # Secret in the stack's config (plain config is kept plain by the engine itself, in the
    # dynamic provider's record); the program reads them with config.get, as plain strings.
    stack.set_config("password", PASSWORD, secret=True)
    stack.set_config("searchKey", BUILD_SECRET, secret=True)
    stack.set_config("verifyPollSeconds", "0.2")
    stack.set_config("sitesUrl", f"{emulator.url}/_sites")

    up = stack.up()
    assert up.ok, up.output
    assert up.summary == {"create": 6}  # and the stack
    out = stack.outputs()
    app = emulator.records().apps[out["app_id"]]
    assert [d.domain for d in app.domains] == [DOMAIN]
    assert (out["domain_status"], out["verified"]) == ("active", True)
    assert app.environments["production"]["deploy_id"] == app.environments["staging"]["deploy_id"]
    assert stack.preview(expect_no_changes=True).ok

    state = stack.resources()["search-app"]
    backend = tmp_path / "backend"
    for value in (PASSWORD, BUILD_SECRET, emulator.api_key):
        assert_no_key(stack, value, backend)
    assert "ciphertext" in str(state["outputs"]["auth_config"])


IMPORTED = """\
name: imported-app
runtime: yaml
config:
  appId:
    type: string
resources:
  app:
    type: mixpeek:index:App
    properties:
      slug: imported-site
      meta:
        title: Imported Site
  domain:
    type: mixpeek:index:AppDomain
    properties:
      appId: ${appId}
      domain: search.acme.com
"""
VERIFIED = """\
  verified:
    type: mixpeek:index:AppDomainVerification
    properties:
      appId: ${appId}
      domain: search.acme.com
      timeoutSeconds: 2
      pollIntervalSeconds: 0.2
    options:
      dependsOn:
        - ${domain}
"""


def test_import_of_an_app_and_its_domain_then_a_verification_that_never_finds_the_record(
    cli: Cli, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    with emulator.api() as api:
        created = api.post(
            "/v1/apps", json={"slug": "imported-site", "meta": {"title": "Imported Site"}}
        )
        created.raise_for_status()
        app_id = created.json()["app_id"]
        api.post(f"/v1/apps/{app_id}/domains", json={"domain": DOMAIN}).raise_for_status()
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(IMPORTED)
    stack = open_native_stack(cli, emulator, project, tmp_path)
    stack.set_config("appId", app_id)
    writes = sum(emulator.count(m, "/v1/*") for m in ("POST", "PATCH", "DELETE"))

    for kind, name, id_ in (("App", "app", app_id), ("AppDomain", "domain", f"{app_id}/{DOMAIN}")):
        imported = stack.run(
            "import",
            f"mixpeek:index:{kind}",
            name,
            id_,
            "--yes",
            "--generate-code=false",
            check=False,
        )
        assert imported.ok, imported.output
        assert "warning" not in imported.output.lower(), imported.output
    assert stack.resources()["app"]["id"] == app_id
    assert stack.preview(expect_no_changes=True).ok
    assert sum(emulator.count(m, "/v1/*") for m in ("POST", "PATCH", "DELETE")) == writes

    emulator.hold_dns(DOMAIN)
    (project / "Pulumi.yaml").write_text(IMPORTED + VERIFIED)
    failed = stack.up()
    assert not failed.ok
    token = emulator.records().apps[app_id].domains[0].verification_token
    sentence = next(line for line in failed.lines if RECORD in line)
    assert f"mixpeek-site-verification={token}" in sentence, failed.output
    assert "verifying" in sentence, failed.output
