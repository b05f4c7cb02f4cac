"""The app example through the native provider's generated Python SDK (`pulumi_mixpeek`):
deploy ../app/site to staging, then promote that exact version to production.

Paths are relative to this project folder, so the stack's state reads the same on every machine.
"""

import pulumi
import pulumi_mixpeek as mixpeek

config = pulumi.Config()
app_id = config.get("appId") or "app_demo_site"

staging = mixpeek.AppDeploy(
    "site-staging",
    app_id=app_id,
    bundle="../app/site",
    environment="staging",
    message="Demo site from examples/native-python",
)
production = mixpeek.AppPromotion(
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
