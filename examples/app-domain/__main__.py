"""An app from nothing: the App itself, its custom domain, the DNS record that proves it, the
domain's verification, the site in ../app/site deployed to staging and that exact version
promoted to production, checked live.

The password and the build secrets are kept secret by the resources themselves, even when the
program reads them as plain config.
"""

from pathlib import Path

import pulumi

from mixpeek_pulumi import (
    App,
    AppDeploy,
    AppDomain,
    AppDomainVerification,
    AppPromotion,
    VerifyArgs,
)

config = pulumi.Config()
slug = config.get("slug") or "acme-search"
domain_name = config.get("domain") or "search.acme.com"

app = App(
    "search-app",
    slug=slug,
    meta={"title": "Acme Search", "description": "Search the Acme catalogue"},
    auth_config={"mode": "password", "password": config.get("password") or "change-me"},
    build_config={"secrets": {"SEARCH_KEY": config.get("searchKey") or "sk-demo"}},
)

domain = AppDomain("search-domain", app_id=app.app_id, domain=domain_name)

# The DNS record that proves the domain is the app's goes here, with your DNS provider's
# resource, such as:
#   cloudflare.Record("search-txt", zone_id=zone_id, type="TXT",
#                     name=domain.verification_record_name,
#                     content=domain.verification_record_value)
# and the verification then depends on it (depends_on=[txt]).
dns_records = [domain]

verified = AppDomainVerification(
    "search-verified",
    app_id=app.app_id,
    domain=domain.domain,
    timeout_seconds=float(config.get("verifySeconds") or 3600),
    poll_interval_seconds=float(config.get("verifyPollSeconds") or 30),
    opts=pulumi.ResourceOptions(depends_on=dns_records),
)

staging = AppDeploy(
    "site-staging",
    app_id=app.app_id,
    bundle=str(Path(__file__).resolve().parents[1] / "app" / "site"),
    environment="staging",
)
# The live site checked after the switch: production's own URL, or under `sitesUrl` (the
# local emulator's `<url>/_sites`), where each app's environments are served by app id.
sites = config.get("sitesUrl")
verify_url = app.app_id.apply(lambda i: f"{sites}/{i}/production") if sites else None
production = AppPromotion(
    "site-production",
    app_id=app.app_id,
    version=staging.version,
    source_deploy_id=staging.deploy_id,
    environment="production",
    verify=VerifyArgs(path="/", expect_text="<title>", url=verify_url),
)

pulumi.export("app_id", app.app_id)
pulumi.export("url", app.url)
pulumi.export("txt_name", domain.verification_record_name)
pulumi.export("txt_value", domain.verification_record_value)
pulumi.export("cname_target", domain.cname_target)
pulumi.export("domain_status", verified.status)
pulumi.export("staging_url", staging.url)
pulumi.export("production_url", production.url)
pulumi.export("verified", production.verified)
