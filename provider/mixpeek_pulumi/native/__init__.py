"""The native Mixpeek provider, ``pulumi-resource-mixpeek``: the same deploy layer as the
dynamic resources, behind the Pulumi provider protocol, so every Pulumi language reaches it."""
