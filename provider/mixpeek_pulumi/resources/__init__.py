"""The Pulumi dynamic resources."""
