"""AppDomain and AppDomainVerification in process: a domain added with the records that prove
and route it, replaced by any change, read back, removed and imported; a verification that
waits until the domain is active, or says in one sentence which record it still waits for."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mixpeek_pulumi.errors import DeployTimeoutError, MixpeekError
from tests.emulator_fixture import EmulatorHandle
from tests.kinds.conftest import Make
from tests.kinds.harness import CheckFailed

FAST = {"poll_interval_seconds": 0.05}


def test_a_domain_is_added_with_its_records_and_removed(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app_id = emulator.create_app("acme")
    domain = resource("AppDomain", "www")
    out = domain.up(app_id=app_id, domain="Search.Acme.com", is_primary=True)
    token = out["verification_token"]
    assert out["status"] == "pending"
    assert out["cname_target"] == "acme.mxp.co"
    assert out["verification_record_name"] == "_mixpeek-verify.search.acme.com"
    assert out["verification_record_value"] == f"mixpeek-site-verification={token}"
    assert out["is_primary"] is True
    assert "create the TXT record _mixpeek-verify.search.acme.com" in domain.said()
    record = emulator.records().apps[app_id]
    assert [(d.domain, d.is_primary) for d in record.domains] == [("search.acme.com", True)]

    assert domain.refresh() == out  # the case as written stays: no drift

    domain.destroy()
    assert emulator.records().apps[app_id].domains == []
    domain.state = out
    assert domain.refresh() is None


def test_any_change_of_a_domain_replaces_it(resource: Make, emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("acme")
    domain = resource("AppDomain", "www")
    out = domain.up(app_id=app_id, domain="search.acme.com")
    kind = domain.kind_
    old = kind.state.load(out)
    changes: list[dict[str, Any]] = [
        {"domain": "find.acme.com"},
        {"is_primary": True},
        {"app_id": "app_other"},
    ]
    for change in changes:
        news = domain.check(**{"app_id": app_id, "domain": "search.acme.com", **change})
        diff = kind.diff(old, news, set())
        assert diff.replaces == tuple(change), change


def test_refresh_reads_a_primary_taken_away_as_drift(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app_id = emulator.create_app("acme")
    first = resource("AppDomain", "first").up(app_id=app_id, domain="a.acme.com", is_primary=True)
    assert first["is_primary"] is True
    second = resource("AppDomain", "second")
    second.up(app_id=app_id, domain="b.acme.com", is_primary=True)
    again = resource("AppDomain", "first")
    again.state = first
    now = again.refresh()
    assert now is not None and now["is_primary"] is False
    diff = again.kind_.diff(
        again.kind_.state.load(now),
        again.check(app_id=app_id, domain="a.acme.com", is_primary=True),
        set(),
    )
    assert diff.replaces == ("is_primary",)


def test_import_reads_a_domain_by_app_and_name(resource: Make, emulator: EmulatorHandle) -> None:
    app_id = emulator.create_app("acme")
    out = resource("AppDomain", "www").up(app_id=app_id, domain="search.acme.com")
    adopted = resource("AppDomain", "adopted")
    found = adopted.imported(f"{app_id}/search.acme.com")
    assert found is not None
    assert {k: found[k] for k in ("app_id", "domain", "status", "verification_token")} == {
        k: out[k] for k in ("app_id", "domain", "status", "verification_token")
    }
    assert adopted.imported(f"{app_id}/other.acme.com") is None
    with pytest.raises(MixpeekError, match="names no custom domain"):
        adopted.imported(f"{app_id}/https://search.acme.com")


@pytest.mark.parametrize(
    "bad",
    ["https://search.acme.com", "search.acme.com/", "search.acme.com.", "10.0.0.1", "localhost"],
)
def test_check_refuses_a_domain_that_is_not_a_hostname(
    resource: Make, emulator: EmulatorHandle, bad: str
) -> None:
    app_id = emulator.create_app("acme")
    for kind in ("AppDomain", "AppDomainVerification"):
        with pytest.raises(CheckFailed) as info:
            resource(kind, "www").up(app_id=app_id, domain=bad)
        (failure,) = info.value.failures
        assert failure.field == "domain"
        assert failure.reason.startswith(f"{bad!r} is ")
    assert emulator.count("POST", "/v1/apps/*/domains*") == 0


def test_a_verification_waits_until_the_domain_is_active(
    resource: Make, emulator: EmulatorHandle
) -> None:
    emulator.timing(dns_check_seconds=0.1, tls_seconds=0.1)
    emulator.hold_dns("search.acme.com", misses=2)
    app_id = emulator.create_app("acme")
    resource("AppDomain", "www").up(app_id=app_id, domain="search.acme.com")
    check = resource("AppDomainVerification", "proof")
    out = check.up(app_id=app_id, domain="search.acme.com", timeout_seconds=30, **FAST)
    assert out["status"] == "active"
    assert out["verified_at"]
    assert "search.acme.com is provisioning_tls" in check.said()
    assert check.refresh() == out

    check.destroy()  # nothing at the service: the domain stays verified
    assert emulator.records().apps[app_id].domains[0].domain == "search.acme.com"
    assert check.kind_.import_ is not None
    assert resource("AppDomainVerification", "x").imported(f"{app_id}/search.acme.com") == {
        **out,
        "resource_name": "",
        "timeout_seconds": 3600.0,
        "poll_interval_seconds": 30.0,
    }


def test_past_its_timeout_a_verification_names_the_record_it_waits_for(
    resource: Make, emulator: EmulatorHandle
) -> None:
    emulator.timing(dns_check_seconds=0.05)
    emulator.hold_dns("search.acme.com")  # the record is never found
    app_id = emulator.create_app("acme")
    added = resource("AppDomain", "www").up(app_id=app_id, domain="search.acme.com")
    token = added["verification_token"]
    check = resource("AppDomainVerification", "proof")
    with pytest.raises(DeployTimeoutError) as info:
        check.up(app_id=app_id, domain="search.acme.com", timeout_seconds=0.5, **FAST)
    assert str(info.value).splitlines()[0] == (
        "AppDomainVerification 'proof': the verification of search.acme.com, waiting for the "
        "TXT record _mixpeek-verify.search.acme.com with the value "
        f"mixpeek-site-verification={token}, did not finish within timeout_seconds=0.5 (last "
        "status verifying); create the record at the domain's DNS host, then run the update "
        "again (the service keeps checking for up to 72 hours)."
    )
    assert check.state is None


def test_cancel_ends_the_wait_at_once(resource: Make, emulator: EmulatorHandle) -> None:
    emulator.hold_dns("search.acme.com")
    app_id = emulator.create_app("acme")
    resource("AppDomain", "www").up(app_id=app_id, domain="search.acme.com")
    check = resource("AppDomainVerification", "proof")
    timer = threading.Timer(0.3, check.cancel.set)
    timer.start()
    try:
        with pytest.raises(DeployTimeoutError, match="was interrupted before it finished"):
            check.up(app_id=app_id, domain="search.acme.com", timeout_seconds=600, **FAST)
    finally:
        timer.cancel()


def test_a_verification_of_a_domain_the_app_lacks_fails_in_a_sentence(
    resource: Make, emulator: EmulatorHandle
) -> None:
    app_id = emulator.create_app("acme")
    with pytest.raises(MixpeekError) as info:
        resource("AppDomainVerification", "proof").up(app_id=app_id, domain="search.acme.com")
    assert str(info.value).splitlines()[0] == (
        f"AppDomainVerification 'proof': app {app_id} has no custom domain search.acme.com: add "
        "the domain to the app first (and make this resource depend on it)."
    )


def test_a_refresh_that_finds_the_domain_unverified_makes_the_next_update_verify_again(
    resource: Make, emulator: EmulatorHandle
) -> None:
    emulator.timing(dns_check_seconds=0.05, tls_seconds=0.05)
    app_id = emulator.create_app("acme")
    www = resource("AppDomain", "www")
    www.up(app_id=app_id, domain="search.acme.com")
    check = resource("AppDomainVerification", "proof")
    inputs = {"app_id": app_id, "domain": "search.acme.com", **FAST}
    check.up(**inputs)
    # The domain removed and added again behind the program's back: pending once more.
    www.destroy()
    www.up(app_id=app_id, domain="search.acme.com")
    now = check.refresh()
    assert now is not None and now["status"] == "pending"
    out = check.up(**inputs)
    assert out["status"] == "active"
    assert emulator.count("POST", "/v1/apps/*/domains/*/verify") == 2
