"""One program, two stacks: `staging` deploys the bundle; `production` promotes what staging built.

The production stack reads the staging stack's `version` through a StackReference, so production
only ever serves a version that staging built and smoke-tested, with no rebuild and no upload.
"""

from pathlib import Path

import pulumi

from mixpeek_pulumi import AppDeploy, AppPromotion, VerifyArgs

config = pulumi.Config()
app_id = config.get("appId") or "app_demo_site"

if pulumi.get_stack() == "production":
    staging_stack = config.get("stagingStack") or f"organization/{pulumi.get_project()}/staging"
    staging = pulumi.StackReference(staging_stack)
    promoted = AppPromotion(
        "production",
        app_id=app_id,
        version=staging.require_output("version"),
        source_deploy_id=staging.require_output("deploy_id"),
        environment="production",
        # Checks the live site after the switch and restores the version before if it fails;
        # `url` defaults to production's own URL (set `verifyUrl` to check elsewhere).
        verify=VerifyArgs(path="/", expect_text="<title>", url=config.get("verifyUrl")),
    )
    pulumi.export("version", promoted.version)
    pulumi.export("deploy_id", promoted.deploy_id)
    pulumi.export("url", promoted.url)
    pulumi.export("verified", promoted.verified)
else:
    deployed = AppDeploy(
        "staging",
        app_id=app_id,
        bundle=str(Path(__file__).resolve().parents[1] / "app" / "site"),
        environment="staging",
    )
    pulumi.export("version", deployed.version)
    pulumi.export("deploy_id", deployed.deploy_id)
    pulumi.export("url", deployed.url)
