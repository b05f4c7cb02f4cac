"""The demo project (`pulumi up` at the repository root, or `make demo`): the app and the plugin.

Deploys examples/app/site (or the build folder or .zip in the `bundle` setting, which `make
demo BUNDLE=...` sets) to staging, promotes that exact version to production and verifies the
live site there (rolling back by itself if it fails), and deploys the
examples/plugin/text_embed plugin for realtime inference.
"""

from pathlib import Path

import pulumi

from mixpeek_pulumi import AppDeploy, AppPromotion, PluginDeployment, VerifyArgs

EXAMPLES = Path(__file__).resolve().parents[1]
config = pulumi.Config()
app_id = config.get("appId") or "app_demo_site"

bundle = config.get("bundle")
staging = AppDeploy(
    "site-staging",
    app_id=app_id,
    bundle=bundle or str(EXAMPLES / "app" / "site"),
    environment="staging",
    message="Demo site",
    poll_interval_seconds=1,
)
# Against a real account, leave `url` out: the checks go to production's own URL. The demo's
# emulator serves each environment's live files under /_sites/, which `make demo` sets here.
verify_url = config.get("verifyUrl")
# The example site's title; a build of yours is checked for the text you name, if any, else
# only for a 200.
verify_text = config.get("verifyText") or (None if bundle else "<title>mixpeek-pulumi demo</title>")
production = AppPromotion(
    "site-production",
    app_id=app_id,
    version=staging.version,
    source_deploy_id=staging.deploy_id,
    verify=VerifyArgs(url=verify_url, path="/", expect_text=verify_text) if verify_url else None,
)
plugin = PluginDeployment(
    "text-embed",
    namespace_id=config.get("namespaceId") or "ns_demo",
    name="text_embed",
    version="1.0.0",
    source=str(EXAMPLES / "plugin" / "text_embed"),
    poll_interval_seconds=1,
)

pulumi.export("deploy_id", staging.deploy_id)
pulumi.export("version", staging.version)
pulumi.export("url", staging.url)
pulumi.export("production_deploy_id", production.deploy_id)
pulumi.export("production_url", production.url)
pulumi.export("verified", production.verified)
pulumi.export("route_prefix", plugin.route_prefix)
pulumi.export("feature_uri", plugin.feature_uri)
