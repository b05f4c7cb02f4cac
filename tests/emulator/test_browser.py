"""A Vite-style build, deployed to the emulator through the API, loads in headless Chromium at
its environment's host URL with no failed request: its page names its script, stylesheet and
icon by absolute path (Vite's default ``base: "/"``) and its script fetches ``/data.json``.
The same build under ``/_sites/`` fails, which is why the host exists and shows that the
check sees a failure."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chromium import CHROMIUM, Browser, PageLoad
from tests.emulator_fixture import EmulatorHandle, wait_until

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed, so the headless browser test cannot run: `make setup` "
    "installs Debian's chromium package when run as root (or: apt-get install -y chromium).",
)

DATA = {"message": "hello from data.json", "items": [1, 2, 3]}
# `npm create vite` and `npm run build`, zipped as the docs say (`zip -r app.zip dist/`).
BUILD = {
    "dist/index.html": (
        "<!doctype html>\n<html lang='en'>\n<head>\n<meta charset='UTF-8' />\n"
        "<link rel='icon' type='image/svg+xml' href='/vite.svg' />\n"
        "<title>Vite App</title>\n"
        "<script type='module' crossorigin src='/assets/index-abc123.js'></script>\n"
        "<link rel='stylesheet' crossorigin href='/assets/index-abc123.css'>\n"
        "</head>\n<body><div id='app'>loading</div></body>\n</html>\n"
    ),
    "dist/assets/index-abc123.js": (
        "const app = document.querySelector('#app');\n"
        "const data = await (await fetch('/data.json')).json();\n"
        "app.textContent = `Loaded ${data.items.length} items: ${data.message}`;\n"
    ),
    "dist/assets/index-abc123.css": "#app { color: rgb(1, 2, 3); }\n",
    "dist/vite.svg": "<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/>",
    "dist/data.json": json.dumps(DATA),
}
WRITTEN = f"Loaded 3 items: {DATA['message']}"
# Resolves once the script has written its text into the page.
SCRIPT_DONE = """new Promise(resolve => {
  const done = () => document.querySelector('#app').textContent.startsWith('Loaded') &&
    (resolve(document.documentElement.outerHTML), true);
  if (!done()) new MutationObserver(done).observe(document.body, {subtree: true,
    childList: true, characterData: true});
})"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def deployed(emulator: EmulatorHandle) -> str:
    """The build, deployed to production of the app ``vite-site`` through the API."""
    app_id = emulator.create_app("vite-site")
    key = emulator.upload_bundle(app_id, BUILD)
    with emulator.api() as c:
        answer = c.post(
            f"/v1/apps/{app_id}/deploy", json={"environment": "production", "bundle_s3_key": key}
        )
        answer.raise_for_status()
    assert wait_until(lambda: emulator.served_version(app_id, "production") == 1)
    return app_id


def paths(page: PageLoad) -> list[str]:
    return sorted(urlsplit(url).path for url in page.requested.values())


def test_a_vite_build_loads_at_its_host_with_no_failed_request(
    emulator: EmulatorHandle, deployed: str, browser: Browser
) -> None:
    port = urlsplit(emulator.url).port
    page = browser.load(f"http://vite-site.production.localhost:{port}/")
    assert page.failed() == [], browser.log_tail()
    html = browser.evaluate(SCRIPT_DONE, page)
    # The icon is asked for once the page is loaded, so its request is waited for by name.
    browser.wait(page, lambda: page.ended("/vite.svg"), time.monotonic() + 30)
    colour = browser.evaluate("getComputedStyle(document.querySelector('#app')).color", page)

    assert page.failed() == [], browser.log_tail()
    assert page.errors == []
    assert paths(page) == [
        "/",
        "/assets/index-abc123.css",
        "/assets/index-abc123.js",
        "/data.json",
        "/vite.svg",
    ]
    assert {urlsplit(url).hostname for url in page.requested.values()} == {
        "vite-site.production.localhost"
    }
    # Every answer came from the emulator over loopback.
    assert all(
        ipaddress.ip_address(a["remoteIPAddress"]).is_loopback for a in page.answers.values()
    )
    assert f'<div id="app">{WRITTEN}</div>' in html  # the script ran and its fetch answered
    assert colour == "rgb(1, 2, 3)"  # the stylesheet applied


def test_the_same_build_under_sites_fails_and_the_check_says_so(
    emulator: EmulatorHandle, deployed: str, browser: Browser
) -> None:
    page = browser.load(f"{emulator.url}/_sites/{deployed}/production/")
    browser.wait(page, lambda: page.ended("/vite.svg"), time.monotonic() + 30)
    text = browser.evaluate("document.querySelector('#app').textContent", page)
    assert text == "loading"  # the script never ran
    assert page.failed() == [
        f"{emulator.url}/assets/index-abc123.css answered 404",
        f"{emulator.url}/assets/index-abc123.js answered 404",
        f"{emulator.url}/vite.svg answered 404",
    ]
