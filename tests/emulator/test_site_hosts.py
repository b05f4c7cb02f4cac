"""Each environment's live site at the root of a host of its own, as the service serves
``{slug}.mxp.co``: ``<slug>.<environment>.localhost`` (production also ``<slug>.localhost``)
and an active custom domain, beside ``/_sites/``; the API keeps the emulator's own address."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.schema import assert_matches

SITE = {
    "dist/index.html": '<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>',
    "dist/assets/app-1a2b.js": "document.title = 'built';",
    "dist/docs/index.html": "<h1>docs</h1>",
}


def deploy(emulator: EmulatorHandle, app_id: str, environment: str, files: dict[str, str]) -> None:
    key = emulator.upload_bundle(app_id, files)
    before = emulator.served_version(app_id, environment)
    with emulator.api() as c:
        answer = c.post(
            f"/v1/apps/{app_id}/deploy", json={"environment": environment, "bundle_s3_key": key}
        )
        answer.raise_for_status()
    assert wait_until(lambda: emulator.served_version(app_id, environment) not in (None, before))


def at(emulator: EmulatorHandle, host: str, path: str = "/", method: str = "GET") -> httpx.Response:
    """A request to the emulator's own address naming ``host``, as a browser sends it."""
    return httpx.request(method, f"{emulator.url}{path}", headers={"Host": host}, timeout=10)


@pytest.fixture
def sites(emulator: EmulatorHandle) -> str:
    """The app ``my-site`` with a build in each environment; returns its id."""
    app_id = emulator.create_app("my-site")
    deploy(emulator, app_id, "staging", {**SITE, "dist/env.txt": "staging"})
    deploy(emulator, app_id, "production", {**SITE, "dist/env.txt": "production"})
    return app_id


def test_each_environment_is_served_at_the_root_of_its_own_host(
    emulator: EmulatorHandle, sites: str
) -> None:
    port = emulator.url.rpartition(":")[2]
    for host, environment in [
        (f"my-site.staging.localhost:{port}", "staging"),
        (f"my-site.production.localhost:{port}", "production"),
        (f"my-site.localhost:{port}", "production"),
        ("MY-SITE.Localhost.", "production"),  # names ignore case; a final dot is the root
    ]:
        assert at(emulator, host, "/env.txt").text == environment, host
        page = at(emulator, host)
        assert (page.status_code, page.text) == (200, SITE["dist/index.html"])
        script = at(emulator, host, "/assets/app-1a2b.js")  # the absolute path the page names
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.text == SITE["dist/assets/app-1a2b.js"]
        assert at(emulator, host, "/docs/").text == "<h1>docs</h1>"
    # The same files as before, on the emulator's own address.
    assert httpx.get(f"{emulator.url}/_sites/{sites}/staging/env.txt").text == "staging"


def test_a_site_host_is_the_sites_whatever_the_path_and_the_api_stays_put(
    emulator: EmulatorHandle, sites: str
) -> None:
    host = "my-site.localhost"
    api_path = at(emulator, host, "/v1/apps")
    head = at(emulator, host, "/env.txt", "HEAD")
    post = at(emulator, host, "/", "POST")
    with emulator.api() as c:
        by_address = c.get("/v1/apps")
        by_name = c.get("/v1/apps", headers={"Host": "localhost"})
    assert api_path.status_code == 404
    assert (
        api_path.text
        == "v1/apps is not in the version production serves: the build has no such file.\n"
    )
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "10", b"")
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
    assert (
        post.text
        == "POST is not served here: my-site.localhost is a static site; use GET or HEAD.\n"
    )
    for answer in (by_address, by_name):
        assert answer.status_code == 200
        assert_matches(answer.json(), "ListAppsResponse")


@pytest.mark.parametrize(
    ("host", "said"),
    [
        (
            "nobody.localhost",
            "nobody.localhost names no app: no app has the slug nobody; GET /v1/apps lists the "
            "apps and their slugs.\n",
        ),
        (
            "www.my-site.staging.localhost",
            "www.my-site.staging.localhost names no site: a site's host is "
            "<slug>.<environment>.localhost or, for production, <slug>.localhost.\n",
        ),
        (
            "my-site.preview.localhost",
            "my-site.preview.localhost names no environment: preview is neither production nor "
            "staging; use my-site.production.localhost (or my-site.localhost) or "
            "my-site.staging.localhost.\n",
        ),
    ],
)
def test_a_host_that_names_no_site_says_why(
    emulator: EmulatorHandle, sites: str, host: str, said: str
) -> None:
    answer = at(emulator, host)
    assert (answer.status_code, answer.text) == (404, said)


def test_a_renamed_app_moves_to_its_new_host(emulator: EmulatorHandle, sites: str) -> None:
    with emulator.api() as c:
        c.patch(f"/v1/apps/{sites}", json={"slug": "new-site", "publish": True}).raise_for_status()
    assert at(emulator, "new-site.localhost", "/env.txt").text == "production"
    assert at(emulator, "my-site.localhost", "/env.txt").status_code == 404


def test_an_active_custom_domain_serves_production(emulator: EmulatorHandle, sites: str) -> None:
    with emulator.api() as c:
        c.post(f"/v1/apps/{sites}/domains", json={"domain": "shop.example.com"}).raise_for_status()
        pending = at(emulator, "shop.example.com", "/env.txt")
        c.post(f"/v1/apps/{sites}/domains/shop.example.com/verify").raise_for_status()

        def active() -> bool:
            [domain] = c.get(f"/v1/apps/{sites}/domains").json()["domains"]
            return bool(domain["status"] == "active")

        assert wait_until(active)
    # Before it is live the name is no site's, so the API answers it (here: no such route).
    assert pending.status_code == 404
    assert pending.json()["error"]["type"] == "NotFoundError"
    assert at(emulator, "shop.example.com:443", "/env.txt").text == "production"


def test_an_app_taken_down_serves_nothing_until_it_is_back(
    emulator: EmulatorHandle, sites: str
) -> None:
    with emulator.api() as c:
        down = c.patch(f"/v1/apps/{sites}", json={"is_active": False, "publish": True})
        hidden = at(emulator, "my-site.staging.localhost", "/env.txt")
        hidden_path = httpx.get(f"{emulator.url}/_sites/{sites}/production/env.txt")
        up = c.patch(f"/v1/apps/{sites}", json={"is_active": True, "publish": True})
    assert_matches(down.json(), "AppResponse")
    [warning] = down.json()["warnings"]
    assert warning.startswith("is_active: false takes the app down: https://my-site.mxp.co and")
    assert "warnings" not in up.json()
    assert hidden.status_code == hidden_path.status_code == 404
    assert "the app is taken down (is_active false)" in hidden.text
    assert at(emulator, "my-site.staging.localhost", "/env.txt").text == "staging"
