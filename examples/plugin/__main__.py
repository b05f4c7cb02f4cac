"""Deploy the plugin in ./text_embed for realtime inference and export where it serves."""

from pathlib import Path

import pulumi

from mixpeek_pulumi import PluginDeployment

config = pulumi.Config()

embed = PluginDeployment(
    "text-embed",
    namespace_id=config.get("namespaceId") or "ns_demo",
    name="text_embed",
    version="1.0.0",
    source=str(Path(__file__).parent / "text_embed"),
    description="A demo text embedder",
    poll_interval_seconds=config.get_float("pollSeconds") or 5,
)

pulumi.export("route_prefix", embed.route_prefix)
pulumi.export("feature_uri", embed.feature_uri)
