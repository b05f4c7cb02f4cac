"""Apps and their custom domains as the official SDK defines them: an update published in one
call, the fields the service masks or owns, one app per slug, and a domain's whole life from
added to active, held in DNS, deleted on the way, and carried across restarts."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_emulator.app import create_app
from mixpeek_emulator.server import RunningEmulator, start_in_thread
from mixpeek_emulator.state import Timing, iso
from scripts.make_upgrade_fixture import FIXTURE
from tests.clock import SteppedClock
from tests.emulator_fixture import EmulatorHandle, wait_until
from tests.schema import assert_matches

KEY = "sk_test_DOMAINS_KEY_0b7e61"
AUTH = {"Authorization": f"Bearer {KEY}"}
WALL = 1_800_000_000.0
CHECK, TLS = 30.0, 60.0  # the worker's DNS check interval and certificate time, in tests
TIMING = Timing(0.0, 0.0, 0.0, dns_check_seconds=CHECK, tls_seconds=TLS)
SECRET = "sk-live-NEVER-SHOWN-4d2c"
PASSWORD = "hunter2-NEVER-SHOWN"


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=AUTH, timeout=30)


def start(data: Path, clock: SteppedClock, apps: tuple[str, ...] = ("my-site",)) -> RunningEmulator:
    return start_in_thread(
        create_app(api_key=KEY, data_dir=data, timing=TIMING, apps=apps, clock=clock)
    )


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[tuple[str, SteppedClock]]:
    """An emulator whose clocks the test moves, with the app ``app_my_site``."""
    clock = SteppedClock(WALL, 100.0)
    running = start(tmp_path / "data", clock)
    try:
        yield running.url, clock
    finally:
        running.stop()


def domain_of(url: str, name: str, app_id: str = "app_my_site") -> dict[str, Any]:
    """The domain as the list route shows it, checked against ``DomainResponse``; and as the
    app shows it, checked against ``CustomDomainConfig``: both must agree."""
    with api(url) as c:
        listed = c.get(f"/v1/apps/{app_id}/domains").json()
        app = c.get(f"/v1/apps/{app_id}").json()
    assert_matches(listed, "ListDomainsResponse")
    assert_matches(app, "AppResponse")
    [found] = [d for d in listed["domains"] if d["domain"] == name]
    [config] = [d for d in app["custom_domains"] if d["domain"] == name]
    assert_matches(found, "DomainResponse")
    assert {k: config[k] for k in found} == found
    return {**config, **found}


def hold(url: str, **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{url}/_emulator/dns", json=body, timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


# ------------------------------------------------------------------------------ apps


def test_an_update_is_published_in_one_call_and_never_shows_a_secret(
    emulator: EmulatorHandle,
) -> None:
    with emulator.api() as c:
        created = c.post(
            "/v1/apps",
            json={
                "slug": "secret-site",
                "meta": {"title": "Secret"},
                "auth_config": {"mode": "password", "password": PASSWORD},
                "build_config": {"env_vars": {"VITE_MODE": "x"}, "secrets": {"SERP": SECRET}},
            },
        )
        app_id = created.json()["app_id"]
        draft = c.patch(f"/v1/apps/{app_id}", json={"meta": {"title": "Draft"}})
        nothing = c.patch(f"/v1/apps/{app_id}", json={"publish": False})
        published = c.patch(f"/v1/apps/{app_id}", json={"publish": True})
        both = c.patch(f"/v1/apps/{app_id}", json={"meta": {"title": "Live"}, "publish": True})
        hashed = c.patch(
            f"/v1/apps/{app_id}",
            json={"auth_config": {"mode": "password", "password_hash": "$2b$12$x"}},
        )
        read = c.get(f"/v1/apps/{app_id}")
        listed = c.get("/v1/apps")
    for answer in (created, draft, published, both, hashed, read):
        assert answer.status_code == 200, answer.text
        assert_matches(answer.json(), "AppResponse")
    assert created.json()["has_unpublished_changes"] is False
    assert created.json()["build_config"]["secrets"] == {"SERP": "***"}
    assert created.json()["auth_config"] == {"mode": "password"}
    assert (draft.json()["meta"]["title"], draft.json()["has_unpublished_changes"]) == (
        "Draft",
        True,
    )
    assert nothing.json()["has_unpublished_changes"] is True  # still the draft's
    assert published.json()["has_unpublished_changes"] is False
    assert published.json()["meta"]["title"] == "Draft"
    assert (both.json()["meta"]["title"], both.json()["has_unpublished_changes"]) == (
        "Live",
        False,
    )
    assert "password_hash" not in hashed.json()["auth_config"]  # "never exposed"
    every_answer = "".join(a.text for a in (created, draft, published, both, hashed, read, listed))
    assert SECRET not in every_answer and PASSWORD not in every_answer
    assert "$2b$12$x" not in every_answer


def test_a_patch_of_build_config_keeps_the_asset_prefix_promotion_wrote(
    emulator: EmulatorHandle,
) -> None:
    app_id = emulator.create_app("prefixed-site")
    key = emulator.upload_bundle(app_id, {"index.html": "<h1>p</h1>"})
    with emulator.api() as c:
        c.post(f"/v1/apps/{app_id}/deploy", json={"environment": "staging", "bundle_s3_key": key})
        assert wait_until(lambda: emulator.served_version(app_id, "staging") == 1)
        prefix = c.post(f"/v1/apps/{app_id}/promote").json()["asset_prefix"]

        def build_config(body: Any) -> Any:
            answer = c.patch(f"/v1/apps/{app_id}", json={"build_config": body, "publish": True})
            assert answer.status_code == 200, answer.text
            return answer.json()["build_config"]

        replaced = build_config({"env_vars": {"VITE_A": "1"}, "tailwind": False})
        nulled = build_config({"env_vars": None, "asset_prefix": None})
        cleared = build_config(None)
        sent = build_config({"asset_prefix": "apps/elsewhere/"})
    assert replaced == {"env_vars": {"VITE_A": "1"}, "tailwind": False, "asset_prefix": prefix}
    assert nulled == {"env_vars": None, "asset_prefix": prefix}
    assert cleared == {"asset_prefix": prefix}
    assert sent == {"asset_prefix": "apps/elsewhere/"}  # the contract lets a client set it


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/v1/apps", {"slug": "k-site", "meta": {"title": "t"}, "colour": 1}, "colour"),
        (
            "POST",
            "/v1/apps",
            {"slug": "k-site", "meta": {"title": "t", "colour": 1}},
            "meta.colour",
        ),
        (
            "POST",
            "/v1/apps",
            {"slug": "k-site", "meta": {"title": "t"}, "build_config": {"colour": 1}},
            "build_config.colour",
        ),
        ("PATCH", "/v1/apps/{app}", {"publish": True, "colour": 1}, "colour"),
        (
            "PATCH",
            "/v1/apps/{app}",
            {"auth_config": {"mode": "public", "colour": 1}},
            "auth_config.colour",
        ),
        ("POST", "/v1/apps/{app}/domains", {"domain": "a.example.com", "colour": 1}, "colour"),
    ],
)
def test_unknown_keys_are_refused_and_nothing_is_written(
    emulator: EmulatorHandle, method: str, path: str, body: dict[str, Any], where: str
) -> None:
    app_id = emulator.create_app("keyed-site")
    with emulator.api() as c:
        before = c.get(f"/v1/apps/{app_id}").json()
        answer = c.request(method, path.format(app=app_id), json=body)
        after = c.get(f"/v1/apps/{app_id}").json()
        apps = c.get("/v1/apps").json()["total_count"]
    assert answer.status_code == 422
    assert_matches(answer.json(), "ErrorResponse", "apps")
    [problem] = answer.json()["error"]["details"]["validation_errors"]
    assert (problem["type"], problem["location"]) == ("extra_forbidden", f"body.{where}")
    assert (after, apps) == (before, 1)


def test_two_apps_never_share_a_slug_even_asked_at_once(emulator: EmulatorHandle) -> None:
    statuses: list[int] = []

    def create() -> None:
        with emulator.api() as c:
            answer = c.post("/v1/apps", json={"slug": "one-slug", "meta": {"title": "t"}})
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other = emulator.create_app("other-slug")
    with emulator.api() as c:
        renamed = c.patch(f"/v1/apps/{other}", json={"slug": "one-slug", "publish": True})
        free = c.patch(f"/v1/apps/{other}", params={"dry_run": "true"}, json={"slug": "new-slug"})
        listed = c.get("/v1/apps", params={"slug": "one-slug"}).json()
    assert sorted(statuses) == [200] + [400] * 7
    assert renamed.status_code == 400
    assert renamed.json()["error"]["code"] == "slug_taken"
    assert "choose another" in renamed.json()["error"]["message"]
    assert (free.status_code, free.json()["slug"]) == (200, "other-slug")  # checked, not written
    assert listed["total_count"] == 1


# --------------------------------------------------------------------------- domains


def test_a_domain_goes_from_added_to_active_as_the_worker_finds_its_record(
    stepped: tuple[str, SteppedClock],
) -> None:
    url, clock = stepped
    with api(url) as c:
        added = c.post("/v1/apps/app_my_site/domains", json={"domain": "Shop.Example.com"})
    assert added.status_code == 200, added.text
    assert_matches(added.json(), "DomainResponse")
    token = added.json()["verification_token"]
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert added.json() == {
        "domain": "shop.example.com",  # DNS names ignore case
        "status": "pending",
        "verification_token": token,
        "cname_target": "my-site.mxp.co",
        "is_primary": False,
        "verified_at": None,
    }
    assert domain_of(url, "shop.example.com")["tls_cert_id"] is None

    clock.advance(3600)  # nothing happens before verification is asked for
    assert domain_of(url, "shop.example.com")["status"] == "pending"
    with api(url) as c:
        asked = c.post("/v1/apps/app_my_site/domains/SHOP.example.com/verify")
    assert (asked.status_code, asked.json()["status"]) == (200, "verifying")
    assert asked.json()["verified_at"] is None
    assert_matches(asked.json(), "DomainResponse")
    asked_at = clock.wall

    clock.advance(CHECK - 1)
    assert domain_of(url, "shop.example.com")["status"] == "verifying"
    clock.advance(1)  # the first check finds the record
    found = domain_of(url, "shop.example.com")
    assert (found["status"], found["verified_at"]) == ("provisioning_tls", iso(asked_at + CHECK))
    assert found["tls_cert_id"] is None
    clock.advance(TLS)
    live = domain_of(url, "shop.example.com")
    assert (live["status"], live["verified_at"]) == ("active", iso(asked_at + CHECK))
    assert live["tls_cert_id"] and live["tls_expires_at"] > live["verified_at"]

    with api(url) as c:  # a verification asked again changes nothing once proven
        again = c.post("/v1/apps/app_my_site/domains/shop.example.com/verify").json()
    assert (again["status"], again["verified_at"]) == ("active", live["verified_at"])


def test_a_dns_hold_keeps_a_domain_verifying_until_it_is_lifted(
    stepped: tuple[str, SteppedClock],
) -> None:
    url, clock = stepped
    assert hold(url, domain="held.example.com") == {
        "holds": [{"domain": "held.example.com", "misses": None}],
        "restarted": [],
    }
    with api(url) as c:
        for name in ("held.example.com", "free.example.com"):
            c.post("/v1/apps/app_my_site/domains", json={"domain": name}).raise_for_status()
            c.post(f"/v1/apps/app_my_site/domains/{name}/verify").raise_for_status()
    clock.advance(72 * 3600)  # the service's whole window of checks: none finds the record
    assert domain_of(url, "held.example.com")["status"] == "verifying"
    assert domain_of(url, "free.example.com")["status"] == "active"

    # Two more misses from now on, then the record is there.
    assert hold(url, domain="*.example.com", misses=2)["restarted"] == ["held.example.com"]
    clock.advance(2 * CHECK)
    assert domain_of(url, "held.example.com")["status"] == "verifying"
    clock.advance(CHECK)
    assert domain_of(url, "held.example.com")["status"] == "provisioning_tls"


def test_a_reset_lifts_every_dns_hold(stepped: tuple[str, SteppedClock]) -> None:
    url, clock = stepped
    hold(url)  # every domain, every check
    with api(url) as c:
        c.post("/v1/apps/app_my_site/domains", json={"domain": "a.example.com"})
        c.post("/v1/apps/app_my_site/domains/a.example.com/verify").raise_for_status()
    clock.advance(10 * CHECK)
    assert domain_of(url, "a.example.com")["status"] == "verifying"
    assert httpx.post(f"{url}/_emulator/reset", timeout=10).status_code == 200
    clock.advance(CHECK)
    assert domain_of(url, "a.example.com")["status"] == "provisioning_tls"


def test_a_domain_deleted_while_verifying_is_gone_and_can_be_added_afresh(
    stepped: tuple[str, SteppedClock],
) -> None:
    url, clock = stepped
    with api(url) as c:
        first = c.post("/v1/apps/app_my_site/domains", json={"domain": "gone.example.com"}).json()
        c.post("/v1/apps/app_my_site/domains/gone.example.com/verify").raise_for_status()
        deleted = c.delete("/v1/apps/app_my_site/domains/Gone.Example.com")
        clock.advance(CHECK + TLS)
        listed = c.get("/v1/apps/app_my_site/domains").json()
        app = c.get("/v1/apps/app_my_site").json()
        verify = c.post("/v1/apps/app_my_site/domains/gone.example.com/verify")
        again = c.delete("/v1/apps/app_my_site/domains/gone.example.com")
        added = c.post("/v1/apps/app_my_site/domains", json={"domain": "gone.example.com"})
    assert deleted.json() == {"message": "Successfully deleted", "success": True}
    assert_matches(deleted.json(), "GenericDeleteResponse")
    assert (listed, app["custom_domains"]) == ({"domains": [], "total": 0}, [])
    assert (verify.status_code, again.status_code) == (404, 404)
    assert verify.json()["error"]["message"] == "Domain gone.example.com not found"
    assert added.json()["status"] == "pending"
    assert added.json()["verification_token"] != first["verification_token"]


def test_a_verification_goes_on_across_a_restart_hold_and_all(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = SteppedClock(WALL, 100.0)
    running = start(data, clock)
    hold(running.url, domain="held.example.com")
    with api(running.url) as c:
        for name in ("held.example.com", "on.example.com"):
            c.post("/v1/apps/app_my_site/domains", json={"domain": name}).raise_for_status()
            c.post(f"/v1/apps/app_my_site/domains/{name}/verify").raise_for_status()
    clock.advance(CHECK / 2)
    running.stop()

    # The next process: its monotonic clock starts near zero; holds are not kept, but the
    # verification they shaped is.
    clock = SteppedClock(clock.wall, 2.0)
    running = start(data, clock)
    try:
        assert domain_of(running.url, "on.example.com")["status"] == "verifying"
        clock.advance(CHECK / 2)
        assert domain_of(running.url, "on.example.com")["status"] == "provisioning_tls"
        clock.advance(TLS + 3600)
        assert domain_of(running.url, "on.example.com")["status"] == "active"
        assert domain_of(running.url, "held.example.com")["status"] == "verifying"
    finally:
        running.stop()


@pytest.mark.parametrize(
    "name",
    [
        "https://shop.example.com",
        "shop.example.com/path",
        "shop.example.com:8443",
        "shop.example.com.",
        "localhost",
        "192.0.2.7",
        "-shop.example.com",
        "shop..example.com",
        "shöp.example.com",
        f"{'a' * 64}.example.com",
        "",
    ],
)
def test_a_domain_must_be_a_hostname(emulator: EmulatorHandle, name: str) -> None:
    app_id = emulator.create_app("named-site")
    with emulator.api() as c:
        answer = c.post(f"/v1/apps/{app_id}/domains", json={"domain": name})
        listed = c.get(f"/v1/apps/{app_id}/domains").json()
    assert answer.status_code == 400
    assert_matches(answer.json(), "ErrorResponse", "apps")
    assert answer.json()["error"]["code"] == "invalid_domain"
    assert answer.json()["error"]["message"].startswith(f"Domain {name!r} is not a hostname: ")
    assert listed["total"] == 0


def test_a_domain_under_localhost_is_refused_since_no_dns_can_prove_it(
    emulator: EmulatorHandle,
) -> None:
    app_id = emulator.create_app("loop-site")
    with emulator.api() as c:
        answer = c.post(f"/v1/apps/{app_id}/domains", json={"domain": "Loop-Site.localhost"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_domain")
    assert answer.json()["error"]["message"].startswith(
        "Domain loop-site.localhost is not a public hostname: names under localhost are "
    )


def test_a_domain_belongs_to_one_app_and_leaves_with_it(emulator: EmulatorHandle) -> None:
    mine, theirs = emulator.create_app("mine-site"), emulator.create_app("theirs-site")
    with emulator.api() as c:
        first = c.post(f"/v1/apps/{mine}/domains", json={"domain": "www.example.com"})
        primary = c.post(
            f"/v1/apps/{mine}/domains", json={"domain": "example.com", "is_primary": True}
        )
        moved = c.post(
            f"/v1/apps/{mine}/domains", json={"domain": "a.example.com", "is_primary": True}
        )
        twice = c.post(f"/v1/apps/{mine}/domains", json={"domain": "WWW.example.com"})
        elsewhere = c.post(f"/v1/apps/{theirs}/domains", json={"domain": "www.example.com"})
        primaries = {
            d["domain"]: d["is_primary"] for d in c.get(f"/v1/apps/{mine}").json()["custom_domains"]
        }
        c.delete(f"/v1/apps/{mine}").raise_for_status()
        freed = c.post(f"/v1/apps/{theirs}/domains", json={"domain": "www.example.com"})
    assert (first.status_code, primary.json()["is_primary"], moved.status_code) == (200, True, 200)
    assert primaries == {"www.example.com": False, "example.com": False, "a.example.com": True}
    assert twice.status_code == elsewhere.status_code == 400
    assert twice.json()["error"]["code"] == elsewhere.json()["error"]["code"] == "domain_taken"
    assert (
        f"already attached to app {mine}: remove it there first"
        in elsewhere.json()["error"]["message"]
    )
    assert "already attached to this app" in twice.json()["error"]["message"]
    assert freed.status_code == 200


def test_apps_of_an_earlier_release_have_no_domains_and_can_add_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "emulator", data)
    assert all(
        "domains" not in a for a in json.loads((data / "state.json").read_text())["apps"].values()
    )
    running = start(data, SteppedClock(WALL, 5.0), apps=())
    try:
        with api(running.url) as c:
            before = c.get("/v1/apps/app_upgrade_dynamic").json()
            added = c.post(
                "/v1/apps/app_upgrade_dynamic/domains", json={"domain": "old.example.com"}
            )
    finally:
        running.stop()
    assert_matches(before, "AppResponse")
    assert before["custom_domains"] == []
    assert added.status_code == 200
    saved = json.loads((data / "state.json").read_text())["apps"]["app_upgrade_dynamic"]
    assert [d["domain"] for d in saved["domains"]] == ["old.example.com"]
