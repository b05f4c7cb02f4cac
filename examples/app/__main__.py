"""Deploy the static site in ./site to staging, then promote that exact version to production."""

from pathlib import Path

import pulumi

from mixpeek_pulumi import AppDeploy, AppPromotion

config = pulumi.Config()
app_id = config.get("appId") or "app_demo_site"

staging = AppDeploy(
    "site-staging",
    app_id=app_id,
    bundle=str(Path(__file__).parent / "site"),
    environment="staging",
    message="Demo site from examples/app",
)
production = AppPromotion(
    "site-production",
    app_id=app_id,
    version=staging.version,
    source_deploy_id=staging.deploy_id,  # the smoke-test gate checks the deploy that built it
    environment="production",
)

pulumi.export("deploy_id", staging.deploy_id)
pulumi.export("version", staging.version)
pulumi.export("url", staging.url)
pulumi.export("production_deploy_id", production.deploy_id)
pulumi.export("production_url", production.url)
